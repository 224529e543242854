"""The scheduled handler: what a Cron Trigger does when it fires.

It maps the cron to this environment's jobs and hands each a run on its `JobRunner`, all at
once; each answers once the run is recorded, and makes its first call as work after that
answer (retries from its alarm): this handler never waits for a backend or a backoff. Each
event is recorded in D1 (`cron_events`) with the number of jobs it started; a cron with no job
is logged, not lost. Besides the jobs, apiary has schedules of its own (`PLATFORM_CRONS`): the
fleet's hourly usage poll, run here directly (one GraphQL query, no object woken).
"""

import asyncio
import logging
from dataclasses import dataclass

from clock import from_ms, rfc3339
from cron.jobs import JobTable
from durable.job_runner import JobRunnerClient
from fleet.poll import USAGE_CRON, poll_usage
from ids import new_id
from logs import event, get_logger
from services import Services

log = get_logger("cron")
# apiary's own schedules, in every environment's `[triggers] crons` (a test checks it).
PLATFORM_CRONS = frozenset({USAGE_CRON})


@dataclass(frozen=True, slots=True)
class ScheduledEvent:
    cron: str
    scheduled_time_ms: int


async def on_scheduled(scheduled: ScheduledEvent, services: Services, jobs: JobTable) -> None:
    environment = services.config.environment
    matched = jobs.for_cron(environment, scheduled.cron)
    platform = " ".join(scheduled.cron.split()) in PLATFORM_CRONS
    if platform:
        try:
            await poll_usage(services)
        except Exception as exc:  # the next hour polls again; the event is still recorded
            event(log, logging.ERROR, "usage poll failed", error=str(exc))
    outcomes: list[object] = []
    if matched:
        outcomes = await asyncio.gather(
            *(
                JobRunnerClient.for_job(services, job.name).start(
                    job.name, "cron", scheduled.scheduled_time_ms
                )
                for job in matched
            ),
            return_exceptions=True,
        )
    elif not platform:
        event(log, logging.WARNING, "no job for this cron", cron=scheduled.cron, env=environment)
    for job, outcome in zip(matched, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            event(log, logging.ERROR, "cron run not started", job=job.name, error=str(outcome))
    event_id = new_id(services.clock.now_ms(), prefix="cev_")
    await services.database.execute(
        "INSERT INTO cron_events (id, cron, scheduled_time, handled_at, jobs)"
        " VALUES (?, ?, ?, ?, ?)",
        event_id,
        scheduled.cron,
        rfc3339(from_ms(scheduled.scheduled_time_ms)),
        rfc3339(services.clock.now()),
        sum(1 for o in outcomes if not isinstance(o, BaseException)),
    )
    event(log, logging.INFO, "scheduled event handled", cron=scheduled.cron, id=event_id,
          jobs=[job.name for job in matched])  # fmt: skip
