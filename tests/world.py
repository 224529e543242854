"""Durable Objects in process, on the local runtime's own host (real SQLite files, Cloudflare's
interleaving), with a step clock and an Http fake at the port: for tests that need to hold an
outbound call open, move time, and see what other events do meanwhile.

    async with World(tmp_path, classes={"TASK_MANAGER": TaskManager, ...}) as world:
        world.http.route("POST", "http://srv/tasks", handler)   # handler(request) -> Reply
        client = TaskManagerClient.for_task(world.services, "tsk_...")
        await world.alarm("TASK_MANAGER", "tsk_...")             # fire its alarm now
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apiary_local.d1 import LocalD1, apply_migrations
from apiary_local.meter import Meter
from apiary_local.namespace import LocalNamespace
from apiary_local.objects import ObjectHost, object_id
from durable.base import DurableObjectLogic
from ports import Config, HttpError, HttpResponse
from services import Services
from settings import SECRETS

ROOT = Path(__file__).resolve().parents[1]


class StepClock:
    def __init__(self, ms: int = 1_800_000_000_000) -> None:
        self.ms = ms

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, UTC)

    def now_ms(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


@dataclass
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


type Handler = Callable[[Request], Awaitable[Reply | HttpError] | Reply | HttpError]


class FakeHttp:
    """ports.Http answered by handlers the test routes by method and URL prefix (the longest
    prefix wins; a later route replaces an equal one); every call is recorded. An unrouted call
    is a network error (nothing here reaches a real network)."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, Handler]] = []
        self.calls: list[Request] = []

    def route(self, method: str, prefix: str, handler: Handler) -> None:
        self.routes.insert(0, (method, prefix, handler))

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        body: bytes | None = None,
        timeout_s: float = 10.0,
    ) -> HttpResponse:
        request = Request(method, url, dict(headers or {}), json if json is not None else body)
        self.calls.append(request)
        matching = [r for r in self.routes if r[0] == method and url.startswith(r[1])]
        for _, _, handler in sorted(matching, key=lambda r: -len(r[1]))[:1]:
            answer = handler(request)
            if asyncio.iscoroutine(answer):
                answer = await answer
            if isinstance(answer, HttpError):
                raise answer
            assert isinstance(answer, Reply)
            data = answer.body if isinstance(answer.body, bytes) else _json(answer.body)
            headers = {k.lower(): v for k, v in answer.headers.items()}
            return HttpResponse(answer.status, headers, data)
        raise HttpError("network", f"{method} {url}: no route in the test")

    def to(self, prefix: str) -> list[Request]:
        return [c for c in self.calls if c.url.startswith(prefix)]


def _json(value: Any) -> bytes:
    return b"" if value is None else json.dumps(value).encode()


class Gate:
    """Holds an outbound call open until the test lets it go: `await gate.entered.wait()`."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.requests: list[Request] = []

    async def __call__(self, request: Request) -> Reply:
        self.requests.append(request)
        self.entered.set()
        await self.release.wait()
        return self.reply


class World:
    def __init__(
        self,
        directory: Path,
        *,
        classes: Mapping[str, type[DurableObjectLogic]],
        config: Mapping[str, str] | None = None,
    ) -> None:
        self.clock = StepClock()
        self.http = FakeHttp()
        self.meter = Meter()
        self.db = LocalD1(directory / "d1.sqlite", self.meter)
        apply_migrations(self.db.conn, ROOT / "migrations")
        values = {"PUBLIC_URL": "http://apiary.test", "JWT_SECRET": "w" * 40, **(config or {})}
        self.hosts = {
            binding: ObjectHost(
                class_name=logic.__name__,
                logic=logic,
                state_dir=directory,
                meter=self.meter,
                services=lambda: self.services,
            )
            for binding, logic in classes.items()
        }
        self.services = Services(
            database=self.db,
            namespaces={b: LocalNamespace(h) for b, h in self.hosts.items()},
            http=self.http,
            clock=self.clock,
            config=Config(values, secret_names=SECRETS),
        )

    async def __aenter__(self) -> World:
        for host in self.hosts.values():
            await host.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        for host in self.hosts.values():
            await host.stop()
        self.db.close()

    async def alarm(self, binding: str, name: str) -> None:
        """Fire the object's stored alarm now (moving the clock to it if it is later)."""
        host = self.hosts[binding]
        slot = host._slot_for(name)
        storage, _ = host._open(slot)
        alarm = storage.alarm()
        assert alarm is not None, f"{binding}/{name} has no alarm"
        self.clock.ms = max(self.clock.ms, alarm[0])
        await host._fire_alarm(slot)

    def alarm_at(self, binding: str, name: str) -> int | None:
        host = self.hosts[binding]
        storage, _ = host._open(host._slot_for(name))
        alarm = storage.alarm()
        return None if alarm is None else alarm[0]

    def object_file(self, binding: str, name: str) -> Path:
        host = self.hosts[binding]
        return host.dir / f"{object_id(host.class_name, name)}.sqlite"

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.conn.execute(sql, params).fetchall()]
