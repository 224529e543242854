"""Byte streams: `ReadableStream`, `TransformStream` and its writer.

Contracts:
- WHATWG Streams (https://streams.spec.whatwg.org/) as implemented by workerd
  (https://developers.cloudflare.com/workers/runtime-apis/streams/): a body stream carries
  Uint8Array chunks, is async-iterable (Pyodide lets Python `async for` over it) and can be read
  once: reading *disturbs* and locks it, after which `bodyUsed` is true.
- An identity `TransformStream` used as a response body is a byte stream: writing anything but an
  ArrayBuffer / ArrayBufferView is a TypeError. `writer.write()` and `writer.close()` return
  promises.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from .buffers import JsBuffer, Uint8Array
from .errors import type_error
from .promises import JsPromise
from .values import JsObject, JsProxy


class ReadableStream(JsProxy):
    js_class = "ReadableStream"

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._closed = False
        self._errored: BaseException | None = None
        self._changed: asyncio.Event | None = None
        self._disturbed = False
        self.locked = False

    @classmethod
    def of_bytes(cls, data: bytes) -> ReadableStream:
        stream = cls()
        if data:
            stream._chunks.append(bytes(data))
        stream._closed = True
        return stream

    # producer side
    def _enqueue(self, data: bytes) -> None:
        if self._closed:
            raise type_error("This ReadableStream is closed.")
        self._chunks.append(bytes(data))
        self._notify()

    def _close(self) -> None:
        self._closed = True
        self._notify()

    def _error(self, exc: BaseException) -> None:
        self._errored = exc
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # consumer side
    def _start_reading(self) -> None:
        if self.locked:
            raise type_error("This ReadableStream is currently locked to a reader.")
        self.locked = True
        self._disturbed = True

    async def _next_chunk(self) -> bytes | None:
        while True:
            if self._chunks:
                return self._chunks.pop(0)
            if self._errored is not None:
                raise self._errored
            if self._closed:
                return None
            if self._changed is None:
                self._changed = asyncio.Event()
            self._changed.clear()
            await self._changed.wait()

    async def _read_all(self) -> bytes:
        self._start_reading()
        parts = []
        while (chunk := await self._next_chunk()) is not None:
            parts.append(chunk)
        return b"".join(parts)

    def _buffered_copy(self) -> bytes | None:
        """The whole content if the stream is complete and untouched (for `clone()`)."""
        if self._closed and not self._disturbed:
            return b"".join(self._chunks)
        return None

    def __aiter__(self) -> AsyncIterator[Uint8Array]:
        self._start_reading()

        async def chunks() -> AsyncIterator[Uint8Array]:
            while (chunk := await self._next_chunk()) is not None:
                yield Uint8Array(chunk)

        return chunks()

    def getReader(self, *_options: Any) -> ReadableStreamDefaultReader:
        self._start_reading()
        return ReadableStreamDefaultReader(self)

    def cancel(self, *_reason: Any) -> JsPromise:
        self._chunks.clear()
        self._closed = True
        self._disturbed = True
        return JsPromise.resolve(None)


class ReadableStreamDefaultReader(JsProxy):
    js_class = "ReadableStreamDefaultReader"

    def __init__(self, stream: ReadableStream) -> None:
        self._stream = stream

    def read(self) -> JsPromise:
        async def read() -> JsObject:
            chunk = await self._stream._next_chunk()
            if chunk is None:
                return JsObject({"value": None, "done": True})
            return JsObject({"value": Uint8Array(chunk), "done": False})

        return JsPromise(read())

    def releaseLock(self) -> None:
        self._stream.locked = False

    def cancel(self, *_reason: Any) -> JsPromise:
        return self._stream.cancel()


class WritableStream(JsProxy):
    js_class = "WritableStream"

    def __init__(self, sink: ReadableStream) -> None:
        self._sink = sink
        self.locked = False

    def getWriter(self) -> WritableStreamDefaultWriter:
        if self.locked:
            raise type_error("This WritableStream is currently locked to a writer.")
        self.locked = True
        return WritableStreamDefaultWriter(self._sink)


class WritableStreamDefaultWriter(JsProxy):
    js_class = "WritableStreamDefaultWriter"

    def __init__(self, sink: ReadableStream) -> None:
        self._sink = sink
        self.ready = JsPromise.resolve(None)

    def write(self, chunk: Any = None) -> JsPromise:
        if not isinstance(chunk, JsBuffer):
            return JsPromise.reject(
                type_error(
                    "This TransformStream is being used as a byte stream, but received an object "
                    "of non-ArrayBuffer/ArrayBufferView type on its writable side."
                )
            )
        return JsPromise.from_call(self._sink._enqueue, chunk._bytes())

    def close(self) -> JsPromise:
        return JsPromise.from_call(self._sink._close)

    def abort(self, reason: Any = None) -> JsPromise:
        return JsPromise.from_call(self._sink._error, type_error(f"aborted: {reason}"))

    def releaseLock(self) -> None:
        pass


class TransformStream(JsProxy):
    js_class = "TransformStream"

    def __init__(self) -> None:
        self.readable = ReadableStream()
        self.writable = WritableStream(self.readable)
