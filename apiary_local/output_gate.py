"""The output gate for a local object's calls out: each first makes its pending writes durable.

Cloudflare's output gate holds every outgoing message (fetch, RPC, D1) until the writes before
it are durable; flushing first gives the same guarantee here.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any

from apiary_local.storage import LocalObjectStorage
from services import Services


class _Gated:
    """Wraps a port so each call first makes the object's pending writes durable. (`get`
    sends nothing: it only wraps the stub it returns.)"""

    def __init__(self, inner: Any, storage: LocalObjectStorage) -> None:
        self._inner = inner
        self._storage = storage

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name == "get":
            return lambda *args, **kwargs: _Gated(attribute(*args, **kwargs), self._storage)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        async def gated(*args: Any, **kwargs: Any) -> Any:
            await self._storage.flush()
            return await attribute(*args, **kwargs)

        return gated


class _GatedNamespaces(dict[str, Any]):
    def __init__(self, namespaces: Any, storage: LocalObjectStorage) -> None:
        super().__init__({k: _Gated(v, storage) for k, v in namespaces.items()})


def gated_services(services: Services, storage: LocalObjectStorage) -> Services:
    return replace(
        services,
        database=_Gated(services.database, storage),
        http=_Gated(services.http, storage),
        namespaces=_GatedNamespaces(services.namespaces, storage),
    )
