"""`GET /api/overview`: what the dashboard's first page shows, in one request from D1 alone.

Health and its checks, counts of the last 24 hours, and the latest failures across tasks,
cron runs, browser checks and the fleet (Workers gone unhealthy, rollouts rolled back). It
wakes no Durable Object, so a dashboard left open on the overview costs one Worker request
per poll and nothing else (with an ETag, a 304 when nothing changed). Each section needs the
scope its own routes need; a token without it gets `{"hidden": "requires scope ..."}` for
that section instead.
"""

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends

from api import health
from api.deps import get_services
from api.security import require
from auth import scopes as scope_rules
from auth.scopes import Scope
from auth.tokens import Claims
from clock import rfc3339
from fleet import inventory
from ports import Database, query
from services import Services

router = APIRouter(tags=["dashboard"])
WINDOW = timedelta(hours=24)
FAILURES_SHOWN = 10


async def _counts(db: Database, table: str, column: str, since: str) -> dict[str, int]:
    rows = await query(
        db,
        f"SELECT {column} AS key, count(*) AS n FROM {table} WHERE created_at >= ? GROUP BY 1",
        since,
    )
    return {row["key"]: row["n"] for row in rows}


async def _tasks(db: Database, since: str) -> dict[str, Any]:
    failures = await query(
        db,
        "SELECT id, type AS name, status, error, updated_at AS at FROM tasks"
        " WHERE status IN ('failed', 'timed_out') ORDER BY updated_at DESC LIMIT ?",
        FAILURES_SHOWN,
    )
    return {"by_status": await _counts(db, "tasks", "status", since), "failures": failures}


async def _cron(db: Database, since: str) -> dict[str, Any]:
    failures = await query(
        db,
        "SELECT id, job AS name, status, error, coalesce(ended_at, created_at) AS at"
        " FROM cron_runs WHERE status = 'failed' ORDER BY id DESC LIMIT ?",
        FAILURES_SHOWN,
    )
    return {"by_status": await _counts(db, "cron_runs", "status", since), "failures": failures}


async def _browser(db: Database, since: str) -> dict[str, Any]:
    failures = await query(
        db,
        "SELECT id, test_type AS name, status, error, coalesce(completed_at, created_at) AS at"
        " FROM browser_test_runs WHERE status IN ('failed', 'error') AND test_type != 'suite'"
        " ORDER BY id DESC LIMIT ?",
        FAILURES_SHOWN,
    )
    return {
        "by_status": await _counts(db, "browser_test_runs", "status", since),
        "failures": failures,
    }


async def _fleet(db: Database, since: str) -> dict[str, Any]:
    unhealthy = await query(
        db,
        "SELECT worker AS id, worker AS name, to_status AS status, reason AS error, at"
        " FROM worker_health_events WHERE to_status = 'unhealthy' ORDER BY at DESC LIMIT ?",
        FAILURES_SHOWN,
    )
    rolled_back = await query(
        db,
        "SELECT worker AS id, worker AS name, status, reason AS error,"
        " coalesce(ended_at, updated_at) AS at FROM fleet_rollouts"
        " WHERE status = 'rolled_back' ORDER BY id DESC LIMIT ?",
        FAILURES_SHOWN,
    )
    failures = sorted(unhealthy + rolled_back, key=lambda f: f["at"] or "", reverse=True)
    return {"by_status": await inventory.counts(db), "failures": failures[:FAILURES_SHOWN]}


async def _swarms(db: Database, since: str) -> dict[str, Any]:
    rows = await query(db, "SELECT count(*) AS n FROM swarms")
    return {"total": rows[0]["n"] if rows else 0}


SECTIONS = {
    "tasks": ((Scope.TASKS_READ,), _tasks),
    "cron": ((Scope.CRON_RUN,), _cron),
    "browser_tests": ((Scope.BROWSER_TESTS_READ,), _browser),
    "swarms": ((Scope.SWARMS_ADMIN,), _swarms),
    "fleet": ((Scope.CLOUDFLARE_READ, Scope.CLOUDFLARE_ADMIN), _fleet),
}


def latest_failures(sections: dict[str, Any], limit: int = FAILURES_SHOWN) -> list[dict[str, Any]]:
    """The newest failures across the sections, each tagged with where it came from."""
    found = [
        {**failure, "kind": kind}
        for kind, section in sections.items()
        for failure in section.get("failures", [])
    ]
    return sorted(found, key=lambda f: f.get("at") or "", reverse=True)[:limit]


@router.get("/api/overview")
async def overview(
    claims: Claims = Depends(require()), services: Services = Depends(get_services)
) -> dict[str, Any]:
    checked = json.loads((await health.health(services)).body)
    checked.pop("timestamp", None)  # changes every call; the ETag would never match
    since = rfc3339(services.clock.now() - WINDOW)
    sections: dict[str, Any] = {}
    for name, (needs, read) in SECTIONS.items():
        if scope_rules.grants(claims.scopes, needs):
            sections[name] = await read(services.database, since)
        else:
            sections[name] = {"hidden": f"requires scope {' or '.join(needs)}"}
    return {
        "health": checked,
        "window_start": since,
        "sections": sections,
        "failures": latest_failures(sections),
    }
