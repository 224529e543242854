"""Usage rows: a Worker's requests, errors, subrequests and CPU time per day, and the weekly
and monthly rolls of those days (pure).

A row is unique per (Worker, period, period start): `daily` starts at the UTC date, `weekly`
at its ISO week's Monday, `monthly` at the month's first day. The hourly poll upserts the days
it read and re-rolls the weeks and months they fall in, so every row is the sum of what
analytics said last; each carries its cost at list price (`cost.usage_cost`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum

from fleet.cost import Plan, usage_cost


class Period(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class UsageRow:
    worker: str
    period: Period
    start: date
    requests: int = 0
    errors: int = 0
    subrequests: int = 0
    cpu_time_ms: float = 0.0
    cost_usd: float = 0.0

    def plus(self, other: UsageRow) -> UsageRow:
        return replace(
            self,
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            subrequests=self.subrequests + other.subrequests,
            cpu_time_ms=round(self.cpu_time_ms + other.cpu_time_ms, 3),
        )

    def priced(self, plan: Plan) -> UsageRow:
        return replace(self, cost_usd=usage_cost(plan, self.requests, self.cpu_time_ms))


def period_start(period: Period, day: date) -> date:
    if period == Period.WEEKLY:
        return day - timedelta(days=day.weekday())
    if period == Period.MONTHLY:
        return day.replace(day=1)
    return day


def rolls(days: Iterable[UsageRow], plan: Plan) -> list[UsageRow]:
    """The weekly and monthly rows of these daily rows (the days of each whole period must all
    be given: a roll is their sum)."""
    found: dict[tuple[str, Period, date], UsageRow] = {}
    for day in days:
        for period in (Period.WEEKLY, Period.MONTHLY):
            key = (day.worker, period, period_start(period, day.start))
            empty = UsageRow(day.worker, period, key[2])
            found[key] = found.get(key, empty).plus(day)
    return [row.priced(plan) for _, row in sorted(found.items())]


def periods_touched(days: Sequence[date]) -> tuple[date, date]:
    """The first and last day of the weeks and months `days` fall in: what must be read back
    to re-roll them."""
    first = min(min(period_start(Period.WEEKLY, d), d.replace(day=1)) for d in days)
    last_day = max(days)
    week_end = period_start(Period.WEEKLY, last_day) + timedelta(days=6)
    next_month = (last_day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, max(week_end, next_month - timedelta(days=1))


def totals(rows: Iterable[UsageRow], plan: Plan) -> dict[str, float | int]:
    total = UsageRow("", Period.DAILY, date.min)
    for row in rows:
        total = total.plus(row)
    return {
        "requests": total.requests,
        "errors": total.errors,
        "error_rate": round(total.errors / total.requests, 6) if total.requests else 0.0,
        "subrequests": total.subrequests,
        "cpu_time_ms": total.cpu_time_ms,
        "cost_usd": usage_cost(plan, total.requests, total.cpu_time_ms),
    }
