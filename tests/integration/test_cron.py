"""Cron dispatch through `apiary dev`, against a real job backend and alert receiver on loopback."""

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.cron_backend import CronBackend, Reply
from tests.harness import APIARY, ROOT, DevServer, admin_token, free_port, wait_up

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": f"Bearer {admin_token()}"}
CRON_TOKEN = "cron-token-0123456789-abcdef"
FIXTURE = {"worker": "cron_worker:WORKER", "pythonpath": ROOT / "tests" / "fixtures" / "cron"}
ACTIVE = {"queued", "running", "retrying"}


@pytest.fixture
def backend() -> Iterator[CronBackend]:
    server = CronBackend().start()
    yield server
    server.stop()


@pytest.fixture
def apiary(dev_server: Callable[..., DevServer], backend: CronBackend) -> Callable[..., DevServer]:
    """Start `apiary dev` wired to the backend; crons fire only on `/__scheduled`."""

    def start(**options: Any) -> DevServer:
        dev_vars = {
            "BACKEND_BASE": backend.url,
            "CRON_TOKEN": CRON_TOKEN,
            "SLACK_WEBHOOK_URL": f"{backend.url}/slack",
        }
        return dev_server(args=("--no-cron",), **(dev_vars | options))

    return start


def trigger(server: DevServer, **body: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{server.url}/trigger", headers=ADMIN, json=body, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["runs"]


def run(server: DevServer, run_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/cron/runs/{run_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def wait_run(
    server: DevServer, run_id: str, until: Callable[[dict], bool] | None = None, timeout_s=20
) -> dict[str, Any]:
    until = until or (lambda r: r["status"] not in ACTIVE)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = httpx.get(f"{server.url}/api/cron/runs/{run_id}", headers=ADMIN)
        if response.status_code == 200 and until(response.json()):
            return response.json()
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not get there: {response.text}")


def runs(server: DevServer, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/cron/runs", headers=ADMIN, params=params)
    assert response.status_code == 200, response.text
    return response.json()["runs"]


def test_a_cron_dispatches_its_job_once(apiary: Callable, backend: CronBackend) -> None:
    server = apiary()
    scheduled_ms = 1_795_000_000_000  # 2026-11-18T11:06:40Z
    url = f"{server.url}/__scheduled?cron={quote('*/5 * * * *')}&time={scheduled_ms}"
    assert httpx.get(url).status_code == 200
    [started] = runs(server, job="every5min")
    done = wait_run(server, started["id"])
    assert done["status"] == "succeeded"
    assert done["source"] == "cron"
    assert done["scheduled_time"] == "2026-11-18T11:06:40.000Z"
    [call] = backend.calls
    assert (call.method, call.path) == ("POST", "/cron/ee-recent")
    assert call.headers["authorization"] == f"Bearer {CRON_TOKEN}"
    assert call.headers["x-correlation-id"] == done["correlation_id"]
    assert call.body == {
        "job": "every5min",
        "source": "cron",
        "scheduled_time": "2026-11-18T11:06:40.000Z",
        "attempt": 1,
    }
    # The call was made as the run was handed over: no alarm came between (the one left is
    # the missed-run watch, minutes away).
    assert server.meter()["totals"].get("do_alarms", 0) == 0
    # The same scheduled event handed over again starts nothing new.
    assert httpx.get(url).status_code == 200
    time.sleep(0.5)
    assert len(runs(server, job="every5min")) == 1
    assert len(backend.calls) == 1
    # A cron of no job in this environment starts nothing.
    assert httpx.get(f"{server.url}/__scheduled?cron={quote('*/15 * * * *')}").status_code == 200
    assert len(runs(server)) == 1
    assert backend.alerts == []


def test_a_flaky_backend_gives_one_run_with_three_attempts(
    apiary: Callable, backend: CronBackend
) -> None:
    backend.script("/cron/ee-recent", Reply(500), Reply(503), Reply(200))
    server = apiary()
    [started] = trigger(server, job="every5min")
    done = wait_run(server, started["id"])
    assert done["status"] == "succeeded"
    assert done["attempts_made"] == 3
    assert [a["http_status"] for a in done["attempts"]] == [500, 503, 200]
    assert [a["outcome"] for a in done["attempts"]] == ["retry", "retry", "succeeded"]
    assert {a["correlation_id"] for a in done["attempts"]} == {done["correlation_id"]}
    calls = backend.calls_to("/cron/ee-recent")
    assert [c.body["attempt"] for c in calls] == [1, 2, 3]
    assert {c.body["source"] for c in calls} == {"manual"}
    assert {c.headers["x-correlation-id"] for c in calls} == {done["correlation_id"]}
    assert calls[1].at - calls[0].at >= 0.4  # a backoff, not an immediate retry
    assert backend.alerts == []


def test_401_fails_without_retries_and_alerts_once_per_streak(
    apiary: Callable, backend: CronBackend
) -> None:
    # The body echoes the Authorization header: the token must not reach the alert.
    backend.script("/cron/ee-recent", Reply(401, body='{"detail": "bad {authorization}"}'))
    server = apiary()
    first = wait_run(server, trigger(server, job="every5min")[0]["id"])
    assert first["status"] == "failed"
    assert first["attempts_made"] == 1
    assert first["error"].startswith("auth:")
    second = wait_run(server, trigger(server, job="every5min")[0]["id"])
    assert second["status"] == "failed"
    backend.script("/cron/ee-recent", Reply(200))
    third = wait_run(server, trigger(server, job="every5min")[0]["id"])
    assert third["status"] == "succeeded"
    deadline = time.monotonic() + 10
    while len(backend.alerts) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert [a["apiary"]["kind"] for a in backend.alerts] == ["failed", "recovered"]
    failed = backend.alerts[0]
    assert failed["apiary"]["correlation_id"] == first["correlation_id"]
    assert first["correlation_id"] in failed["text"]
    assert "auth" in failed["text"]
    assert len(backend.calls) == 3
    for alert in backend.alerts:
        assert CRON_TOKEN not in str(alert)
    assert CRON_TOKEN not in server.log()


def test_a_hanging_backend_times_out_and_retries(apiary: Callable, backend: CronBackend) -> None:
    backend.script("/cron/hang", Reply(delay_s=4))
    server = apiary(**FIXTURE)
    done = wait_run(server, trigger(server, job="hangs")[0]["id"])
    assert done["status"] == "failed"
    assert [a["outcome"] for a in done["attempts"]] == ["retry", "failed"]
    for attempt in done["attempts"]:
        assert attempt["http_status"] is None
        assert attempt["error"].startswith("timeout")
        assert 900 <= attempt["duration_ms"] < 3000
    assert len(backend.calls_to("/cron/hang")) == 2
    # The alert follows the run's projection out of the outbox: it may land a moment later.
    deadline = time.monotonic() + 10
    while not backend.alerts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [a["apiary"]["kind"] for a in backend.alerts] == ["failed"]


def retrying(server: DevServer, policy: str, backend: CronBackend) -> dict[str, Any]:
    """A run of `{policy}-job` left waiting out a Retry-After, so it stays active."""
    backend.script(f"/cron/{policy}", Reply(503, headers={"Retry-After": "60"}), Reply(200))
    [started] = trigger(server, job=f"{policy}-job")
    return wait_run(server, started["id"], until=lambda r: r["status"] == "retrying")


@pytest.mark.parametrize("policy", ["forbid", "replace", "allow"])
def test_concurrency_policies(apiary: Callable, backend: CronBackend, policy: str) -> None:
    server = apiary(**FIXTURE)
    first = retrying(server, policy, backend)
    [second] = trigger(server, job=f"{policy}-job")
    if policy == "forbid":
        assert second["status"] == "skipped"
        assert run(server, first["id"])["status"] == "retrying"
        assert wait_run(server, second["id"])["error"] == f"run {first['id']} was still active"
        assert len(backend.calls_to("/cron/forbid")) == 1
    elif policy == "replace":
        assert wait_run(server, second["id"])["status"] == "succeeded"
        cancelled = wait_run(server, first["id"])
        assert cancelled["status"] == "cancelled"
        assert cancelled["error"] == f"replaced by run {second['id']}"
        assert len(backend.calls_to("/cron/replace")) == 2
    else:
        assert wait_run(server, second["id"])["status"] == "succeeded"
        assert run(server, first["id"])["status"] == "retrying"  # both runs live
        assert len(backend.calls_to("/cron/allow")) == 2


def test_sigkill_during_a_backoff_the_retry_still_happens_once(
    apiary: Callable, backend: CronBackend
) -> None:
    backend.script("/cron/flaky", Reply(503, headers={"Retry-After": "3"}), Reply(200))
    server = apiary(**FIXTURE)
    [started] = trigger(server, job="flaky")
    wait_run(server, started["id"], until=lambda r: r["status"] == "retrying")
    server.kill()
    assert len(backend.calls_to("/cron/flaky")) == 1
    server.start()
    done = wait_run(server, started["id"], timeout_s=30)
    assert done["status"] == "succeeded"
    assert [a["http_status"] for a in done["attempts"]] == [503, 200]
    calls = backend.calls_to("/cron/flaky")
    assert len(calls) == 2
    assert calls[1].at - calls[0].at >= 2.9  # Retry-After honoured across the restart
    time.sleep(1)
    assert len(backend.calls_to("/cron/flaky")) == 2


@pytest.mark.timeout(120)
def test_silence_after_a_success_raises_one_missed_alert(
    apiary: Callable, backend: CronBackend
) -> None:
    server = apiary(**FIXTURE)
    assert wait_run(server, trigger(server, job="watched")[0]["id"])["status"] == "succeeded"
    # No run comes at the next minute (crons fire only on /__scheduled here): the watch fires.
    deadline = time.monotonic() + 75
    while not backend.alerts and time.monotonic() < deadline:
        time.sleep(0.2)
    [missed] = backend.alerts
    assert missed["apiary"]["kind"] == "missed"
    assert missed["apiary"]["job"] == "watched"
    assert "no successful run since" in missed["text"]
    assert wait_run(server, trigger(server, job="watched")[0]["id"])["status"] == "succeeded"
    deadline = time.monotonic() + 5
    while len(backend.alerts) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [a["apiary"]["kind"] for a in backend.alerts] == ["missed", "recovered"]


def test_trigger_all_jobs_and_errors(apiary: Callable, backend: CronBackend) -> None:
    server = apiary()
    started = trigger(server)
    assert sorted(r["job"] for r in started) == ["check-current", "every5min", "parties-import"]
    for r in started:
        assert wait_run(server, r["id"])["status"] == "succeeded"
    assert sorted(c.path for c in backend.calls) == [
        "/cron/check-current",
        "/cron/ee-recent",
        "/cron/parties-import",
    ]
    # A job with no schedule here still runs when asked by name, query string and all.
    [mop] = trigger(server, job="mop-recent")
    assert wait_run(server, mop["id"])["status"] == "succeeded"
    assert backend.calls_to("/cron/mop-recent")[0].path == "/cron/mop-recent?delta=25"
    response = httpx.post(f"{server.url}/trigger", headers=ADMIN, json={"job": "nope"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = httpx.post(f"{server.url}/trigger", headers=ADMIN, json={"jobs": 1})
    assert response.status_code == 422
    reader = {"Authorization": f"Bearer {admin_token(('tasks:read',))}"}
    assert httpx.post(f"{server.url}/trigger", headers=reader, json={}).status_code == 403
    assert httpx.get(f"{server.url}/api/cron/runs/crn_nope", headers=ADMIN).status_code == 404
    assert httpx.get(f"{server.url}/api/cron/runs?cursor=zz", headers=ADMIN).status_code == 422


def test_the_reference_backend_answers_scheduled_jobs(apiary: Callable) -> None:
    port = free_port()
    command = [str(APIARY), "backend", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "APIARY_TOKEN"} | {"CRON_TOKEN": CRON_TOKEN}
    quiet = subprocess.DEVNULL
    with subprocess.Popen(command, stdout=quiet, stderr=quiet, env=env) as ref:
        try:
            wait_up(f"http://127.0.0.1:{port}/health")
            server = apiary(BACKEND_BASE=f"http://127.0.0.1:{port}")
            for started in trigger(server):
                assert wait_run(server, started["id"])["status"] == "succeeded"
            stats = httpx.get(f"http://127.0.0.1:{port}/stats").json()["stats"]
            assert stats == {"cron:ee-recent": 1, "cron:parties-import": 1, "cron:check-current": 1}
            wrong = apiary(BACKEND_BASE=f"http://127.0.0.1:{port}", CRON_TOKEN="not-the-token")
            refused = wait_run(wrong, trigger(wrong, job="every5min")[0]["id"])
            assert refused["status"] == "failed"
            assert refused["error"].startswith("auth:")
        finally:
            ref.terminate()


def test_jobs_listing_shows_schedule_next_run_and_last_outcome(
    apiary: Callable, backend: CronBackend
) -> None:
    backend.script("/cron/check-current", Reply(404))
    server = apiary()
    [failed] = trigger(server, job="check-current")
    wait_run(server, failed["id"])
    body = httpx.get(f"{server.url}/api/cron/jobs", headers=ADMIN).json()
    assert body["environment"] == "development"
    jobs = {job["name"]: job for job in body["jobs"]}
    assert list(jobs) == ["every5min", "parties-import", "check-current", "mop-recent"]
    assert jobs["every5min"]["schedule"] == "*/5 * * * *"
    assert jobs["every5min"]["next_run"].endswith(":00.000Z")
    assert int(jobs["every5min"]["next_run"][14:16]) % 5 == 0
    assert jobs["mop-recent"]["schedule"] is None
    assert jobs["mop-recent"]["next_run"] is None
    assert jobs["check-current"]["concurrency"] == "replace"
    assert jobs["check-current"]["last_run"]["status"] == "failed"
    assert jobs["check-current"]["last_run"]["id"] == failed["id"]
    assert jobs["every5min"]["last_run"] is None


def test_health_reports_backend_and_auth(apiary: Callable, backend: CronBackend) -> None:
    server = apiary()
    body = httpx.get(f"{server.url}/health", headers=ADMIN).json()
    assert body["checks"] == {"database": "ok", "backend": "ok", "auth": "configured"}
    assert body["status"] == "ok"
    backend.script("/health", Reply(503))
    response = httpx.get(f"{server.url}/health", headers=ADMIN)
    assert response.status_code == 200  # apiary itself still serves
    assert response.json()["checks"]["backend"] == "http_503"
    assert response.json()["status"] == "degraded"


@pytest.mark.timeout(180)  # a thousand triggers: about 25 s on a quiet machine
def test_run_history_pages_through_a_thousand_runs(apiary: Callable, backend: CronBackend) -> None:
    server = apiary(**FIXTURE)
    with httpx.Client(base_url=server.url, headers=ADMIN, timeout=30) as client:
        ids = set()
        for _ in range(1000):
            response = client.post("/trigger", json={"job": "allow-job"})
            assert response.status_code == 202, response.text
            ids.add(response.json()["runs"][0]["id"])
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen, cursor = [], None
            while True:
                params = {"limit": 200, "status": "succeeded"}
                if cursor:
                    params["cursor"] = cursor
                page = client.get("/api/cron/runs", params=params).json()
                seen.extend(r["id"] for r in page["runs"])
                cursor = page["next_cursor"]
                if not cursor:
                    break
            if len(seen) == 1000:
                break
            time.sleep(0.2)
    assert seen == sorted(ids, reverse=True)  # newest first, each once
    assert len(backend.calls_to("/cron/allow")) == 1000
