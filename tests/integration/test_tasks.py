"""Tasks and the server registry through HTTP, with real reference backends on loopback."""

import asyncio
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.harness import Backend, DevServer, admin_token

pytestmark = pytest.mark.slow

# Frequent health checks so a dead server is noticed within seconds. A killed server refuses
# connections at once; the generous timeout only keeps a live one on a loaded machine healthy.
FAST = {
    "HEALTH_INTERVAL_MIN_S": "0.3",
    "HEALTH_INTERVAL_MAX_S": "1",
    "HEALTH_CHECK_TIMEOUT_S": "2",
}
ADMIN = {"Authorization": f"Bearer {admin_token()}"}
TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def task(server: DevServer, task_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/task/{task_id}", headers=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def wait_terminal(server: DevServer, task_id: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = task(server, task_id)
        if record["status"] in TERMINAL:
            return record
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} not finished: {record}")


def submit(server: DevServer, **body: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/api/task", headers=ADMIN, json={"type": "echo", "payload": {}} | body
    )
    assert response.status_code == 201, response.text
    return response.json()


def finished(server: DevServer) -> set[str]:
    """Ids of finished tasks, from the D1 listing (cheap: wakes no object)."""
    done: set[str] = set()
    for status in TERMINAL:
        cursor = None
        while True:
            params = {"status": status, "limit": 200} | ({"cursor": cursor} if cursor else {})
            url = f"{server.url}/api/tasks"
            page = httpx.get(url, headers=ADMIN, params=params, timeout=30).json()
            done.update(t["id"] for t in page["tasks"])
            cursor = page["next_cursor"]
            if not cursor:
                break
    return done


async def submit_many(server: DevServer, count: int, concurrency: int = 24) -> list[str]:
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=server.url, headers=ADMIN, timeout=60) as client:
        numbers = iter(range(count))

        async def worker() -> None:
            for n in numbers:
                body = {"type": "echo", "payload": {"n": n}, "timeout_s": 10, "max_attempts": 4}
                response = await client.post("/api/task", json=body)
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


@pytest.mark.timeout(180)
def test_300_tasks_on_three_backends_survive_losing_one(
    dev_server: Callable[..., DevServer], backend: Callable[..., Backend]
) -> None:
    server = dev_server(**FAST)
    backends = [backend(server, "--capacity", "15", "--work-ms", "150") for _ in range(3)]
    victim = backends[0]

    async def kill_victim_mid_run() -> None:
        async with httpx.AsyncClient() as client:

            async def accepted() -> int:
                return (await client.get(f"{victim.url}/stats")).json()["stats"].get("accepted", 0)

            while await accepted() < 30:  # noqa: ASYNC110 (polling another process)
                await asyncio.sleep(0.05)
        victim.kill()  # while it holds tasks and more are still being submitted

    async def run() -> list[str]:
        ids, _ = await asyncio.gather(submit_many(server, 300), kill_victim_mid_run())
        return ids

    ids = asyncio.run(run())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(finished(server)) < len(ids):
        time.sleep(0.3)
    records = {task_id: task(server, task_id) for task_id in ids}
    assert Counter(r["status"] for r in records.values()) == {"succeeded": 300}
    for record in records.values():
        outcomes = [a["outcome"] for a in record["attempts"]]
        assert outcomes.count("succeeded") == 1, record
        assert outcomes[-1] == "succeeded"
    moved = [r for r in records.values() if len(r["attempts"]) > 1]
    assert moved, "the dead server's tasks were not reassigned"
    assert all(r["attempts"][0]["server_id"] == victim.server_id for r in moved)
    # Moved because the server was noticed down, long before the tasks' 10 s timeout.
    first_outcomes = Counter(r["attempts"][0]["outcome"] for r in moved)
    assert set(first_outcomes) <= {"server_lost", "dispatch_failed"}, first_outcomes
    assert first_outcomes["server_lost"] > 0
    assert all(r["server_id"] != victim.server_id for r in moved)

    # Nothing acknowledged twice: each task's success was accepted from exactly one server.
    completed = Counter()
    for survivor in backends[1:]:
        completed.update(survivor.stats()["completed"])
    assert all(count == 1 for count in completed.values())
    victim_done = {r["id"] for r in records.values() if r["server_id"] == victim.server_id}
    assert set(completed) | victim_done == set(ids)
    assert not set(completed) & victim_done

    status = httpx.get(f"{server.url}/api/servers/{victim.server_id}", headers=ADMIN).json()
    assert status["status"] == "offline"
    with closing(sqlite3.connect(server.state / "d1" / "apiary-dev.sqlite")) as d1:
        events = d1.execute(
            "SELECT from_status, to_status FROM server_status_events WHERE server_id = ?"
            " ORDER BY at",
            (victim.server_id,),
        ).fetchall()
        attempts = d1.execute("SELECT COUNT(*) FROM task_attempts").fetchone()[0]
    assert events[0] == ("unhealthy", "healthy")  # registration
    assert events[-1][1] == "offline"
    assert attempts == sum(len(r["attempts"]) for r in records.values())

    listed = httpx.get(
        f"{server.url}/api/tasks", headers=ADMIN, params={"status": "succeeded", "limit": 200}
    ).json()
    assert len(listed["tasks"]) == 200
    assert listed["next_cursor"]


