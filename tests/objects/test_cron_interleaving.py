"""JobRunner in process: a run handed over while another run's attempt is in flight.

On Cloudflare (and in `apiary dev`) the input gate opens while the runner awaits its backend,
so `start` can run in the middle of an attempt. Each concurrency policy must decide on the runs
as they are then, and the attempt's answer must not undo that decision.
"""

import contextlib
import sqlite3
from pathlib import Path

import pytest

from cron.jobs import Concurrency, Job, JobTable
from durable.job_runner import JobRunner, JobRunnerClient
from tests.world import Gate, Reply, World

pytestmark = pytest.mark.anyio
BACKEND = "http://backend.test"


def world_for(tmp_path: Path, policy: Concurrency) -> World:
    job = Job(name="job", path="/cron/job", schedules={}, concurrency=policy, max_attempts=1)
    runner = JobRunner.for_jobs(JobTable([job]))
    return World(tmp_path, classes={"JOB_RUNNER": runner}, config={"BACKEND_BASE": BACKEND})


async def in_flight(world: World, gate: Gate) -> tuple[JobRunnerClient, str]:
    """A run whose first attempt (made as it was handed over) awaits its answer."""
    world.http.route("POST", f"{BACKEND}/cron/job", gate)
    client = JobRunnerClient.for_job(world.services, "job")
    first = (await client.start("job", "manual", world.clock.ms))["run"]["id"]
    await gate.entered.wait()
    return client, first


def statuses(world: World) -> dict[str, str]:
    """Each run's status, where the object keeps it and in its D1 projection: they agree."""
    projected = {r["id"]: r["status"] for r in world.rows("SELECT id, status FROM cron_runs")}
    with contextlib.closing(sqlite3.connect(world.object_file("JOB_RUNNER", "job"))) as db:
        kept = dict(db.execute("SELECT id, status FROM runs").fetchall())
    assert kept == projected
    return kept


@pytest.mark.parametrize(
    ("policy", "second_status", "first_after"),
    [
        (Concurrency.FORBID, "skipped", "succeeded"),
        (Concurrency.REPLACE, "running", "cancelled"),
        (Concurrency.ALLOW, "running", "succeeded"),
    ],
)
async def test_a_run_handed_over_during_an_attempt(
    tmp_path: Path, policy: Concurrency, second_status: str, first_after: str
) -> None:
    async with world_for(tmp_path, policy) as world:
        gate = Gate(Reply(200, {"ok": True}))
        client, first = await in_flight(world, gate)
        second = (await client.start("job", "manual", world.clock.ms))["run"]
        assert second["status"] == second_status
        gate.release.set()  # the first attempt's answer arrives after the decision
        await world.settle()
        found = statuses(world)
        assert found[first] == first_after
        assert found[second["id"]] == ("skipped" if policy == Concurrency.FORBID else "succeeded")
        attempts = world.rows("SELECT run_id, outcome FROM cron_attempts ORDER BY run_id")
        expected = [{"run_id": first, "outcome": "succeeded"}]  # recorded either way
        if policy != Concurrency.FORBID:
            expected.append({"run_id": second["id"], "outcome": "succeeded"})
        assert attempts == expected
