"""`POST /api/fleet/sync`: the account's scripts against the inventory.

A script the inventory has never seen (deployed with wrangler, the dashboard, another tool) is
imported (`managed_by: sync`) and its health watched; a managed Worker is compared field by
field with what apiary last deployed (`fleet.drift`), and the drift is kept on its row until a
deploy through apiary puts it right; a managed Worker the account no longer has is `missing`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cfapi.workers import WorkersApi, active_versions
from clock import rfc3339
from durable.worker_health import WorkerHealthClient
from fleet import audit, deploys, drift, inventory
from fleet.audit import Entry
from fleet.customers import LOCAL_DISPATCHER
from ids import new_id
from ports import Statement, query
from services import Services

PARALLEL = 6  # Cloudflare allows 6 simultaneous connections per invocation


async def _details(
    api: WorkersApi, scripts: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]:
    gate = asyncio.Semaphore(PARALLEL)

    async def one(script: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
        async with gate:
            settings = await api.settings(str(script["id"])) or {}
            deployments = await api.deployments(str(script["id"]))
        return script, settings, active_versions(deployments[0] if deployments else None)

    return list(await asyncio.gather(*(one(s) for s in scripts)))


async def sync(services: Services, actor: str) -> dict[str, Any]:
    db, api = services.database, deploys.api_of(services)
    scripts = [s for s in await api.list_scripts() if s.get("id") != LOCAL_DISPATCHER]
    details = await _details(api, scripts)
    rows = {
        r["name"]: r
        for r in await query(
            db, "SELECT * FROM workers WHERE deleted_at IS NULL AND namespace IS NULL"
        )
    }
    now_ms, now = services.clock.now_ms(), rfc3339(services.clock.now())
    statements: list[Statement] = []
    imported: list[str] = []
    drifted: list[dict[str, Any]] = []
    in_step: list[dict[str, Any]] = []
    for script, settings, shares in details:
        name = str(script["id"])
        actual = drift.actual_of(script, settings)
        row = rows.get(name)
        if row is None:
            url = await deploys.worker_url(services, api, name)
            grid = await WorkerHealthClient.of(services, name).start(name, url)
            record = {
                "name": name, "id": new_id(now_ms, prefix="wkr_"),
                "environment": services.config.environment, "type": "imported",
                "customer_id": None, "namespace": None, "subdomain": None, "url": url,
                "managed_by": "sync", "etag": actual["etag"], "main_module": None,
                "compatibility_date": actual["compatibility_date"],
                "bindings": actual["bindings"], "limits": actual["limits"],
                "placement": actual["placement"], "routes": [], "deployment": shares,
                "last_version_id": shares[0]["version_id"] if shares else None,
                "last_deployed_at": script.get("modified_on"), "health_status": "unknown",
                "health_changed_at": None, "health_origin_ms": grid["origin_ms"],
                "health_interval_ms": grid["interval_ms"], "rollout_id": None,
                "rollout_status": None, "drift": [], "drift_checked_at": now,
                "cpu_limit_ms": None, "subrequest_limit": None, "created_at": now,
                "updated_at": now, "deleted_at": None,
            }  # fmt: skip
            statements.append(inventory.upsert(record))
            entry = Entry(actor, "import", name, "ok", None, record["last_version_id"],
                          {"modified_on": script.get("modified_on")})  # fmt: skip
            statements.append(audit.statement(entry.row(now_ms)))
            imported.append(name)
            continue
        found = drift.diff(drift.expected_of(inventory.view(row, now_ms)), actual)
        outside = drift.changed_outside(row["last_deployed_at"], script.get("modified_on"))
        if outside and not any(d["field"] == "modified_on" for d in found):
            found.append({"field": "modified_on", "expected": row["last_deployed_at"],
                          "actual": script.get("modified_on")})  # fmt: skip
        statements.append(
            inventory.update(name, drift=found, drift_checked_at=now, deployment=shares)
        )
        (drifted if found else in_step).append({"name": name, "drift": found})
    listed = {str(s["id"]) for s in scripts}
    missing = sorted(n for n in rows if n not in listed)
    for name in missing:
        gone = [{"field": "script", "expected": "present", "actual": "missing"}]
        statements.append(inventory.update(name, drift=gone, drift_checked_at=now))
    if statements:
        await db.batch(statements)
    return {
        "scripts": len(scripts),
        "imported": imported,
        "drift": drifted,
        "in_step": [d["name"] for d in in_step],
        "missing": missing,
        "checked_at": now,
    }