def test_dispatch_retries_5xx_then_succeeds(
    dev_server: Callable[..., DevServer], backend: Callable[..., Backend]
) -> None:
    server = dev_server(**FAST)
    flaky = backend(server, "--reject", "500:2", "--work-ms", "50")
    record = wait_terminal(server, submit(server)["id"])
    assert record["status"] == "succeeded"
    assert len(record["attempts"]) == 1
    assert flaky.stats()["stats"]["dispatches"] == 3


def test_dispatch_4xx_fails_without_retry(
    dev_server: Callable[..., DevServer], backend: Callable[..., Backend]
) -> None:
    server = dev_server(**FAST)
    strict = backend(server, "--reject", "400:5")
    record = wait_terminal(server, submit(server)["id"])
    assert record["status"] == "failed"
    assert [a["outcome"] for a in record["attempts"]] == ["rejected"]
    assert "HTTP 400" in record["error"]
    assert strict.stats()["stats"]["dispatches"] == 1


def test_hanging_backend_times_out_each_attempt(
    dev_server: Callable[..., DevServer], backend: Callable[..., Backend]
) -> None:
    server = dev_server(**FAST)
    backend(server, "--hang")
    record = wait_terminal(server, submit(server, timeout_s=1, max_attempts=2)["id"])
    assert record["status"] == "timed_out"
    assert [a["outcome"] for a in record["attempts"]] == ["timed_out", "timed_out"]
    assert "gave up after 2 attempts" in record["error"]


def test_a_task_no_server_can_take_waits_for_one_that_can(
    dev_server: Callable[..., DevServer], backend: Callable[..., Backend]
) -> None:
    server = dev_server(**FAST)
    backend(server, "--capabilities", "cpu")
    created = submit(server, required_capabilities=["gpu"])
    assert task(server, created["id"])["status"] == "pending"
    backend(server, "--capabilities", "gpu,cpu", "--work-ms", "20")
    record = wait_terminal(server, created["id"])
    assert record["status"] == "succeeded"
    outcomes = [(a["outcome"], a["error"]) for a in record["attempts"]]
    assert len(outcomes) == 1, outcomes  # waiting is not an attempt


def test_fencing_and_transitions(
    dev_server: Callable[..., DevServer], backend: Callable[..., Backend]
) -> None:
    # The dispatch hangs: every call below lands while it is in flight.
    server = dev_server(**FAST, DISPATCH_TIMEOUT_S="30")
    hung = backend(server, "--hang")
    other = httpx.post(
        f"{server.url}/api/servers",
        headers=ADMIN,
        json={"name": "other", "url": "http://127.0.0.1:9", "capacity": 1},
    ).json()
    created = submit(server, timeout_s=30)
    while not hung.stats()["stats"].get("dispatches"):
        time.sleep(0.05)
    assert task(server, created["id"])["status"] == "assigned"
    stranger = {"Authorization": f"Bearer {other['credential']}"}

    def put(headers: dict[str, str], status: str) -> httpx.Response:
        url = f"{server.url}/api/task/{created['id']}"
        return httpx.put(url, headers=headers, json={"status": status}, timeout=30)

    response = put(stranger, "succeeded")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "lease_lost"
    cancel = put(ADMIN, "cancelled")
    assert cancel.status_code == 200
    assert cancel.json()["status"] == "cancelled"
    again = put(ADMIN, "running")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_transition"


