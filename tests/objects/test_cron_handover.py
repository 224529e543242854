"""JobRunner in process: a run's first attempt is made as the run is handed over, not from an
alarm; the record is durable before the call leaves, so a crash in between loses nothing.
"""

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest

from cron.dispatch import ScheduledEvent, on_scheduled
from cron.jobs import Job, JobTable
from durable.job_runner import JobRunner, JobRunnerClient
from tests.world import Reply, Request, World

pytestmark = pytest.mark.anyio
BACKEND = "http://backend.test"
CRON = "*/5 * * * *"
TIMEOUT_S = 10


def world_for(tmp_path: Path, *names: str, timeout_s: float = TIMEOUT_S) -> World:
    jobs = JobTable(
        Job(name=n, path=f"/cron/{n}", schedules={"development": CRON}, timeout_s=timeout_s)
        for n in names or ("job",)
    )
    runner = JobRunner.for_jobs(jobs)
    return World(tmp_path, classes={"JOB_RUNNER": runner}, config={"BACKEND_BASE": BACKEND})


class HeldBackend:
    """Answers 200 once released; until then every call waits, counted."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.release = asyncio.Event()
        self.arrived = asyncio.Condition()

    async def __call__(self, request: Request) -> Reply:
        async with self.arrived:
            self.requests.append(request)
            self.arrived.notify_all()
        await self.release.wait()
        return Reply(200, {"ok": True})

    async def wait_for(self, count: int) -> None:
        async with self.arrived:
            await self.arrived.wait_for(lambda: len(self.requests) >= count)


def kept(world: World, job: str = "job") -> dict[str, str]:
    """The runs as the object's file holds them, read from outside: only what is committed."""
    with contextlib.closing(sqlite3.connect(world.object_file("JOB_RUNNER", job))) as db:
        return dict(db.execute("SELECT id, status FROM runs").fetchall())


async def test_the_first_attempt_is_made_in_the_handover_without_an_alarm(tmp_path: Path) -> None:
    async with world_for(tmp_path) as world:
        backend = HeldBackend()
        world.http.route("POST", f"{BACKEND}/cron/job", backend)
        started = await JobRunnerClient.for_job(world.services, "job").start(
            "job", "cron", world.clock.ms
        )
        run_id = started["run"]["id"]
        assert started["run"]["status"] == "running"
        await backend.wait_for(1)
        assert world.meter.totals["do_alarms"] == 0  # no alarm made the call
        assert kept(world) == {run_id: "running"}  # committed before the call left
        backend.release.set()
        await world.settle()
        assert kept(world) == {run_id: "succeeded"}
        [projected] = world.rows("SELECT id, status, attempts FROM cron_runs")
        assert projected == {"id": run_id, "status": "succeeded", "attempts": 1}
        assert world.meter.totals["do_alarms"] == 0
        # Only the missed-run watch is left: the next fire after this success, plus grace.
        alarm = world.alarm_at("JOB_RUNNER", "job")
        assert alarm is not None
        assert alarm - world.clock.ms > TIMEOUT_S * 1000


async def test_the_scheduled_handler_hands_every_run_over_at_once(tmp_path: Path) -> None:
    names = ("a", "b", "c")
    async with world_for(tmp_path, *names) as world:
        backend = HeldBackend()
        world.http.route("POST", f"{BACKEND}/cron/", backend)
        jobs = world.hosts["JOB_RUNNER"].logic.jobs  # type: ignore[attr-defined]
        await on_scheduled(ScheduledEvent(CRON, world.clock.ms), world.services, jobs)
        # The handler has returned with every run in D1, every call is out, none answered.
        assert world.rows("SELECT status FROM cron_runs") == [{"status": "running"}] * 3
        await backend.wait_for(len(names))
        assert sorted(r.url for r in backend.requests) == [f"{BACKEND}/cron/{n}" for n in names]
        assert world.meter.totals["do_alarms"] == 0
        [event] = world.rows("SELECT jobs FROM cron_events")
        assert event == {"jobs": 3}
        backend.release.set()
        await world.settle()
        statuses = world.rows("SELECT status FROM cron_runs")
        assert statuses == [{"status": "succeeded"}] * 3


class StuckDisk:
    """An fsync that does not return: the process dies with the record committed but not yet
    known to be on disk, so the output gate has let nothing out."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, path: Path) -> None:
        self.entered.set()
        self.release.wait(10)


async def test_a_crash_between_the_record_and_the_call_still_makes_the_call(
    tmp_path: Path,
) -> None:
    disk = StuckDisk()
    async with world_for(tmp_path) as world:
        world.http.route("POST", f"{BACKEND}/cron/job", lambda _: Reply(200))
        host = world.hosts["JOB_RUNNER"]
        storage, _ = host._open(host._slot_for("job"))
        storage.sync.fsync = disk
        client = JobRunnerClient.for_job(world.services, "job")
        handover = asyncio.ensure_future(client.start("job", "cron", world.clock.ms))
        assert await asyncio.to_thread(disk.entered.wait, 10)
        assert world.http.calls == []
        handover.cancel()  # the process dies here: nothing more runs
    disk.release.set()
    async with world_for(tmp_path) as world:
        world.http.route("POST", f"{BACKEND}/cron/job", lambda _: Reply(200))
        [run_id] = kept(world)
        assert kept(world) == {run_id: "running"}
        await world.alarm("JOB_RUNNER", "job")  # past the attempt's deadline: taken as lost
        await world.settle()
        [call] = world.http.calls
        assert call.body["attempt"] == 2
        attempts = world.rows(
            "SELECT attempt, outcome FROM cron_attempts WHERE run_id = ? ORDER BY attempt", run_id
        )
        assert attempts == [
            {"attempt": 1, "outcome": "interrupted"},
            {"attempt": 2, "outcome": "succeeded"},
        ]
        assert kept(world) == {run_id: "succeeded"}


async def test_a_call_that_may_outlast_the_object_is_made_from_the_alarm(tmp_path: Path) -> None:
    # Without a request, Cloudflare keeps an object at least 70 s; an alarm handler 15 minutes.
    async with world_for(tmp_path, timeout_s=300) as world:
        world.http.route("POST", f"{BACKEND}/cron/job", lambda _: Reply(200))
        started = await JobRunnerClient.for_job(world.services, "job").start(
            "job", "cron", world.clock.ms
        )
        assert started["run"]["status"] == "queued"
        assert world.alarm_at("JOB_RUNNER", "job") == world.clock.ms  # due now
        await world.alarm("JOB_RUNNER", "job")
        await world.settle()
        assert len(world.http.calls) == 1
        assert kept(world) == {started["run"]["id"]: "succeeded"}
