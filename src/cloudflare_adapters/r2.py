"""ports.Bucket over an R2 binding.

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
        import js
        from pyodide.ffi import to_js

        options = to_js(
            {"httpMetadata": {"contentType": content_type}}, dict_converter=js.Object.fromEntries
        )
        try:
            await self._bucket.put(key, to_js(data), options)
        except Exception as exc:
            raise PortError(f"R2 put failed: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        try:
            found = await self._bucket.get(key)
            if found is None or str(found) in ("null", "undefined"):
                return None
            buffer = await found.arrayBuffer()
        except Exception as exc:
            raise PortError(f"R2 get failed: {exc}") from exc
        return bytes(buffer.to_py())
