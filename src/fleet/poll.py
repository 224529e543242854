"""The hourly usage poll (a Cron Trigger, `USAGE_CRON`) and the limits it watches.

One GraphQL query for the whole account's usage per UTC day since yesterday (yesterday's
figures keep arriving for a while after midnight); each day's row is upserted per Worker, and
the weeks and months those days fall in are rolled again from the daily rows. An upsert that
changes nothing writes nothing (its `WHERE` keeps the row), so an idle Worker costs no writes.
Then the limits: readings against the plan, and FleetWatch is asked to alert only when the
set in warning differs from the one D1 last recorded, so an hour with nothing new wakes no
object.

Why a cron and not an object's alarm: the poll is one query for the account, not per Worker;
a Cron Trigger costs no Durable Object request and needs no object to be started first, and
its schedule is in wrangler.toml with the others (tests fire it with `/__scheduled`).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any

from cfapi.analytics import Analytics
from cfapi.client import CloudflareApi
from cfapi.workers import WorkersApi
from clock import rfc3339
from durable.fleet_watch import FleetWatchClient
from fleet import limits, usage
from fleet.cost import Plan
from fleet.limits import Reading
from fleet.settings import FleetSettings
from fleet.usage import Period, UsageRow
from logs import event, get_logger
from ports import Database, Statement, query
from services import Services

log = get_logger("fleet.usage")
USAGE_CRON = "0 * * * *"


def upsert(row: UsageRow, now: str) -> Statement:
    return Statement(
        "INSERT INTO worker_usage (worker, period, period_start, requests, errors, subrequests,"
        " cpu_time_ms, cost_usd, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (worker, period, period_start) DO UPDATE SET requests = excluded.requests,"
        " errors = excluded.errors, subrequests = excluded.subrequests, cpu_time_ms ="
        " excluded.cpu_time_ms, cost_usd = excluded.cost_usd, updated_at = excluded.updated_at"
        " WHERE requests != excluded.requests OR errors != excluded.errors OR subrequests !="
        " excluded.subrequests OR cpu_time_ms != excluded.cpu_time_ms",
        (row.worker, row.period.value, row.start.isoformat(), row.requests, row.errors,
         row.subrequests, row.cpu_time_ms, row.cost_usd, now),
    )  # fmt: skip


def _row(r: dict[str, Any]) -> UsageRow:
    return UsageRow(
        r["worker"], Period(r["period"]), date.fromisoformat(r["period_start"]), r["requests"],
        r["errors"], r["subrequests"], r["cpu_time_ms"], r["cost_usd"],
    )  # fmt: skip


async def daily_rows(db: Database, workers: list[str], first: date, last: date) -> list[UsageRow]:
    if not workers:
        return []
    marks = ",".join("?" * len(workers))
    rows = await query(
        db,
        "SELECT * FROM worker_usage WHERE period = 'daily' AND period_start BETWEEN ? AND ?"
        f" AND worker IN ({marks})",
        first.isoformat(),
        last.isoformat(),
        *workers,
    )
    return [_row(r) for r in rows]


async def poll_usage(services: Services) -> dict[str, Any]:
    api = CloudflareApi.of(services)
    plan = FleetSettings.of(services.config).plan
    now = services.clock.now()
    since = datetime.combine(now.date() - timedelta(days=1), time(), now.tzinfo)
    days = await Analytics(api).daily(since, now)
    stamp = rfc3339(now)
    fresh = [
        UsageRow(d.script, Period.DAILY, date.fromisoformat(d.date), d.requests, d.errors,
                 d.subrequests, round(d.cpu_time_ms, 3)).priced(plan)
        for d in days
    ]  # fmt: skip
    statements = [upsert(r, stamp) for r in fresh]
    written = 0
    if fresh:
        workers = sorted({r.worker for r in fresh})
        first, last = usage.periods_touched([r.start for r in fresh])
        known = {(r.worker, r.start): r for r in await daily_rows(services.database, workers,
                                                                  first, last)}  # fmt: skip
        known.update({(r.worker, r.start): r for r in fresh})
        statements += [upsert(r, stamp) for r in usage.rolls(known.values(), plan)]
        results = await services.database.batch(statements)
        written = sum(r.rows_written for r in results)
    readings = await check_limits(services, WorkersApi(api), plan)
    event(log, logging.INFO, "usage polled", days=len(fresh), rows_written=written,
          warnings=limits.in_warning(readings))  # fmt: skip
    return {"rows": len(statements), "rows_written": written}


async def requests_today(db: Database, today: date) -> int:
    rows = await query(
        db,
        "SELECT coalesce(sum(requests), 0) AS n FROM worker_usage WHERE period = 'daily'"
        " AND period_start = ?",
        today.isoformat(),
    )
    return int(rows[0]["n"]) if rows else 0


async def readings(services: Services, api: WorkersApi, plan: Plan) -> list[Reading]:
    config = services.config
    scripts = len(await api.list_scripts())
    found = [Reading("scripts", scripts, limits.override(config.get("FLEET_SCRIPT_LIMIT"),
                                                          plan.scripts))]  # fmt: skip
    daily_cap = limits.override(config.get("FLEET_DAILY_REQUEST_LIMIT"), plan.requests_per_day or 0)
    if daily_cap:
        today = services.clock.now().date()
        found.append(
            Reading("requests_per_day", await requests_today(services.database, today), daily_cap)
        )
    return found


async def recorded_warnings(db: Database) -> list[str]:
    rows = await query(db, "SELECT name FROM fleet_limits WHERE warning = 1 ORDER BY name")
    return [r["name"] for r in rows]


async def check_limits(services: Services, api: WorkersApi, plan: Plan) -> list[Reading]:
    found = await readings(services, api, plan)
    if limits.in_warning(found) != await recorded_warnings(services.database):
        await FleetWatchClient.of(services).observe(
            [{"name": r.name, "used": r.used, "limit": r.limit} for r in found]
        )
    return found
