"""ports.Namespace over a Durable Object namespace binding (RPC through stubs).

https://developers.cloudflare.com/durable-objects/api/stub/ . The SDK wraps the stub, so
arguments go out through `python_to_rpc` and results come back as Python values.
"""

from typing import Any


class CloudflareStub:
    def __init__(self, stub: Any) -> None:
        self.stub = stub

    async def call(self, method: str, *args: Any) -> Any:
        return await getattr(self.stub, method)(*args)


class CloudflareNamespace:
    def __init__(self, binding: Any) -> None:
        self.binding = binding

    def get(self, name: str) -> CloudflareStub:
        return CloudflareStub(self.binding.getByName(name))
