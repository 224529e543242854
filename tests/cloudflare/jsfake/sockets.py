"""WebSockets: `WebSocket`, `WebSocketPair`, `WebSocketRequestResponsePair`.

Contracts:
- Workers WebSocket API (https://developers.cloudflare.com/workers/runtime-apis/websockets/):
  `new WebSocketPair()` has two own properties "0" (client) and "1" (server); from Python,
  `client, server = WebSocketPair.new().object_values()`. The server end must be accepted, with
  `server.accept()` or `ctx.acceptWebSocket(server)`, before it can send; `send()` takes a string
  or an ArrayBuffer/ArrayBufferView; `close(code, reason)` takes 1000 or 3000-4999 and a reason
  of at most 123 UTF-8 bytes.
- Hibernation extensions (https://developers.cloudflare.com/durable-objects/api/websockets/):
  `serializeAttachment(value)` stores a structured clone (a PyProxy'd Python dict cannot be
  cloned -> DataCloneError; the documented limit is 2,048 bytes), `deserializeAttachment()`
  returns a fresh clone, or `null` when nothing was stored.
- `WebSocketRequestResponsePair(request, response)` holds two strings for auto-responses.

Test side (not JS API): `ws.sent` lists what this end sent (str or bytes), `ws.close_code` /
`ws.close_reason` what it closed with, `server.dispatch_message(data)` fires `message` events on
an `accept()`ed socket.
"""

from __future__ import annotations

from typing import Any

from .buffers import ArrayBuffer, buffer_bytes
from .clone import serialized_size, structured_clone
from .errors import JsException, type_error
from .proxy import JsNull, jsnull
from .values import JsObject, JsProxy, PyProxy, call_function, js_method

ATTACHMENT_LIMIT_BYTES = 2048
CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3


class WebSocket(JsProxy):
    js_class = "WebSocket"
    CONNECTING, OPEN, CLOSING, CLOSED = CONNECTING, OPEN, CLOSING, CLOSED

    def __init__(self, *, must_accept: bool = True) -> None:
        self.sent: list[str | bytes] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.peer: WebSocket | None = None
        self.readyState = OPEN
        self.binaryType = "blob"
        self.url = jsnull
        self.protocol = ""
        self.extensions = ""
        self.onopen: Any = jsnull
        self.onmessage: Any = jsnull
        self.onclose: Any = jsnull
        self.onerror: Any = jsnull
        self._must_accept = must_accept
        self._accepted: str | None = None  # "accept" or "hibernation"
        self._attachment: Any = jsnull
        self._listeners: dict[str, list[Any]] = {}

    @property
    def received(self) -> list[str | bytes]:
        """What the other end sent to this one (test helper)."""
        return self.peer.sent if self.peer is not None else []

    def accept(self) -> None:
        if self._accepted is not None:
            raise JsException("InvalidStateError", "WebSocket already accepted")
        self._accepted = "accept"

    def _accept_hibernatable(self) -> None:
        if self._accepted is not None:
            raise JsException("InvalidStateError", "WebSocket already accepted")
        self._accepted = "hibernation"

    @js_method
    def send(self, message: Any = None) -> None:
        if self._must_accept and self._accepted is None:
            raise type_error(
                "You must call one of accept() or state.acceptWebSocket() on this WebSocket "
                "before sending messages."
            )
        if self.readyState != OPEN:
            raise type_error("Can't call WebSocket send() after close().")
        if isinstance(message, str):
            self.sent.append(message)
            return
        data = buffer_bytes(message)
        if data is not None:
            self.sent.append(data)
            return
        if isinstance(message, PyProxy):
            raise type_error(
                f"jsfake: WebSocket.send() got a Python {message.type} (PyProxy); workerd would "
                "send its str(). Send str, or a JS buffer (create_proxy(b).getBuffer().data)"
            )
        raise type_error("WebSocket.send() expects a string or an ArrayBuffer/ArrayBufferView")

    @js_method
    def close(self, code: Any = None, reason: Any = None) -> None:
        if code is not None and not (code == 1000 or 3000 <= code <= 4999):
            raise JsException(
                "InvalidAccessError", f"The close code must be 1000 or in 3000-4999 (got {code})."
            )
        reason_text = "" if reason is None else str(reason)
        if len(reason_text.encode()) > 123:
            raise JsException("SyntaxError", "The close reason must be at most 123 bytes.")
        if self.readyState in (CLOSING, CLOSED) and self.close_code is not None:
            return
        self.close_code = 1005 if code is None else int(code)
        self.close_reason = reason_text
        self.readyState = CLOSED if self.readyState == CLOSING else CLOSING

    @js_method
    def serializeAttachment(self, value: Any = None) -> None:
        clone = structured_clone(value)
        if serialized_size(clone) > ATTACHMENT_LIMIT_BYTES:
            raise type_error(
                f"A WebSocket 'serializeAttachment()' value cannot be larger than "
                f"{ATTACHMENT_LIMIT_BYTES} bytes."
            )
        self._attachment = clone

    def deserializeAttachment(self) -> Any:
        if isinstance(self._attachment, JsNull):
            return jsnull
        return structured_clone(self._attachment)

    @js_method
    def addEventListener(self, event_type: Any = None, listener: Any = None, *_: Any) -> None:
        self._listeners.setdefault(str(event_type), []).append(listener)

    @js_method
    def removeEventListener(self, event_type: Any = None, listener: Any = None, *_: Any) -> None:
        listeners = self._listeners.get(str(event_type), [])
        if listener in listeners:
            listeners.remove(listener)

    # --- test helpers ----------------------------------------------------------------------

    def _fire(self, event_type: str, event: JsObject) -> None:
        handler = getattr(self, f"on{event_type}", jsnull)
        if not isinstance(handler, JsNull) and handler is not None:
            call_function(handler, event)
        for listener in list(self._listeners.get(event_type, [])):
            call_function(listener, event)

    def dispatch_message(self, data: str | bytes) -> None:
        """Deliver a message from the peer to an `accept()`ed socket's listeners."""
        if self._accepted != "accept":
            raise RuntimeError(
                "dispatch_message() is for accept()ed sockets; use the state's "
                "deliver_message() for hibernatable ones"
            )
        payload: Any = data if isinstance(data, str) else ArrayBuffer(data)
        self._fire("message", JsObject({"type": "message", "data": payload}))

    def dispatch_close(self, code: int = 1000, reason: str = "", was_clean: bool = True) -> None:
        self.readyState = CLOSED
        self._fire(
            "close",
            JsObject({"type": "close", "code": code, "reason": reason, "wasClean": was_clean}),
        )

    def __repr__(self) -> str:
        return f"<WebSocket state={self.readyState} sent={len(self.sent)}>"


class WebSocketPair(JsProxy):
    js_class = "WebSocketPair"

    def __init__(self) -> None:
        self.client = WebSocket(must_accept=False)
        self.server = WebSocket()
        self.client.peer, self.server.peer = self.server, self.client

    def _own_properties(self) -> dict[str, Any]:
        return {"0": self.client, "1": self.server}

    def __getattr__(self, name: str) -> Any:
        if name == "0":
            return self.client
        if name == "1":
            return self.server
        raise AttributeError(name)


class WebSocketRequestResponsePair(JsProxy):
    js_class = "WebSocketRequestResponsePair"

    def __init__(self, request: Any = None, response: Any = None) -> None:
        if not isinstance(request, str) or not isinstance(response, str):
            raise type_error(
                "Failed to construct 'WebSocketRequestResponsePair': request and response must "
                "be strings."
            )
        self.request = request
        self.response = response
