"""ports.SocketHub over the WebSocket Hibernation API.

https://developers.cloudflare.com/durable-objects/api/websockets . `ctx` is the SDK's
DurableObjectContext: its methods take JS values, so arrays and objects go through `to_js`.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ports import PortError


def _null(value: Any) -> bool:
    from pyodide.ffi import jsnull

    return value is None or value is jsnull


class CloudflareSocket:
    def __init__(self, ws: Any, ctx: Any) -> None:
        self.ws = ws
        self._ctx = ctx

    def send(self, message: str | bytes) -> None:
        try:
            if isinstance(message, bytes):
                from pyodide.ffi import to_js

                self.ws.send(to_js(message))
            else:
                self.ws.send(message)
        except Exception as exc:  # a JS error: the socket is closing or closed
            raise PortError(f"send failed: {exc}") from exc

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.ws.close(code, reason)

    @property
    def attachment(self) -> dict[str, Any] | None:
        value = self.ws.deserializeAttachment()
        return None if _null(value) else dict(value.to_py())

    def attach(self, value: dict[str, Any] | None) -> None:
        import js
        from pyodide.ffi import jsnull, to_js

        if value is None:
            self.ws.serializeAttachment(jsnull)
        else:
            self.ws.serializeAttachment(to_js(value, dict_converter=js.Object.fromEntries))

    @property
    def tags(self) -> list[str]:
        return [str(tag) for tag in self._ctx.getTags(self.ws)]


class CloudflareSocketHub:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._client: Any = None

    def accept(
        self, *, tags: Sequence[str] = (), attachment: dict[str, Any] | None = None
    ) -> CloudflareSocket:
        import js
        from pyodide.ffi import to_js

        client, server = js.WebSocketPair.new().object_values()
        try:
            self.ctx.acceptWebSocket(server, to_js(list(tags)))
        except Exception as exc:
            raise PortError(f"acceptWebSocket: {exc}") from None
        socket = CloudflareSocket(server, self.ctx)
        if attachment is not None:
            socket.attach(attachment)
        self._client = client
        return socket

    def take_client(self) -> Any:
        """The client end of the pair accepted by the last upgrade (for the 101 response)."""
        client, self._client = self._client, None
        return client

    def sockets(self, tag: str | None = None) -> list[CloudflareSocket]:
        found = self.ctx.getWebSockets() if tag is None else self.ctx.getWebSockets(tag)
        return [CloudflareSocket(ws, self.ctx) for ws in found]

    def set_auto_response(self, request: str, response: str) -> None:
        import js

        self.ctx.setWebSocketAutoResponse(js.WebSocketRequestResponsePair.new(request, response))

    def auto_response_timestamp(self, socket: Any) -> datetime | None:
        value = self.ctx.getWebSocketAutoResponseTimestamp(socket.ws)
        if _null(value):
            return None
        return datetime.fromtimestamp(value.getTime() / 1000, UTC)
