"""entry.py, the Durable Object shells and the Cloudflare adapters, on the real Workers SDK.

Only the JS layer is faked (see jsfake); a wrong class name, signature or conversion fails here
rather than on Cloudflare.
"""

import json
import time
import tomllib
from typing import Any

import pytest

from auth.tokens import mint
from tests.cloudflare.conftest import ROOT, SECRET

pytestmark = pytest.mark.usefixtures("jsfake")


async def serve(jsfake: Any, entry: Any, env: Any, url: str, **kwargs: Any) -> Any:
    from workers import Request

    worker = entry.Default(jsfake.FakeExecutionContext(), env)
    return await worker.fetch(Request(jsfake.make_request(url, **kwargs)))


def test_every_wrangler_class_is_exported(entry: Any) -> None:
    from workers import DurableObject

    config = tomllib.loads((ROOT / "wrangler.toml").read_text())
    sections = [config, *config.get("env", {}).values()]
    class_names = {
        binding["class_name"]
        for section in sections
        for binding in section.get("durable_objects", {}).get("bindings", [])
    }
    sqlite_classes = {c for m in config["migrations"] for c in m.get("new_sqlite_classes", [])}
    assert class_names
    assert class_names <= sqlite_classes
    for name in class_names:
        exported = getattr(entry, name)
        assert issubclass(exported, DurableObject)
        assert exported.__name__ == name
        assert name in entry.WORKER.durable_objects
    assert issubclass(entry.Default, __import__("workers").WorkerEntrypoint)


@pytest.mark.anyio
async def test_health_through_the_asgi_adapter(jsfake: Any, entry: Any, env: Any) -> None:
    token = mint(subject="cf", scopes=[], now_s=int(time.time()), ttl_s=60, secret=SECRET)
    headers = {"X-Correlation-ID": "cf-1", "Authorization": f"Bearer {token}"}
    response = await serve(jsfake, entry, env, "https://apiary.example/health", headers=headers)
    assert response.status == 200
    assert response.headers.get("x-correlation-id") == "cf-1"
    body = json.loads(await response.text())
    assert body["environment"] == "production"
    assert body["checks"] == {
        "database": "ok",
        "backend": "not_configured",
        "auth": "not_configured",
    }
    assert body["status"] == "ok"


@pytest.mark.anyio
async def test_errors_and_auth_through_the_asgi_adapter(jsfake: Any, entry: Any, env: Any) -> None:
    missing = await serve(jsfake, entry, env, "https://apiary.example/nope")
    assert missing.status == 404
    assert json.loads(await missing.text())["error"]["code"] == "not_found"

    token = mint(
        subject="cf", scopes=["tasks:read"], now_s=int(time.time()), ttl_s=60, secret=SECRET
    )
    whoami = await serve(
        jsfake,
        entry,
        env,
        "https://apiary.example/api/auth/whoami",
        headers={"Authorization": f"Bearer {token}", "Origin": "https://apiary.example"},
    )
    assert whoami.status == 200
    assert json.loads(await whoami.text())["scopes"] == ["tasks:read"]
    assert whoami.headers.get("access-control-allow-origin") == "https://apiary.example"
    refused = await serve(jsfake, entry, env, "https://apiary.example/api/auth/whoami")
    assert refused.status == 401


@pytest.mark.anyio
async def test_an_oversize_body_is_refused_before_it_is_read(
    jsfake: Any, entry: Any, env: Any
) -> None:
    from workers import Request

    worker = entry.Default(jsfake.FakeExecutionContext(), env)
    request = Request(
        jsfake.make_request(
            "https://apiary.example/trigger",
            method="POST",
            headers={"Content-Length": str(2 * 1024 * 1024), "X-Correlation-ID": "big-1"},
            body="{}",
        )
    )
    response = await worker.fetch(request)
    assert response.status == 413
    assert response.headers.get("x-correlation-id") == "big-1"
    error = json.loads(await response.text())["error"]
    assert (error["code"], error["correlation_id"]) == ("payload_too_large", "big-1")
    assert request.js_object.bodyUsed is False  # refused before anything was buffered

    undeclared = await serve(
        jsfake, entry, env, "https://apiary.example/trigger", method="POST", body="{}"
    )
    assert undeclared.status == 411
    assert json.loads(await undeclared.text())["error"]["code"] == "length_required"

    declared = await serve(
        jsfake,
        entry,
        env,
        "https://apiary.example/trigger",
        method="POST",
        headers={"Content-Length": "2", "Content-Type": "application/json"},
        body="{}",
    )
    assert declared.status == 401  # reached the app: it wants a token


