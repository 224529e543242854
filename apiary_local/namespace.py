"""Durable Object stubs for the local runtime: `namespace.get(name).call(method, ...)`."""

from typing import Any

from apiary_local.objects import ObjectHost


class LocalStub:
    def __init__(self, host: ObjectHost, name: str) -> None:
        self.host = host
        self.name = name

    async def call(self, method: str, *args: Any) -> Any:
        return await self.host.call(self.name, method, list(args))


class LocalNamespace:
    def __init__(self, host: ObjectHost) -> None:
        self.host = host

    def get(self, name: str) -> LocalStub:
        return LocalStub(self.host, name)
