"""BrowserTestRun in process: a cancel while its check is in flight, and the crash retry."""

import asyncio
from pathlib import Path

import pytest

from durable.browser_limits import BrowserLimits, BrowserLimitsClient
from durable.browser_test_run import BrowserTestRun, BrowserTestRunClient
from tests.world import Gate, Reply, World

pytestmark = pytest.mark.anyio
RUN = "btr_01M8000000000000000000RUN1"
RUNNER = "http://runner.test"
SPEC = {"id": RUN, "test_type": "user_journey", "target_url": "http://site.test/",
        "options": {"steps": [{"action": "goto", "url": "http://site.test/"}]}}  # fmt: skip
CLASSES = {"BROWSER_TEST_RUNS": BrowserTestRun, "BROWSER_LIMITS": BrowserLimits}
PASSED = {"ok": True, "steps": [{"index": 0, "action": "goto", "ok": True}]}


def world(tmp_path: Path) -> World:
    return World(tmp_path, classes=CLASSES, config={"BROWSER_RUNNER_URL": RUNNER})


async def test_a_cancel_during_the_check_stands(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        gate = Gate(Reply(200, PASSED))
        w.http.route("POST", f"{RUNNER}/run", gate)
        client = BrowserTestRunClient.for_run(w.services, RUN)
        await client.start(SPEC)
        alarm = asyncio.create_task(w.alarm("BROWSER_TEST_RUNS", RUN))
        await gate.entered.wait()
        assert (await client.cancel())["status"] == "cancelled"
        gate.release.set()  # the check passes, but too late to count
        await alarm
        assert (await client.get())["status"] == "cancelled"
        projected = w.rows("SELECT status FROM browser_test_runs WHERE id = ?", RUN)
        assert projected == [{"status": "cancelled"}]
        assert (await BrowserLimitsClient.of(w.services).usage())["browsers_in_use"] == 0


async def test_a_429_is_not_a_try_and_one_crash_is_retried(tmp_path: Path) -> None:
    """A run sent back by a 429 and then cut off by a crash still gets its one retry."""
    async with world(tmp_path) as w:
        w.http.route("POST", f"{RUNNER}/run", lambda _: Reply(429, headers={"Retry-After": "1"}))
        await BrowserTestRunClient.for_run(w.services, RUN).start(SPEC)
        await w.alarm("BROWSER_TEST_RUNS", RUN)
        assert (await BrowserTestRunClient.for_run(w.services, RUN).get())["status"] == "pending"
        hang = Gate(Reply(200, PASSED))  # never released: the process dies mid-check
        w.http.route("POST", f"{RUNNER}/run", hang)
        w.clock.advance(61_000)  # past the 429's pause and the per-minute budget
        alarm = asyncio.create_task(w.alarm("BROWSER_TEST_RUNS", RUN))
        await hang.entered.wait()
        alarm.cancel()
    async with world(tmp_path) as again:  # the runtime restarted; the run was `running`
        again.clock.advance(10 * 60_000)  # the dead run's browser lease has expired
        again.http.route("POST", f"{RUNNER}/run", lambda _: Reply(200, PASSED))
        await again.alarm("BROWSER_TEST_RUNS", RUN)
        run = await BrowserTestRunClient.for_run(again.services, RUN).get()
        assert run["status"] == "passed", run
