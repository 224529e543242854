"""The egress policy: which addresses apiary may call when a caller chose the address.

Server URLs, browser-check targets, webhook URLs and `BACKEND_BASE` are chosen by someone
else than the code calling them, so every outbound call goes through one policy:

- link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, 169.254.169.254,
  fd00:ec2::254, 100.100.100.200, metadata.google.internal) are refused always;
- loopback (127.0.0.0/8, ::1, 0.0.0.0, `localhost`), private and other non-global addresses
  (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10 ...), and URLs with userinfo
  (`http://user:pass@host`) are refused unless `EGRESS_ALLOW` names them;
- everything else (public addresses) is allowed.

`EGRESS_ALLOW` is a comma-separated list of `loopback`, `private`, `userinfo`, networks or
addresses (`10.1.0.0/16`, `192.168.1.20`) and host names (`backend.internal`); `none` allows
nothing more. `apiary dev` defaults it to `loopback`; on Cloudflare it is unset, so only public
addresses are reachable.

`refusal` is pure: the caller passes the addresses a host resolved to when the runtime can
resolve (locally), and the policy judges each; on Cloudflare, where a Worker cannot resolve
names, it judges the literal host (and Cloudflare's fetch cannot reach private networks).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from errors import InvalidInput
from ports import Config, Http, HttpError, HttpResponse

type Address = ipaddress.IPv4Address | ipaddress.IPv6Address
type Network = ipaddress.IPv4Network | ipaddress.IPv6Network

VAR = "EGRESS_ALLOW"
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_KEYWORDS = frozenset({"loopback", "private", "userinfo", "none"})
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


class EgressError(ValueError):
    """`EGRESS_ALLOW` could not be read."""


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    loopback: bool = False
    private: bool = False
    userinfo: bool = False
    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, raw: str | None) -> EgressPolicy:
        items = [item.strip().lower() for item in (raw or "").split(",") if item.strip()]
        networks: list[Network] = []
        hosts: set[str] = set()
        for item in items:
            if item in _KEYWORDS:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                if not _HOST.match(item.rstrip(".")):
                    raise EgressError(
                        f"{VAR}: {item!r} is not a keyword, network or host name"
                    ) from None
                hosts.add(item.rstrip("."))
        return cls(
            loopback="loopback" in items,
            private="private" in items,
            userinfo="userinfo" in items,
            networks=tuple(networks),
            hosts=frozenset(hosts),
        )


def _address(text: str) -> Address | None:
    try:
        found = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def _judge(address: Address, policy: EgressPolicy) -> str | None:
    if address in _METADATA or address.is_link_local:
        return f"{address} is a link-local or metadata address"
    if any(address in network for network in policy.networks):
        return None
    if address.is_loopback or address.is_unspecified:
        return None if policy.loopback else f"{address} is a loopback address"
    if not address.is_global:
        return None if policy.private else f"{address} is a private address"
    return None


def refusal(url: str, policy: EgressPolicy, addresses: Sequence[str] = ()) -> str | None:
    """Why `url` may not be called under `policy`, or None when it may.

    `addresses` are what its host resolved to, when the runtime could resolve it; each must pass.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "only absolute http(s) URLs may be called"
    if (parts.username is not None or parts.password is not None) and not policy.userinfo:
        return "URLs with credentials in them (user:pass@) are refused"
    if host in _METADATA_HOSTS:
        return f"{host} is a metadata address"
    literal = _address(host)
    if literal is not None:
        return _judge(literal, policy)
    if host in policy.hosts:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return None if policy.loopback else f"{host} is a loopback address"
    for resolved in addresses:
        address = _address(resolved)
        reason = "unreadable address" if address is None else _judge(address, policy)
        if reason is not None:
            return f"{host} resolves to {reason}"
    return None


def explain(reason: str) -> str:
    """A refusal as an error message a caller can act on."""
    return f"refused by the egress policy: {reason} (allow it with {VAR})"


def policy_of(config: Config) -> EgressPolicy:
    return EgressPolicy.parse(config.get(VAR))


def require_allowed(config: Config, urls: Sequence[str]) -> None:
    """At the API's edge: a URL the policy refuses is a 422, before anything is stored."""
    policy = policy_of(config)
    for url in urls:
        reason = refusal(url, policy)
        if reason is not None:
            raise InvalidInput(f"{url}: {explain(reason)}")


type Resolver = Callable[[str], Awaitable[list[str]]]


class GuardedHttp:
    """ports.Http that refuses what the policy refuses, before any connection is made.

    With a `resolve`r (the local runtime), the host's addresses are judged too; a name that
    resolves to a private address is refused. (A DNS answer that changes between this check and
    the connection is not caught: the local runtime is not a hostile network's only defence.)
    """

    def __init__(self, inner: Http, policy: EgressPolicy, resolve: Resolver | None = None):
        self.inner = inner
        self.policy = policy
        self.resolve = resolve

    async def check(self, url: str) -> None:
        reason = refusal(url, self.policy)
        if reason is None and self.resolve is not None:
            host = (urlsplit(url).hostname or "").rstrip(".").lower()
            needs_lookup = _address(host) is None and host not in self.policy.hosts
            if needs_lookup and not (host == "localhost" or host.endswith(".localhost")):
                try:
                    addresses = await self.resolve(host)
                except OSError as exc:
                    raise HttpError("network", f"{host}: cannot resolve ({exc})") from None
                reason = refusal(url, self.policy, addresses)
        if reason is not None:
            raise HttpError("refused", explain(reason))

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        body: bytes | None = None,
        timeout_s: float = 10.0,
    ) -> HttpResponse:
        await self.check(url)
        return await self.inner.request(
            method, url, headers=headers, json=json, body=body, timeout_s=timeout_s
        )
