"""The job table against wrangler.toml: every trigger has a job, every schedule a trigger."""

import tomllib

import pytest

from cron.dispatch import PLATFORM_CRONS
from cron.jobs import JOBS, Concurrency, Job, JobTable
from cron.schedule import CronSyntaxError
from tests.harness import ROOT


def wrangler_crons() -> dict[str, set[str]]:
    """Each environment's crons, by its ENVIRONMENT var (the top level is development)."""
    config = tomllib.loads((ROOT / "wrangler.toml").read_text())
    sections = [config, *config.get("env", {}).values()]
    return {
        section["vars"]["ENVIRONMENT"]: set(section.get("triggers", {}).get("crons", []))
        for section in sections
    }


def test_every_environment_is_configured() -> None:
    assert set(wrangler_crons()) == {"development", "staging", "production"}


@pytest.mark.parametrize("environment", ["development", "staging", "production"])
def test_wrangler_crons_match_the_job_table(environment: str) -> None:
    triggers = wrangler_crons()[environment]
    unclaimed = {
        cron
        for cron in triggers
        if not JOBS.for_cron(environment, cron) and cron not in PLATFORM_CRONS
    }
    assert not unclaimed, f"crons in wrangler.toml ({environment}) with no job: {unclaimed}"
    missing = {
        job.name: job.schedules[environment]
        for job in JOBS.scheduled_in(environment)
        if job.schedules[environment] not in triggers
    }
    assert not missing, f"schedules missing from wrangler.toml ({environment}): {missing}"
    # apiary's own schedules (the fleet's hourly usage poll) run in every environment
    assert triggers >= PLATFORM_CRONS, f"platform crons missing ({environment})"


def test_the_shipped_table() -> None:
    assert list(JOBS) == ["every5min", "parties-import", "check-current", "mop-recent"]
    assert JOBS["every5min"].path == "/cron/ee-recent"
    assert JOBS["mop-recent"].path == "/cron/mop-recent?delta=25"
    assert JOBS["parties-import"].schedules["production"] == "6 2 * * *"
    assert JOBS["check-current"].schedules["production"] == "23 23 * * *"
    assert JOBS["mop-recent"].schedules["production"] == "33 23 * * *"
    assert {job.concurrency for job in JOBS.values()} == set(Concurrency)
    # Environments differ: staging runs less, and not every job everywhere.
    assert JOBS["every5min"].schedules["staging"] == "*/15 * * * *"
    assert "staging" not in JOBS["mop-recent"].schedules


def test_for_cron_matches_the_expression_as_written() -> None:
    assert [j.name for j in JOBS.for_cron("production", "*/5  * * * *")] == ["every5min"]
    assert JOBS.for_cron("production", "*/15 * * * *") == []
    assert JOBS.for_cron("nowhere", "*/5 * * * *") == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"path": "cron/x"}, ValueError),
        ({"method": "TRACE"}, ValueError),
        ({"max_attempts": 0}, ValueError),
        ({"timeout_s": 0}, ValueError),
        ({"schedules": {"production": "*/5 * * *"}}, CronSyntaxError),
        ({"schedules": {"production": "0 9 * * 0"}}, CronSyntaxError),  # Cloudflare: 1 = Sunday
    ],
)
def test_a_bad_job_is_refused(change: dict, problem: type[Exception]) -> None:
    spec = {"name": "x", "path": "/cron/x", "schedules": {}} | change
    with pytest.raises(problem):
        Job(**spec)


def test_job_names_are_unique() -> None:
    job = Job(name="x", path="/x", schedules={})
    with pytest.raises(ValueError, match="duplicate"):
        JobTable([job, job])
