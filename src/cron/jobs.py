"""The scheduled jobs: which backend endpoint each calls, when, and how it retries.

The table is code, reviewed like code. Each environment names its own schedule (or none: the
job does not run there on a schedule, though `POST /trigger` can still run it). Every schedule
must appear in that environment's `[triggers] crons` in wrangler.toml and every cron there must
belong to a job; a test checks both ways.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cron.schedule import CronExpression

RUNNERS = "JOB_RUNNER"  # the Durable Object binding: one JobRunner per job, named by the job


class Concurrency(StrEnum):
    """What a new run does while an earlier run of the same job is still active (Kubernetes)."""

    FORBID = "forbid"  # skip the new run
    REPLACE = "replace"  # cancel the active run, start the new one
    ALLOW = "allow"  # run both


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    path: str  # on BACKEND_BASE, with its query string
    schedules: Mapping[str, str]  # environment -> cron expression
    method: str = "POST"
    body: Mapping[str, Any] = field(default_factory=dict)  # merged under the standard fields
    timeout_s: float = 30.0  # per attempt
    max_attempts: int = 3
    initial_delay_ms: int = 2_000  # the backoff's first step ...
    max_delay_ms: int = 60_000  # ... and its cap
    concurrency: Concurrency = Concurrency.FORBID
    alert_on_failure: bool = True
    grace_s: int = 600  # after a missed period, before the `missed` alert

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"job {self.name}: path must start with '/'")
        if self.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise ValueError(f"job {self.name}: unsupported method {self.method}")
        if self.max_attempts < 1 or self.timeout_s <= 0 or self.initial_delay_ms <= 0:
            raise ValueError(f"job {self.name}: attempts, timeout and delay must be positive")
        for expression in self.schedules.values():
            CronExpression.parse(expression)  # raises CronSyntaxError on a bad one

    def schedule(self, environment: str) -> CronExpression | None:
        expression = self.schedules.get(environment)
        return None if expression is None else CronExpression.parse(expression)


class JobTable(Mapping[str, Job]):
    def __init__(self, jobs: Iterable[Job]) -> None:
        self._jobs: dict[str, Job] = {}
        for job in jobs:
            if job.name in self._jobs:
                raise ValueError(f"duplicate job name {job.name}")
            self._jobs[job.name] = job

    def __getitem__(self, name: str) -> Job:
        return self._jobs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._jobs)

    def __len__(self) -> int:
        return len(self._jobs)

    def scheduled_in(self, environment: str) -> list[Job]:
        return [job for job in self._jobs.values() if environment in job.schedules]

    def for_cron(self, environment: str, cron: str) -> list[Job]:
        """The jobs a Cron Trigger fires. Cloudflare passes the expression as written."""
        wanted = " ".join(cron.split())
        return [
            job
            for job in self.scheduled_in(environment)
            if " ".join(job.schedules[environment].split()) == wanted
        ]

    def crons(self, environment: str) -> set[str]:
        return {job.schedules[environment] for job in self.scheduled_in(environment)}


# The example deployment: an elections site whose backend imports and refreshes data.
# Staging runs less often; development runs the imports hourly so they can be watched.
JOBS = JobTable(
    [
        Job(
            name="every5min",
            path="/cron/ee-recent",
            schedules={
                "production": "*/5 * * * *",
                "staging": "*/15 * * * *",
                "development": "*/5 * * * *",
            },
            timeout_s=60,
            grace_s=600,
        ),
        Job(
            name="parties-import",
            path="/cron/parties-import",
            schedules={
                "production": "6 2 * * *",
                "staging": "6 3 * * *",
                "development": "6 * * * *",
            },
            timeout_s=300,
            max_attempts=5,
            initial_delay_ms=10_000,
            max_delay_ms=300_000,
            grace_s=3_600,
        ),
        Job(
            name="check-current",
            path="/cron/check-current",
            schedules={"production": "23 23 * * *", "development": "23 * * * *"},
            timeout_s=120,
            concurrency=Concurrency.REPLACE,
            grace_s=3_600,
        ),
        Job(
            name="mop-recent",
            path="/cron/mop-recent?delta=25",
            schedules={"production": "33 23 * * *"},
            timeout_s=300,
            concurrency=Concurrency.ALLOW,
            grace_s=3_600,
        ),
    ]
)
