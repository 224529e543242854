"""Usage as the API shows it: a Worker's rows per period with totals, and the account's days
with the month to date and a forecast (from D1, as the hourly poll left it)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta
from typing import Any

from fleet import cost, usage
from fleet.cost import Day
from fleet.settings import FleetSettings
from fleet.usage import Period, UsageRow
from ports import query
from services import Services

FORECAST_DAYS = 40  # enough days back for this month and the trend


def _rows(raw: list[dict[str, Any]]) -> list[UsageRow]:
    return [
        UsageRow(r["worker"], Period(r["period"]), date.fromisoformat(r["period_start"]),
                 r["requests"], r["errors"], r["subrequests"], r["cpu_time_ms"], r["cost_usd"])
        for r in raw
    ]  # fmt: skip


def _shown(row: UsageRow) -> dict[str, Any]:
    return {
        "period_start": row.start.isoformat(),
        "requests": row.requests,
        "errors": row.errors,
        "subrequests": row.subrequests,
        "cpu_time_ms": row.cpu_time_ms,
        "cost_usd": row.cost_usd,
    }


async def worker_usage(
    services: Services, name: str, start: date, last: date, period: str
) -> dict[str, Any]:
    plan = FleetSettings.of(services.config).plan
    chosen = Period(period)
    first = usage.period_start(chosen, start)
    raw = await query(
        services.database,
        "SELECT * FROM worker_usage WHERE worker = ? AND period = ? AND period_start BETWEEN ?"
        " AND ? ORDER BY period_start",
        name, chosen.value, first.isoformat(), last.isoformat(),
    )  # fmt: skip
    rows = _rows(raw)
    days = _rows(await query(
        services.database,
        "SELECT * FROM worker_usage WHERE worker = ? AND period = 'daily' AND period_start >= ?",
        name, (services.clock.now().date() - timedelta(days=FORECAST_DAYS)).isoformat(),
    ))  # fmt: skip
    month = cost.month_figures(
        plan, [Day(d.start, d.requests, d.cpu_time_ms) for d in days], services.clock.now().date()
    )
    return {
        "worker": name,
        "period": chosen.value,
        "since": start.isoformat(),
        "until": last.isoformat(),
        "plan": plan.name,
        "rows": [_shown(r) for r in rows],
        "totals": usage.totals(rows, plan),
        "month": asdict(month),
    }


async def account_usage(services: Services, days_back: int = 30) -> dict[str, Any]:
    """The account's usage per day (all Workers), the month to date with its bill, and the
    forecast to the month's end."""
    plan = FleetSettings.of(services.config).plan
    today = services.clock.now().date()
    since = today - timedelta(days=max(days_back, FORECAST_DAYS))
    raw = await query(
        services.database,
        "SELECT period_start AS day, sum(requests) AS requests, sum(errors) AS errors,"
        " sum(subrequests) AS subrequests, sum(cpu_time_ms) AS cpu_time_ms,"
        " sum(cost_usd) AS cost_usd FROM worker_usage WHERE period = 'daily'"
        " AND period_start >= ? GROUP BY period_start ORDER BY period_start",
        since.isoformat(),
    )
    days = [Day(date.fromisoformat(r["day"]), int(r["requests"]), float(r["cpu_time_ms"]))
            for r in raw]  # fmt: skip
    shown_from = (today - timedelta(days=days_back - 1)).isoformat()
    return {
        "plan": plan.name,
        "days": [
            {
                "date": r["day"],
                "requests": int(r["requests"]),
                "errors": int(r["errors"]),
                "cpu_time_ms": round(float(r["cpu_time_ms"]), 3),
                "cost_usd": round(float(r["cost_usd"]), 9),
            }
            for r in raw
            if r["day"] >= shown_from
        ],
        "month": asdict(cost.month_figures(plan, days, today)),
    }
