"""Cloudflare's published prices (Workers Paid, 2026) as data, and a month's bill for a usage
(pure: no I/O, no clock).

Each line item has a monthly allowance included in the plan and a price per unit beyond it;
the bill is the plan's base fee plus every line's overage. Sources:
https://developers.cloudflare.com/workers/platform/pricing/ ,
https://developers.cloudflare.com/durable-objects/platform/pricing/ ,
https://developers.cloudflare.com/d1/platform/pricing/ ,
https://developers.cloudflare.com/browser-rendering/platform/pricing/
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from fleet.cost import PLANS

MILLION = 1_000_000
PAID = PLANS["paid"]  # the Workers prices live in one table, shared with the fleet's cost

# Cloudflare bills 20 incoming WebSocket messages as one Durable Object request (changelog
# 2024-04-01, "Billing reduction for WebSocket messages"); auto-responses wake nothing.
WS_MESSAGES_PER_REQUEST = 20
# Duration is wall-clock time while an object is active (running a handler, or idle but
# unable to hibernate), billed at 128 MB whatever the object uses. An idle object whose
# sockets use the Hibernation API is not billed for duration.
DO_BILLED_GB = 128 / 1024


@dataclass(frozen=True, slots=True)
class Price:
    item: str
    unit: str
    included: float  # per month
    usd_per_unit: float


PRICES = {
    "worker_requests": Price("Workers requests", "requests", PAID.included_requests,
                             PAID.usd_per_million_requests / MILLION),
    "worker_cpu_ms": Price("Workers CPU time", "ms", PAID.included_cpu_ms,
                           PAID.usd_per_million_cpu_ms / MILLION),
    "do_requests": Price("Durable Objects requests", "requests", 1 * MILLION, 0.15 / MILLION),
    "do_gb_s": Price("Durable Objects duration", "GB-s", 400_000, 12.50 / MILLION),
    "do_rows_read": Price("DO SQLite rows read", "rows", 25_000 * MILLION, 0.001 / MILLION),
    "do_rows_written": Price("DO SQLite rows written", "rows", 50 * MILLION, 1.00 / MILLION),
    "do_storage_gb": Price("DO SQLite storage", "GB-month", 5, 0.20),
    "d1_rows_read": Price("D1 rows read", "rows", 25_000 * MILLION, 0.001 / MILLION),
    "d1_rows_written": Price("D1 rows written", "rows", 50 * MILLION, 1.00 / MILLION),
    "d1_storage_gb": Price("D1 storage", "GB-month", 5, 0.75),
    "browser_hours": Price("Browser Rendering", "browser-hours", 10, 0.09),
}  # fmt: skip
BASE_FEE_USD = PAID.base_usd  # Workers Paid, per month: it includes every allowance above
# Not on this bill: Workers for Platforms ($25/month, 20M requests, 60M CPU-ms, 1,000 scripts),
# needed only for customer Workers in a dispatch namespace; managed Workers are account scripts.
PLATFORMS_FEE_USD = PLANS["platforms"].base_usd


@dataclass(frozen=True, slots=True)
class Line:
    item: str
    unit: str
    quantity: float
    included: float
    billable: float
    usd: float


def do_requests_billed(requests: float, alarms: float, ws_messages: float) -> float:
    """Durable Object requests as billed: fetches and RPC sessions, alarm runs, and incoming
    WebSocket messages at 20 to one (rounded up)."""
    return requests + alarms + math.ceil(ws_messages / WS_MESSAGES_PER_REQUEST)


def do_gb_s(active_seconds: float) -> float:
    """Durable Object duration in GB-s for `active_seconds` of wall time, at 128 MB."""
    return active_seconds * DO_BILLED_GB


def line(key: str, quantity: float) -> Line:
    price = PRICES[key]
    billable = max(0.0, quantity - price.included)
    return Line(price.item, price.unit, quantity, price.included, billable,
                billable * price.usd_per_unit)  # fmt: skip


def bill(usage: Mapping[str, float]) -> list[Line]:
    """The month's line items for `usage` (keys of PRICES; a missing one is zero): the base fee
    first, then every priced item in PRICES' order."""
    unknown = set(usage) - set(PRICES)
    if unknown:
        raise ValueError(f"no price for {', '.join(sorted(unknown))}")
    base = Line("Workers Paid plan", "month", 1, 0, 1, BASE_FEE_USD)
    return [base] + [line(key, usage.get(key, 0.0)) for key in PRICES]


def total(lines: list[Line]) -> float:
    return round(sum(item.usd for item in lines), 2)
