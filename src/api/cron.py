"""Cron routes: run jobs now, list the job table, browse run history (from D1)."""

import asyncio
from typing import Any, cast

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import get_services
from api.paging import newest_first
from api.security import require
from auth.scopes import Scope
from auth.tokens import Claims
from clock import rfc3339
from cron.jobs import Job, JobTable
from cron.policy import RunStatus
from durable.job_runner import JobRunnerClient
from errors import NotFound
from ids import looks_like
from ports import first, query
from services import Services

router = APIRouter(tags=["cron"])
RUN_COLUMNS = (
    "id, job, source, status, scheduled_time, attempts AS attempts_made, correlation_id, error,"
    " created_at, ended_at"
)


async def get_jobs(request: Request) -> JobTable:
    return cast(JobTable, request.app.state.jobs)  # set by create_app


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job: str | None = Field(default=None, min_length=1, max_length=100)


@router.post("/trigger", status_code=202)
async def trigger(
    body: TriggerIn,
    _: Claims = Depends(require(Scope.CRON_RUN)),
    services: Services = Depends(get_services),
    jobs: JobTable = Depends(get_jobs),
) -> dict[str, Any]:
    """Run one job now (`{"job": name}`), or every job of this environment (`{}`)."""
    if body.job is not None:
        if body.job not in jobs:
            raise NotFound(f"no job named {body.job!r}")
        chosen = [jobs[body.job]]
    else:
        chosen = jobs.scheduled_in(services.config.environment)
    now = services.clock.now_ms()
    started = await asyncio.gather(
        *(JobRunnerClient.for_job(services, job.name).start(job.name, "manual", now)
          for job in chosen)
    )  # fmt: skip
    runs = [s["run"] for s in started]
    return {"runs": [{"id": r["id"], "job": r["job"], "status": r["status"]} for r in runs]}


def _job_view(job: Job, environment: str, now: Any, last: dict[str, Any] | None) -> dict[str, Any]:
    schedule = job.schedule(environment)
    return {
        "name": job.name,
        "method": job.method,
        "path": job.path,
        "schedule": None if schedule is None else str(schedule),
        "next_run": None if schedule is None else rfc3339(schedule.next_after(now)),
        "timeout_s": job.timeout_s,
        "max_attempts": job.max_attempts,
        "backoff": {"initial_delay_ms": job.initial_delay_ms, "max_delay_ms": job.max_delay_ms},
        "concurrency": job.concurrency.value,
        "alert_on_failure": job.alert_on_failure,
        "grace_s": job.grace_s,
        "last_run": last,
    }


@router.get("/api/cron/jobs")
async def list_jobs(
    _: Claims = Depends(require(Scope.CRON_RUN)),
    services: Services = Depends(get_services),
    jobs: JobTable = Depends(get_jobs),
) -> dict[str, Any]:
    """Every job, with its schedule and next run in this environment and its last run."""
    latest = await query(
        services.database,
        f"SELECT {RUN_COLUMNS} FROM cron_runs WHERE id IN"
        " (SELECT max(id) FROM cron_runs GROUP BY job)",
    )
    last = {row["job"]: row for row in latest}
    environment = services.config.environment
    now = services.clock.now()
    return {
        "environment": environment,
        "jobs": [_job_view(job, environment, now, last.get(job.name)) for job in jobs.values()],
    }


@router.get("/api/cron/runs")
async def list_runs(
    _: Claims = Depends(require(Scope.CRON_RUN)),
    services: Services = Depends(get_services),
    job: str | None = Query(default=None, max_length=100),
    status: RunStatus | None = None,
    since: AwareDatetime | None = None,
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=64),
) -> dict[str, Any]:
    """Newest first. Pass `next_cursor` back as `cursor` for the next page."""
    runs, next_cursor = await newest_first(
        services.database,
        f"SELECT {RUN_COLUMNS} FROM cron_runs",
        equal={"job": job, "status": status and status.value},
        since=rfc3339(since) if since else None,
        cursor=cursor,
        prefix="crn_",
        limit=limit,
    )
    return {"runs": runs, "next_cursor": next_cursor}


@router.get("/api/cron/runs/{run_id}")
async def get_run(
    run_id: str,
    _: Claims = Depends(require(Scope.CRON_RUN)),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    """A run with every attempt: start, duration, HTTP status, error excerpt."""
    if not looks_like(run_id, "crn_"):
        raise NotFound("no such run")
    run = await first(
        services.database, f"SELECT {RUN_COLUMNS} FROM cron_runs WHERE id = ?", run_id
    )
    if run is None:
        raise NotFound("no such run")
    attempts = await query(
        services.database,
        "SELECT attempt, started_at, duration_ms, http_status, outcome, error"
        " FROM cron_attempts WHERE run_id = ? ORDER BY attempt",
        run_id,
    )
    for attempt in attempts:
        attempt["correlation_id"] = run["correlation_id"]
    return {**run, "attempts": attempts}
