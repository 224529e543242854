"""A Durable Object as a plain class with hooks, written against ports.

The platform shells (`cloudflare_adapters.shell` on Cloudflare, `apiary_local.objects` locally)
construct one instance per object and call its hooks. Events interleave as on Cloudflare: the
input gate holds across storage, so code between two awaits runs alone, but while an object
awaits an outbound call (fetch, D1, another object) other events are delivered to it; so after
such an await, re-read state before deciding on it. Memory is a cache: the instance can be
dropped between any two events (eviction, hibernation, restart), so anything that must survive
lives in `ctx.storage` or in a socket's attachment.

What a new object needs: a module in `durable/` with a subclass of `DurableObjectLogic` (its
`SCHEMA`, its hooks, `@rpc` methods that return plain values or raise domain errors), a client
class beside it (`ObjectClient` subclass naming its methods by reference), an `Outbox` for any
effect outside the object, its class in `worker.define_worker`, and its binding and migration in
wrangler.toml.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from durable.rpc import rpc, rpc_methods
from ports import ObjectStorage, Socket, SocketHub
from services import Services

__all__ = [
    "AlarmInfo",
    "DurableObjectLogic",
    "ObjectContext",
    "ObjectRequest",
    "ObjectResponse",
    "rpc",
    "rpc_methods",
]


@dataclass(frozen=True, slots=True)
class ObjectRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query))

    @property
    def is_websocket_upgrade(self) -> bool:
        return self.headers.get("upgrade", "").lower() == "websocket"

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass(frozen=True, slots=True)
class ObjectResponse:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    socket: Socket | None = None  # set when a WebSocket upgrade was accepted (status 101)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> ObjectResponse:
        body = json.dumps(data, separators=(",", ":")).encode()
        return cls(status, body, {"content-type": "application/json"})

    @classmethod
    def upgrade(cls, socket: Socket) -> ObjectResponse:
        return cls(101, socket=socket)


@dataclass(frozen=True, slots=True)
class AlarmInfo:
    retry_count: int = 0

    @property
    def is_retry(self) -> bool:
        return self.retry_count > 0


type Work = Coroutine[Any, Any, None]
_detached: set[asyncio.Task[None]] = set()


def _run_detached(work: Work) -> None:
    task = asyncio.ensure_future(work)
    _detached.add(task)  # the loop keeps only a weak reference
    task.add_done_callback(_detached.discard)


@dataclass(frozen=True, slots=True)
class ObjectContext:
    id: str
    name: str | None
    storage: ObjectStorage
    sockets: SocketHub
    services: Services
    # Work that goes on after the event has answered (`ctx.waitUntil`): it runs like the rest
    # of the event (its writes commit before its calls leave, and when it ends). The object may
    # be evicted before it finishes (Cloudflare keeps it at least 70 s), so what it does must
    # also be found again from storage, by the alarm.
    wait_until: Callable[[Work], None] = _run_detached


class DurableObjectLogic:
    """Base for every Durable Object.

    - `SCHEMA`: statements `on_start` runs (CREATE ... IF NOT EXISTS), once per instance.
    - `on_start` runs once per instance, before the first event (schema, caches).
    - `on_request` answers a `fetch` to the object (including WebSocket upgrades: call
      `ctx.sockets.accept(...)` and return `ObjectResponse.upgrade(socket)`).
    - `on_alarm` runs when the alarm fires; raising makes the platform retry it with backoff.
    - `on_socket_message` / `on_socket_close` wake a hibernated object for a socket event.
    - methods marked `@rpc` are callable through stubs.
    """

    SCHEMA: ClassVar[Sequence[str]] = ()

    def __init__(self, ctx: ObjectContext) -> None:
        self.ctx = ctx

    def on_start(self) -> None:
        """Runs before the first event of this instance: installs `SCHEMA`."""
        for statement in self.SCHEMA:
            self.ctx.storage.exec(statement)

    @property
    def services(self) -> Services:
        return self.ctx.services

    def now_ms(self) -> int:
        return self.ctx.services.clock.now_ms()

    async def on_request(self, request: ObjectRequest) -> ObjectResponse:
        return ObjectResponse.json(
            {"error": {"code": "not_found", "message": "no such route"}}, status=404
        )

    async def on_alarm(self, info: AlarmInfo) -> None:
        """Runs when the alarm fires."""

    async def on_socket_message(self, socket: Socket, message: str | bytes) -> None:
        """Runs for each message that is not answered by the auto-response."""

    async def on_socket_close(self, socket: Socket, code: int, reason: str) -> None:
        """Runs when a client closes its socket."""
