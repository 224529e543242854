"""What Workers usage costs, from one table of Cloudflare's published prices (2026), and the
month-to-date and forecast figures (pure).

Two figures, because there are two questions:
- a Worker's usage at list price (`usage_cost`): requests and CPU time at the plan's rates
  beyond its inclusions, as if none were included. It attributes cost to a Worker (what its
  traffic adds), so it is never zero for traffic on a paid plan;
- the account's bill for a month (`monthly_bill`): the plan's base fee plus what the whole
  account's usage exceeds the included amounts by.
https://developers.cloudflare.com/workers/platform/pricing/ ,
https://developers.cloudflare.com/cloudflare-for-platforms/workers-for-platforms/platform/pricing/
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

MILLION = 1_000_000
TREND_DAYS = 7  # the forecast follows the mean of the latest days


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    base_usd: float  # per month
    included_requests: int  # per month
    included_cpu_ms: int  # per month
    usd_per_million_requests: float
    usd_per_million_cpu_ms: float
    scripts: int  # scripts per account (Workers for Platforms: included scripts)
    requests_per_day: int | None = None  # the Free plan's daily cap
    cpu_ms_per_invocation: int | None = None


PLANS = {
    "free": Plan("free", 0.0, 0, 0, 0.0, 0.0, scripts=100, requests_per_day=100_000,
                 cpu_ms_per_invocation=10),
    "paid": Plan("paid", 5.0, 10 * MILLION, 30 * MILLION, 0.30, 0.02, scripts=500),
    "platforms": Plan("platforms", 25.0, 20 * MILLION, 60 * MILLION, 0.30, 0.02,
                      scripts=1000),
}  # fmt: skip
DEFAULT_PLAN = "paid"


def plan_named(name: str | None) -> Plan:
    try:
        return PLANS[(name or DEFAULT_PLAN).strip().lower()]
    except KeyError:
        raise ValueError(f"unknown plan {name!r}: one of {', '.join(PLANS)}") from None


def usage_cost(plan: Plan, requests: float, cpu_ms: float) -> float:
    """Usage at the plan's list price (no inclusions), in USD."""
    return round(
        requests / MILLION * plan.usd_per_million_requests
        + cpu_ms / MILLION * plan.usd_per_million_cpu_ms,
        9,
    )


def monthly_bill(plan: Plan, requests: float, cpu_ms: float) -> float:
    """A month's bill for the account's usage: the base fee plus the overage."""
    extra_requests = max(0.0, requests - plan.included_requests)
    extra_cpu = max(0.0, cpu_ms - plan.included_cpu_ms)
    return round(plan.base_usd + usage_cost(plan, extra_requests, extra_cpu), 6)


@dataclass(frozen=True, slots=True)
class Day:
    date: date
    requests: int
    cpu_ms: float


@dataclass(frozen=True, slots=True)
class MonthFigures:
    month: str  # YYYY-MM
    days_elapsed: int
    days_in_month: int
    requests: int
    cpu_ms: float
    usage_usd: float  # at list price
    bill_usd: float  # the account's bill so far
    forecast_requests: int
    forecast_cpu_ms: float
    forecast_usage_usd: float
    forecast_bill_usd: float


def month_figures(plan: Plan, days: Sequence[Day], today: date) -> MonthFigures:
    """Month to date (today included) and a forecast to the month's end: the remaining days at
    the mean of the last `TREND_DAYS` days with data (today counted as a partial day)."""
    month = [d for d in days if (d.date.year, d.date.month) == (today.year, today.month)]
    month = [d for d in month if d.date <= today]
    requests = sum(d.requests for d in month)
    cpu = sum(d.cpu_ms for d in month)
    length = calendar.monthrange(today.year, today.month)[1]
    recent = sorted((d for d in days if d.date <= today), key=lambda d: d.date)[-TREND_DAYS:]
    per_day_requests = sum(d.requests for d in recent) / len(recent) if recent else 0.0
    per_day_cpu = sum(d.cpu_ms for d in recent) / len(recent) if recent else 0.0
    remaining = length - today.day
    forecast_requests = requests + per_day_requests * remaining
    forecast_cpu = cpu + per_day_cpu * remaining
    return MonthFigures(
        month=f"{today.year:04d}-{today.month:02d}",
        days_elapsed=today.day,
        days_in_month=length,
        requests=requests,
        cpu_ms=round(cpu, 3),
        usage_usd=usage_cost(plan, requests, cpu),
        bill_usd=monthly_bill(plan, requests, cpu),
        forecast_requests=round(forecast_requests),
        forecast_cpu_ms=round(forecast_cpu, 3),
        forecast_usage_usd=usage_cost(plan, forecast_requests, forecast_cpu),
        forecast_bill_usd=monthly_bill(plan, forecast_requests, forecast_cpu),
    )
