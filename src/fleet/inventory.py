"""The inventory: every managed Worker's row in D1 (`workers`), and how the API shows it.

A row is written when apiary creates, deploys, scales, syncs or deletes a Worker, and by the
Worker's objects when its health or rollout changes (only on a change). Its `status` is
derived: `deploying` while a rollout runs, else its health (`unknown` before the first check).
The time of the last check is derived from the check grid (`fleet.health.Grid`): the object
checks at `origin + k * interval` and writes nothing when a check changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from api.paging import newest_first
from clock import rfc3339_ms
from errors import NotFound
from fleet.health import Grid
from ports import Database, Row, SqlValue, Statement, first, query

JSON_COLUMNS = ("bindings", "limits", "placement", "routes", "deployment", "drift")
STATUSES = ("unknown", "healthy", "unhealthy", "deploying")


def _decoded(row: Row) -> Row:
    return {k: (json.loads(v) if k in JSON_COLUMNS and isinstance(v, str) else v) for k, v in
            row.items()}  # fmt: skip


def status_of(row: Mapping[str, Any]) -> str:
    if row.get("rollout_status") == "running":
        return "deploying"
    return str(row.get("health_status") or "unknown")


def last_check_ms(row: Mapping[str, Any], now_ms: int) -> int | None:
    origin, interval = row.get("health_origin_ms"), row.get("health_interval_ms")
    if origin is None or not interval or row.get("deleted_at"):
        return None
    return Grid(int(origin), int(interval)).last_check(now_ms)


def view(row: Row, now_ms: int, *, usage_today: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A Worker as `GET /api/workers` lists it."""
    r = _decoded(row)
    return {
        "name": r["name"],
        "environment": r["environment"],
        "type": r["type"],
        "customer_id": r["customer_id"],
        "namespace": r["namespace"],
        "subdomain": r["subdomain"],
        "url": r["url"],
        "status": status_of(r),
        "managed_by": r["managed_by"],
        "etag": r["etag"],
        "compatibility_date": r["compatibility_date"],
        "bindings": r["bindings"],
        "limits": r["limits"],
        "placement": r["placement"],
        "routes": r["routes"],
        "active_deployment": r["deployment"],
        "last_version_id": r["last_version_id"],
        "last_deployed_at": r["last_deployed_at"],
        "last_health_check": rfc3339_ms(last_check_ms(r, now_ms)),
        "health_changed_at": r["health_changed_at"],
        "rollout": None
        if r["rollout_id"] is None
        else {"id": r["rollout_id"], "status": r["rollout_status"]},
        "drift": r["drift"],
        "created_at": r["created_at"],
        "updated_at": r["updated_at"],
        "deleted_at": r["deleted_at"],
        "usage_today": dict(usage_today or {"requests": 0, "errors": 0, "cost_usd": 0.0}),
    }


async def get(db: Database, name: str, *, deleted: bool = False) -> Row | None:
    row = await first(db, "SELECT * FROM workers WHERE name = ?", name)
    if row is None or (row["deleted_at"] is not None and not deleted):
        return None
    return row


async def require(db: Database, name: str) -> Row:
    row = await get(db, name)
    if row is None:
        raise NotFound(f"no managed Worker named {name!r}")
    return row


def upsert(record: Mapping[str, Any]) -> Statement:
    """Insert a Worker, or bring a deleted or imported row back with these values."""
    values = {k: (json.dumps(v) if k in JSON_COLUMNS else v) for k, v in record.items()}
    columns = list(values)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in ("name", "id"))
    return Statement(
        f"INSERT INTO workers ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT (name) DO UPDATE SET {updates}",
        tuple(values[c] for c in columns),
    )


def update(name: str, **fields: Any) -> Statement:
    values = {k: (json.dumps(v) if k in JSON_COLUMNS else v) for k, v in fields.items()}
    assignments = ", ".join(f"{c} = ?" for c in values)
    return Statement(f"UPDATE workers SET {assignments} WHERE name = ?", (*values.values(), name))


async def page(
    db: Database, filters: Mapping[str, SqlValue], *, cursor: str | None, limit: int,
    deleted: bool = False,
) -> tuple[list[Row], str | None]:  # fmt: skip
    status = filters.get("status")
    equal = {k: v for k, v in filters.items() if k != "status"}
    select = "SELECT * FROM workers"
    # status is derived: fetch wider and filter here (a fleet is hundreds of rows, not more)
    rows, next_cursor = await newest_first(
        db, select, equal=equal, cursor=cursor, prefix="wkr_",
        limit=limit if status is None else 1000,
    )  # fmt: skip
    if not deleted:
        rows = [r for r in rows if r["deleted_at"] is None]
    if status is not None:
        rows = [r for r in rows if status_of(r) == status][:limit]
        next_cursor = None
    return rows, next_cursor


async def usage_today(db: Database, names: list[str], today: str) -> dict[str, dict[str, Any]]:
    if not names:
        return {}
    marks = ",".join("?" * len(names))
    rows = await query(
        db,
        "SELECT worker, requests, errors, cost_usd FROM worker_usage WHERE period = 'daily'"
        f" AND period_start = ? AND worker IN ({marks})",
        today,
        *names,
    )
    return {r.pop("worker"): r for r in rows}


async def counts(db: Database) -> dict[str, int]:
    rows = await query(
        db, "SELECT health_status, rollout_status FROM workers WHERE deleted_at IS NULL"
    )
    found = dict.fromkeys(STATUSES, 0)
    for row in rows:
        found[status_of(row)] = found.get(status_of(row), 0) + 1
    return found
