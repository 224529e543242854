"""BrowserTestRun in process: a cancel while its check is in flight, the crash retry, and a
run waiting for a browser woken when one frees."""

import asyncio
from pathlib import Path

import pytest

from durable.browser_limits import BrowserLimits, BrowserLimitsClient, Grant
from durable.browser_test_run import BrowserTestRun, BrowserTestRunClient
from durable.rpc import rpc
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


async def test_a_freed_browser_goes_to_the_longest_waiting_run(tmp_path: Path) -> None:
    config = {"BROWSER_MAX_CONCURRENCY": "1"}
    async with World(tmp_path, classes=CLASSES, config=config) as w:
        limits = BrowserLimitsClient.of(w.services)
        assert (await limits.acquire("a", 1))["granted"]
        for waiting in ("b", "c", "b"):
            refused = await limits.acquire(waiting, 1)
            assert not refused["granted"]
            assert refused["retry_after_ms"] >= 10_000  # no polling: it will be woken
        assert await limits.release("a") == "b"  # first in line
        assert await limits.release("c") is None  # it gave up its place; b has the browser
        assert (await limits.acquire("b", 1))["granted"]
        assert await limits.release("b") is None  # nobody is waiting


class HeldRefusals(BrowserLimits):
    """BrowserLimits holding each refusal until the test lets it go: the refused run is parked
    at its await, where Cloudflare delivers other events to it."""

    held = asyncio.Event()
    go = asyncio.Event()

    @rpc
    async def acquire(self, run_id: str, cost: int) -> Grant:
        grant = await super().acquire(run_id, cost)
        if not grant["granted"]:
            HeldRefusals.held.set()
            await HeldRefusals.go.wait()
        return grant


class WakeSeen(BrowserTestRun):
    woken = asyncio.Event()

    @rpc
    async def wake(self) -> None:
        await super().wake()
        WakeSeen.woken.set()


@pytest.mark.timeout(20)
async def test_a_waiting_run_is_woken_when_a_browser_frees(tmp_path: Path) -> None:
    """Even when the wake lands while the run is still being told to wait; and with the clock
    standing still, so no retry alarm could have done it."""
    HeldRefusals.held, HeldRefusals.go, WakeSeen.woken = (asyncio.Event() for _ in range(3))
    classes = {"BROWSER_TEST_RUNS": WakeSeen, "BROWSER_LIMITS": HeldRefusals}
    config = {"BROWSER_RUNNER_URL": RUNNER, "BROWSER_MAX_CONCURRENCY": "1"}
    async with World(tmp_path, classes=classes, config=config) as w:
        gates = [Gate(Reply(200, PASSED)), Gate(Reply(200, PASSED))]
        w.http.route("POST", f"{RUNNER}/run", lambda request: gates[len(w.http.calls) - 1](request))
        second = f"{RUN}2"
        await BrowserTestRunClient.for_run(w.services, RUN).start(SPEC)
        first_alarm = asyncio.create_task(w.alarm("BROWSER_TEST_RUNS", RUN))
        await gates[0].entered.wait()  # the first run has the only browser
        await BrowserTestRunClient.for_run(w.services, second).start({**SPEC, "id": second})
        refused = asyncio.create_task(w.alarm("BROWSER_TEST_RUNS", second))
        await HeldRefusals.held.wait()  # the second is refused, and not yet told
        gates[0].release.set()
        await WakeSeen.woken.wait()  # the first gave the browser back and woke the second
        HeldRefusals.go.set()
        await asyncio.gather(first_alarm, refused)
        # The wake's alarm stood against the refusal's 30 s retry: due now, on a still clock.
        assert w.alarm_at("BROWSER_TEST_RUNS", second) == w.clock.ms
        woken = asyncio.create_task(w.alarm("BROWSER_TEST_RUNS", second))
        await gates[1].entered.wait()  # the second has the browser
        gates[1].release.set()
        await woken
        assert (await BrowserTestRunClient.for_run(w.services, second).get())["status"] == "passed"


class Unreachable(BrowserLimits):
    @rpc
    async def release(self, run_id: str) -> str | None:
        raise RuntimeError("BrowserLimits is unreachable")


async def test_a_browser_that_cannot_be_given_back_costs_no_outcome(tmp_path: Path) -> None:
    classes = {**CLASSES, "BROWSER_LIMITS": Unreachable}
    async with World(tmp_path, classes=classes, config={"BROWSER_RUNNER_URL": RUNNER}) as w:
        w.http.route("POST", f"{RUNNER}/run", lambda _: Reply(200, PASSED))
        client = BrowserTestRunClient.for_run(w.services, RUN)
        await client.start(SPEC)
        await w.alarm("BROWSER_TEST_RUNS", RUN)
        assert (await client.get())["status"] == "passed"  # the lease will expire by itself
