"""The Cloudflare composition root: `Services` from a Worker's (or object's) `env`."""

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from clock import SystemClock
from cloudflare_adapters.d1 import D1Database
from cloudflare_adapters.fetch_http import FetchHttp
from cloudflare_adapters.namespace import CloudflareNamespace
from cloudflare_adapters.r2 import R2Bucket
from egress import VAR as EGRESS
from egress import EgressPolicy, GuardedHttp
from logs import register_secrets
from ports import Bucket, Config, Namespace
from services import Services
from settings import SECRETS, VARS


class _EnvBindings[T](Mapping[str, T]):
    """Bindings of `env`, looked up by binding name when first used and wrapped by `adapt`."""

    def __init__(self, env: Any, adapt: Callable[[Any], T]) -> None:
        self._env = env
        self._adapt = adapt

    def __getitem__(self, binding: str) -> T:
        value = getattr(self._env, binding, None)
        if value is None:
            raise KeyError(binding)
        return self._adapt(value)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def config_from_env(env: Any) -> Config:
    values = {}
    for name in VARS | SECRETS:
        value = getattr(env, name, None)
        if isinstance(value, str):
            values[name] = value
    return Config(values, secret_names=SECRETS)


def services_from_env(env: Any) -> Services:
    config = config_from_env(env)
    register_secrets(config.secrets())
    return Services(
        database=D1Database(env.DB),
        namespaces=_EnvBindings[Namespace](env, CloudflareNamespace),
        # A Worker cannot resolve names: the policy judges literal hosts, and Cloudflare's
        # fetch does not reach private networks.
        http=GuardedHttp(FetchHttp(), EgressPolicy.parse(config.get(EGRESS))),
        clock=SystemClock(),
        config=config,
        buckets=_EnvBindings[Bucket](env, R2Bucket),
    )
