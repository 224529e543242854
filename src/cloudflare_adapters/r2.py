"""ports.Bucket over an R2 binding, as the SDK's env wrapper hands it to Python.

https://developers.cloudflare.com/r2/api/workers/workers-api-reference/ : `put(key, value,
{httpMetadata: {contentType}})`, `get(key)` is null for a missing key, else an R2ObjectBody
with `arrayBuffer()`.
"""

from typing import Any

from ports import PortError


class R2Bucket:
    def __init__(self, binding: Any) -> None:
        self._bucket = binding

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        # The SDK wraps an R2 binding and converts Python arguments itself (python_to_rpc).
        options = {"httpMetadata": {"contentType": content_type}}
        try:
            await self._bucket.put(key, data, options)
        except Exception as exc:
            raise PortError(f"R2 put failed: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        from pyodide.ffi import jsnull

        try:
            found = await self._bucket.get(key)
            if found is None or found is jsnull:
                return None
            buffer = await found.arrayBuffer()
        except Exception as exc:
            raise PortError(f"R2 get failed: {exc}") from exc
        # The SDK may already have converted the ArrayBuffer (python_from_rpc); else a JsBuffer.
        if isinstance(buffer, bytes | bytearray | memoryview):
            return bytes(buffer)
        return bytes(buffer.to_bytes())