def test_entry_builds_the_app_at_import_without_entropy_or_clock() -> None:
    """workerd snapshots memory after import: the app is built then, so no new isolate pays for
    it, and import must not read randomness or the clock (it would be frozen in the snapshot)."""
    import subprocess
    import sys

    script = """
import os, random, secrets, time, datetime as dt
import fastapi, pydantic, starlette, httpx  # third-party imports may seed themselves
import tests.cloudflare.jsfake as jsfake
jsfake.install()
import workers, asgi
def refuse(*a, **k):
    raise AssertionError("entropy or clock read at import")
os.urandom = secrets.token_bytes = secrets.token_hex = secrets.randbits = refuse
random.random = random.getrandbits = time.time = time.time_ns = refuse
class FrozenDatetime(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        refuse()
dt.datetime = FrozenDatetime
import entry
assert type(entry.APP).__name__ == "FastAPI"
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}:{ROOT / 'tests' / 'cloudflare'}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.anyio
async def test_websocket_upgrade_without_a_route_is_404(jsfake: Any, entry: Any, env: Any) -> None:
    response = await serve(
        jsfake, entry, env, "https://apiary.example/api/ws", headers={"Upgrade": "websocket"}
    )
    assert response.status == 404


@pytest.mark.anyio
async def test_scheduled_starts_job_runs_and_records_the_event(
    jsfake: Any, entry: Any, env: Any, db: Any
) -> None:
    worker = entry.Default(jsfake.FakeExecutionContext(), env)
    controller = jsfake.make_controller("6 2 * * *", 1_800_000_000_000)
    # workerd calls a class entrypoint's handler with the controller alone: env and ctx are
    # the instance's own (`self.env`), the extra arguments arrive as None.
    await worker.scheduled(controller, None, None)
    rows = db.query("SELECT cron, scheduled_time, jobs FROM cron_events")
    assert rows == [{"cron": "6 2 * * *", "scheduled_time": "2027-01-15T08:00:00.000Z", "jobs": 1}]
    # The run went to the job's JobRunner (through the shell, over RPC) and was projected.
    runs = db.query("SELECT job, source, status, scheduled_time FROM cron_runs")
    assert runs == [
        {
            "job": "parties-import",
            "source": "cron",
            "status": "queued",
            "scheduled_time": "2027-01-15T08:00:00.000Z",
        }
    ]


# --- the shell, with a logic class that uses every hook -----------------------------------


def _room_class() -> type:
    from durable.base import (
        AlarmInfo,
        DurableObjectLogic,
        ObjectRequest,
        ObjectResponse,
        rpc,
    )

    class Room(DurableObjectLogic):
        def on_start(self) -> None:
            self.ctx.storage.exec("CREATE TABLE IF NOT EXISTS seen (what TEXT)")
            self.ctx.sockets.set_auto_response("ping", "pong")

        async def on_request(self, request: ObjectRequest) -> ObjectResponse:
            if request.is_websocket_upgrade:
                socket = self.ctx.sockets.accept(
                    tags=["room", request.query["who"]], attachment={"who": request.query["who"]}
                )
                socket.send("welcome")
                return ObjectResponse.upgrade(socket)
            return ObjectResponse.json({"path": request.path, "body": request.json()}, 201)

        async def on_socket_message(self, socket: Any, message: str | bytes) -> None:
            self.ctx.storage.exec("INSERT INTO seen VALUES (?)", f"msg:{message!r}")
            socket.send(f"{socket.attachment['who']}:{socket.tags}")

        async def on_socket_close(self, socket: Any, code: int, reason: str) -> None:
            self.ctx.storage.exec("INSERT INTO seen VALUES (?)", f"close:{code}:{reason}")

        async def on_alarm(self, info: AlarmInfo) -> None:
            self.ctx.storage.exec("INSERT INTO seen VALUES (?)", f"alarm:{info.retry_count}")

        @rpc
        async def arm(self, at_ms: int) -> int | None:
            await self.ctx.storage.set_alarm(at_ms)
            return await self.ctx.storage.get_alarm()

        @rpc
        async def seen(self) -> list[str]:
            return [r["what"] for r in self.ctx.storage.exec("SELECT what FROM seen")]

        @rpc
        async def atomic(self) -> None:
            def write_then_fail() -> None:
                self.ctx.storage.exec("INSERT INTO seen VALUES ('rolled back')")
                raise LookupError("undo me")

            self.ctx.storage.transaction(write_then_fail)

    return Room


@pytest.mark.anyio
async def test_shell_hooks_websockets_and_alarms(jsfake: Any, env: Any, entry: Any) -> None:
    from workers import Request

    from cloudflare_adapters.shell import durable_object_class

    Room = durable_object_class("Room", _room_class())
    state = jsfake.FakeDurableObjectState(name="r1")
    room = Room(state, env)

    plain = await room.fetch(
        Request(jsfake.make_request("https://do/x", method="POST", body='{"a": 1}'))
    )
    assert plain.status == 201
    assert json.loads(await plain.text()) == {"path": "/x", "body": {"a": 1}}

    upgrade = await room.fetch(
        Request(jsfake.make_request("https://do/ws?who=ann", headers={"Upgrade": "websocket"}))
    )
    assert upgrade.status == 101
    client = upgrade.js_object.webSocket
    (server,) = state.getWebSockets("room")
    assert client.received == ["welcome"]

    assert await state.deliver_message(server, "ping", room) is False  # auto-response: no wake
    assert await state.deliver_message(server, "hi", room) is True
    assert await state.deliver_message(server, b"\x01", room) is True
    assert client.received == ["welcome", "pong", "ann:['room', 'ann']", "ann:['room', 'ann']"]
    await state.deliver_close(server, room, 1001, "going away")
    assert (server.readyState, server.close_code) == (jsfake.WebSocket.CLOSED, 1000)

    armed = await room.arm(1_900_000_000_000)
    assert armed.to_py() == {"ok": 1_900_000_000_000}  # the RPC envelope, as a stub sees it
    alarm_info = jsfake.js_value({"retryCount": 2, "isRetry": True})
    await room.alarm(alarm_info)

    with pytest.raises(LookupError, match="undo me"):
        await room.atomic()
    # Called directly (not through a stub) a shell's RPC method returns the JS value it sends.
    assert (await room.seen()).to_py()["ok"] == [
        "msg:'hi'",
        "msg:b'\\x01'",
        "close:1001:going away",
        "alarm:2",
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("code", "answer"), [(1000, 1000), (1001, 1000), (1005, 1000), (1006, 1000), (4001, 4001)]
)
async def test_a_client_close_is_answered(
    jsfake: Any, env: Any, entry: Any, code: int, answer: int
) -> None:
    """With the Hibernation API the server must complete the close handshake itself; codes no
    endpoint may send (1005, 1006, 1015) and those close() refuses become 1000."""
    from workers import Request

    from cloudflare_adapters.shell import durable_object_class

    room = durable_object_class("Room", _room_class())(jsfake.FakeDurableObjectState(), env)
    upgrade = await room.fetch(
        Request(jsfake.make_request("https://do/ws?who=bo", headers={"Upgrade": "websocket"}))
    )
    assert upgrade.status == 101
    (server,) = room.ctx.getWebSockets("room")
    await room.ctx.deliver_close(server, room, code, "bye")
    assert server.readyState == jsfake.WebSocket.CLOSED
    assert server.close_code == answer
    assert (await room.seen()).to_py()["ok"] == [f"close:{code}:bye"]


def test_storage_transactions_leave_no_proxy_behind(jsfake: Any) -> None:
    from workers.entrypoints import DurableObjectContext

    from cloudflare_adapters.storage import DurableObjectStorage

    state = jsfake.FakeDurableObjectState()
    storage = DurableObjectStorage(DurableObjectContext(state).storage)
    storage.exec("CREATE TABLE t (v INTEGER)")
    assert storage.transaction(lambda: storage.exec("INSERT INTO t VALUES (1)") or 7) == 7
    with pytest.raises(LookupError):
        storage.transaction(lambda: (storage.exec("INSERT INTO t VALUES (2)"), {}["missing"]))
    assert storage.exec("SELECT v FROM t") == [{"v": 1}]
    callbacks = state.storage.transaction_callbacks
    assert len(callbacks) == 2
    assert all(isinstance(c, jsfake.PyProxy) and c.destroyed for c in callbacks)


@pytest.mark.anyio
async def test_d1_adapter_contract(jsfake: Any, db: Any) -> None:
    from workers.rpc import _EnvWrapper

    from cloudflare_adapters.d1 import D1Database
    from ports import PortError, Statement

    d1 = D1Database(_EnvWrapper(jsfake.make_env(DB=db)).DB)
    await d1.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
    inserted = await d1.execute("INSERT INTO t VALUES (?, ?)", "a", None)
    assert inserted.changes == 1
    assert (await d1.execute("SELECT k, v FROM t")).rows == [{"k": "a", "v": None}]
    with pytest.raises(ValueError, match="2\\*\\*53"):
        await d1.execute("SELECT ?", 2**60)
    with pytest.raises(PortError):
        await d1.batch(
            [
                Statement("INSERT INTO t VALUES ('b', 'x')"),
                Statement("INSERT INTO t VALUES ('a', 'dup')"),
            ]
        )
    assert [r["k"] for r in (await d1.execute("SELECT k FROM t ORDER BY k")).rows] == ["a"]
    results = await d1.batch(
        [
            Statement("INSERT INTO t VALUES (?, ?)", ("c", "1")),
            Statement("SELECT COUNT(*) AS n FROM t"),
        ]
    )
    assert results[1].rows == [{"n": 2}]
    with pytest.raises(PortError):
        await d1.execute("SELECT * FROM missing")
