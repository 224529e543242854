"""Outbound HTTP over httpx, for the local runtime (Cloudflare: `cloudflare_adapters.fetch_http`).

Every call carries the current correlation id. Redirects are not followed (as on Cloudflare,
where the adapter asks fetch for `redirect: "manual"`): a 3xx is the caller's answer.

A client is made once per adapter, on first use, and the TLS context once per process: making
an httpx client builds a TLS context, about 50 ms of CPU (measured here), far more than a call.

`*.localhost` names are loopback (RFC 6761), as browsers resolve them, though the system
resolver here does not: a plain-http call to one goes to 127.0.0.1 with its Host kept (how the
local account's Workers are addressed, `{script}.localhost:{port}`).
"""

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

import correlation
from ports import HttpError, HttpResponse

_tls: Any = None


def _tls_context() -> Any:
    global _tls
    if _tls is None:
        _tls = httpx.create_ssl_context()
    return _tls


class HttpxHttp:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(verify=_tls_context())
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

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
        url, sent = _loopback_name(url, correlation.outgoing(headers))
        try:
            response = await self._get_client().request(
                method,
                url,
                headers=sent,
                json=json,
                content=body,
                timeout=timeout_s,
            )
        except httpx.TimeoutException as exc:
            raise HttpError("timeout", f"{method} {url}: timed out after {timeout_s}s") from exc
        except httpx.HTTPError as exc:
            raise HttpError("network", f"{method} {url}: {type(exc).__name__}") from exc
        return HttpResponse(response.status_code, dict(response.headers), response.content)


def _loopback_name(url: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "http" or not host.endswith(".localhost"):
        return url, headers
    port = f":{parts.port}" if parts.port else ""
    if not any(k.lower() == "host" for k in headers):
        headers = {**headers, "Host": f"{host}{port}"}
    return urlunsplit(parts._replace(netloc=f"127.0.0.1{port}")), headers
