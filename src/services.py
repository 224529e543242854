"""What core logic gets from a runtime: one bundle of ports, built by a composition root.

`apiary_local.runtime` builds it for the local runtime and `cloudflare_adapters.services` from a
Worker's `env` on Cloudflare. Routes receive it through one FastAPI dependency.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ports import Bucket, Clock, Config, Database, Http, Namespace


@dataclass(frozen=True, slots=True)
class Services:
    database: Database
    namespaces: Mapping[str, Namespace]
    http: Http
    clock: Clock
    config: Config
    buckets: Mapping[str, Bucket] = field(default_factory=dict)

    def bucket(self, binding: str) -> Bucket:
        try:
            return self.buckets[binding]
        except KeyError:
            raise LookupError(f"no R2 bucket binding named {binding!r}") from None

    def namespace(self, binding: str) -> Namespace:
        try:
            return self.namespaces[binding]
        except KeyError:
            raise LookupError(f"no Durable Object binding named {binding!r}") from None


# Given an ASGI scope, the Services for that request (see api.app.create_app).
type ServicesProvider = Callable[[Mapping[str, Any]], Services]