def test_idempotency_key(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(**FAST)
    headers = ADMIN | {"Idempotency-Key": "order-17"}
    body = {"type": "echo", "payload": {"order": 17}}
    first = httpx.post(f"{server.url}/api/task", headers=headers, json=body)
    second = httpx.post(f"{server.url}/api/task", headers=headers, json=body)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    different = httpx.post(
        f"{server.url}/api/task", headers=headers, json={"type": "echo", "payload": {"order": 18}}
    )
    assert different.status_code == 409
    assert different.json()["error"]["code"] == "idempotency_conflict"
    fresh = httpx.post(
        f"{server.url}/api/task", headers=ADMIN | {"Idempotency-Key": "order-18"}, json=body
    )
    assert fresh.json()["id"] != first.json()["id"]


def test_batch_list_filters_and_cursor(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(**FAST)
    tasks = [{"type": "a" if i % 2 else "b", "payload": {"i": i}} for i in range(30)]
    created = httpx.post(f"{server.url}/api/tasks/batch", headers=ADMIN, json={"tasks": tasks})
    assert created.status_code == 201
    ids = [t["id"] for t in created.json()["tasks"]]
    assert ids == sorted(ids)
    seen, cursor = [], None
    while True:
        page = httpx.get(
            f"{server.url}/api/tasks",
            headers=ADMIN,
            params={"type": "a", "limit": 4} | ({"cursor": cursor} if cursor else {}),
        ).json()
        seen += [t["id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(ids[1::2], reverse=True)
    too_many = httpx.post(f"{server.url}/api/tasks/batch", headers=ADMIN, json={"tasks": tasks * 4})
    assert too_many.status_code == 422


def test_heartbeat_and_cleanup_of_silent_servers(
    dev_server: Callable[..., DevServer], backend: Callable[..., Backend]
) -> None:
    server = dev_server(**FAST, SERVER_STALE_AFTER_S="1.5", HEARTBEAT_TTL_S="30")
    alive = backend(server, "--heartbeat-s", "0.3")
    silent = backend(server, "--heartbeat-s", "0")
    time.sleep(2.0)
    removed = httpx.post(f"{server.url}/api/servers/cleanup", headers=ADMIN).json()
    assert removed["removed"] == [silent.server_id]
    listed = httpx.get(f"{server.url}/api/servers", headers=ADMIN).json()["servers"]
    assert [s["id"] for s in listed] == [alive.server_id]
    assert listed[0]["reported_active_tasks"] == 0
    gone = httpx.get(f"{server.url}/api/servers/{silent.server_id}", headers=ADMIN)
    assert gone.status_code == 404


@pytest.mark.timeout(120)
def test_sigkill_under_load_loses_no_acknowledged_task(
    dev_server: Callable[..., DevServer], backend: Callable[..., Backend]
) -> None:
    server = dev_server(**FAST)
    backend(server, "--capacity", "10", "--work-ms", "300")
    ids = asyncio.run(submit_many(server, 60, concurrency=6))
    time.sleep(0.5)
    server.kill()
    server.start()
    for task_id in ids:
        assert wait_terminal(server, task_id, timeout_s=60)["status"] == "succeeded"


ROUTES = [
    ("POST", "/api/servers", {"name": "x", "url": "http://127.0.0.1:9", "capacity": 1},
     ("servers:admin",)),
    ("GET", "/api/servers", None, ("servers:admin", "tasks:read")),
    ("GET", "/api/servers/srv_00000000000000000000000000", None, ("servers:admin", "tasks:read")),
    ("DELETE", "/api/servers/srv_00000000000000000000000000", None, ("servers:admin",)),
    ("POST", "/api/servers/srv_00000000000000000000000000/heartbeat", {}, ("servers:admin",)),
    ("POST", "/api/servers/cleanup", None, ("servers:admin",)),
    ("POST", "/api/task", {"type": "t"}, ("tasks:write",)),
    ("POST", "/api/tasks/batch", {"tasks": [{"type": "t"}]}, ("tasks:write",)),
    ("GET", "/api/task/tsk_00000000000000000000000000", None, ("tasks:read",)),
    ("PUT", "/api/task/tsk_00000000000000000000000000", {"status": "running"}, ("tasks:write",)),
    ("GET", "/api/tasks", None, ("tasks:read",)),
]  # fmt: skip


def test_every_route_by_scope(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(**FAST)
    for method, path, body, scopes in ROUTES:
        url = f"{server.url}{path}"
        anonymous = httpx.request(method, url, json=body)
        assert anonymous.status_code == 401, (method, path)
        wrong = next(s for s in ("swarms:admin", "cron:run", "tasks:read") if s not in scopes)
        headers = {"Authorization": f"Bearer {admin_token((wrong,))}"}
        forbidden = httpx.request(method, url, json=body, headers=headers)
        assert forbidden.status_code == 403, (method, path, forbidden.text)
        for scope in scopes:
            allowed = httpx.request(
                method, url, json=body, headers={"Authorization": f"Bearer {admin_token((scope,))}"}
            )
            assert allowed.status_code not in (401, 403), (method, path, scope, allowed.text)


BAD_BODIES = [
    ("/api/task", {}),
    ("/api/task", {"type": "bad type!"}),
    ("/api/task", {"type": "t", "timeout_s": 0}),
    ("/api/task", {"type": "t", "max_attempts": 99}),
    ("/api/task", {"type": "t", "payload": "x" * (256 * 1024)}),
    ("/api/task", {"type": "t", "surprise": 1}),
    ("/api/servers", {"name": "n", "url": "not a url", "capacity": 1}),
    ("/api/servers", {"name": "n", "url": "http://h", "capacity": 0}),
    ("/api/tasks/batch", {"tasks": []}),
]


def test_bad_bodies_are_422(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server()
    for path, body in BAD_BODIES:
        response = httpx.post(f"{server.url}{path}", headers=ADMIN, json=body)
        assert response.status_code == 422, (path, body, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert error["correlation_id"] == response.headers["x-correlation-id"]


class _ManualBackend:
    """A backend the test drives by hand: it accepts dispatches and remembers their leases."""

    def __init__(self) -> None:
        import http.server
        import threading

        leases: dict[str, str] = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"status": "ok"}')

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                leases[json.loads(body)["id"]] = self.headers["X-Apiary-Lease"]
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.leases = leases
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_repeating_a_final_callback_is_safe(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(**FAST)
    manual = _ManualBackend()
    try:
        registered = httpx.post(
            f"{server.url}/api/servers",
            headers=ADMIN,
            json={"name": "manual", "url": manual.url, "capacity": 2},
        ).json()
        assert registered["server"]["status"] == "healthy"
        created = submit(server)
        deadline = time.monotonic() + 10
        while created["id"] not in manual.leases and time.monotonic() < deadline:
            time.sleep(0.05)
        lease = manual.leases[created["id"]]
        headers = {"Authorization": f"Bearer {registered['credential']}", "X-Apiary-Lease": lease}
        url = f"{server.url}/api/task/{created['id']}"
        done = {"status": "succeeded", "result": {"ok": True}}
        first = httpx.put(url, headers=headers, json=done)
        again = httpx.put(url, headers=headers, json=done)  # its first answer was lost, say
        assert (first.status_code, again.status_code) == (200, 200)
        assert again.json()["status"] == "succeeded"
        other = httpx.put(url, headers=headers, json={"status": "failed", "error": "late"})
        assert other.status_code == 409
        stale = httpx.put(url, headers=headers | {"X-Apiary-Lease": "lse_other"}, json=done)
        assert stale.status_code == 409
    finally:
        manual.close()
