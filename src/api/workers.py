"""Managed Workers: the inventory, deploys, versions, rollbacks, health-gated rollouts, health
checks and usage (`cloudflare:read` to look, `cloudflare:admin` to change)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from api.deps import get_services
from api.security import require
from auth.scopes import Scope
from auth.tokens import Claims
from cfapi.workers import active_versions
from durable.worker_health import WorkerHealthClient
from durable.worker_rollout import WorkerRolloutClient
from errors import Conflict, InvalidInput, NotFound
from fleet import audit, deploys, inventory, usage_view
from fleet.deploys import Code, Placement
from fleet.models import DeploymentIn, RollbackIn, RolloutIn, WorkerIn, WorkerUpdate
from ports import query
from services import Services

router = APIRouter(tags=["fleet"])
READ = Depends(require(Scope.CLOUDFLARE_READ, Scope.CLOUDFLARE_ADMIN))
ADMIN = Depends(require(Scope.CLOUDFLARE_ADMIN))
Name = str


@router.get("/api/workers")
async def list_workers(
    _: Claims = READ,
    services: Services = Depends(get_services),
    environment: str | None = Query(default=None, max_length=100),
    status: Literal["unknown", "healthy", "unhealthy", "deploying"] | None = None,
    type: str | None = Query(default=None, max_length=100),
    customer_id: str | None = Query(default=None, max_length=100),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=64),
) -> dict[str, Any]:
    """Newest first; pass `next_cursor` back as `cursor`."""
    filters = {"environment": environment, "type": type, "customer_id": customer_id,
               "status": status}  # fmt: skip
    rows, next_cursor = await inventory.page(services.database, filters, cursor=cursor, limit=limit)
    now = services.clock.now_ms()
    today = services.clock.now().date().isoformat()
    used = await inventory.usage_today(services.database, [r["name"] for r in rows], today)
    return {
        "workers": [inventory.view(r, now, usage_today=used.get(r["name"])) for r in rows],
        "next_cursor": next_cursor,
    }


@router.post("/api/workers", status_code=201)
async def create_worker(
    body: WorkerIn, claims: Claims = ADMIN, services: Services = Depends(get_services)
) -> dict[str, Any]:
    place = Placement(
        name=body.name,
        environment=body.metadata.environment,
        type=body.metadata.type,
        customer_id=body.metadata.customer_id,
        routes=body.routes,
    )
    code = Code(
        main_module=body.main_module,
        modules=body.modules,
        bindings=[b.model_dump() for b in body.bindings],
        compatibility_date=body.compatibility_date or deploys.compatibility_date(services),
        compatibility_flags=body.compatibility_flags,
        message=body.message or "created by apiary",
    )
    return await deploys.create(services, place, code, claims.subject)


@router.get("/api/workers/{name}")
async def get_worker(
    name: Name, _: Claims = READ, services: Services = Depends(get_services)
) -> dict[str, Any]:
    db = services.database
    row = await inventory.require(db, name)
    now = services.clock.now_ms()
    day = services.clock.now().date()
    health_state, events, hours, rollouts, recent = await asyncio.gather(
        WorkerHealthClient.of(services, name).state(),
        query(db, "SELECT from_status, to_status, reason, at FROM worker_health_events"
                  " WHERE worker = ? ORDER BY at DESC LIMIT 50", name),
        query(db, "SELECT hour, checks, failures FROM worker_health_hours WHERE worker = ?"
                  " ORDER BY hour DESC LIMIT 48", name),
        query(db, "SELECT * FROM fleet_rollouts WHERE worker = ? ORDER BY id DESC LIMIT 5",
              name),
        audit.recent(db, worker=name, limit=20),
    )  # fmt: skip
    today = await usage_view.worker_usage(services, name, day, day, "daily")
    view = inventory.view(row, now, usage_today=today["totals"])
    if health_state is not None and health_state.get("last_check_at"):
        view["last_health_check"] = health_state["last_check_at"]
    view["health"] = {"current": health_state, "changes": events, "hours": hours}
    view["versions"] = await versions_of(services, row) if row["namespace"] is None else []
    view["rollouts"] = rollouts
    view["audit"] = recent
    return view


async def versions_of(services: Services, row: dict[str, Any]) -> list[dict[str, Any]]:
    """Every version with its author and message: apiary's record where apiary made it (the
    token's subject), else what Cloudflare says (the API token's owner)."""
    items = await deploys.api_of(services).versions(row["name"])
    mine = {
        r["version_id"]: r
        for r in await query(
            services.database,
            "SELECT version_id, author, message, created_at FROM worker_versions WHERE worker = ?",
            row["name"],
        )
    }
    active = {v["version_id"]: v["percentage"] for v in deploys.row_deployment(row)}
    found = []
    for item in items:
        meta = item.get("metadata") or {}
        own = mine.get(str(item.get("id")))
        annotations = item.get("annotations") or {}
        found.append({
            "id": item.get("id"),
            "number": item.get("number"),
            "author": own["author"] if own else meta.get("author_email"),
            "message": own["message"] if own else annotations.get("workers/message", ""),
            "source": meta.get("source"),
            "created_on": meta.get("created_on"),
            "percentage": active.get(str(item.get("id")), 0),
        })  # fmt: skip
    return found


@router.put("/api/workers/{name}")
async def update_worker(
    name: Name, body: WorkerUpdate, claims: Claims = ADMIN,
    services: Services = Depends(get_services),
) -> dict[str, Any]:  # fmt: skip
    row = await inventory.require(services.database, name)
    if row["namespace"] is not None:
        raise InvalidInput("customer Workers are deployed with POST /api/deploy/customer-worker")
    code = None
    patch: dict[str, Any] | None = None
    if body.modules is not None:
        assert body.main_module is not None
        code = Code(
            main_module=body.main_module,
            modules=body.modules,
            bindings=[b.model_dump() for b in body.bindings or []],
            compatibility_date=body.compatibility_date
            or row["compatibility_date"]
            or deploys.compatibility_date(services),
            message=body.message or "",
        )
    else:
        patch = {}
        if body.bindings is not None:
            patch["bindings"] = [b.model_dump() for b in body.bindings]
        if body.compatibility_date is not None:
            patch["compatibility_date"] = body.compatibility_date
    return await deploys.update(
        services, row, code=code, settings_patch=patch, deploy=body.deploy, actor=claims.subject
    )


@router.delete("/api/workers/{name}")
async def delete_worker(
    name: Name, claims: Claims = ADMIN, services: Services = Depends(get_services)
) -> dict[str, Any]:
    row = await inventory.require(services.database, name)
    return await deploys.delete(services, row, actor=claims.subject)


@router.get("/api/workers/{name}/versions")
async def list_versions(
    name: Name, _: Claims = READ, services: Services = Depends(get_services)
) -> dict[str, Any]:
    row = await inventory.require(services.database, name)
    if row["namespace"] is not None:
        return {"versions": []}
    return {"versions": await versions_of(services, row)}


@router.post("/api/workers/{name}/deployments", status_code=201)
async def create_deployment(
    name: Name, body: DeploymentIn, claims: Claims = ADMIN,
    services: Services = Depends(get_services),
) -> dict[str, Any]:  # fmt: skip
    row = await inventory.require(services.database, name)
    versions = [v.model_dump() for v in body.versions]
    return await deploys.deploy(
        services, row, versions, actor=claims.subject, message=body.message or ""
    )


@router.post("/api/workers/{name}/rollback", status_code=201)
async def rollback(
    name: Name, body: RollbackIn, claims: Claims = ADMIN,
    services: Services = Depends(get_services),
) -> dict[str, Any]:  # fmt: skip
    """To `version_id`, or by default the previous stable version: the newest earlier
    deployment that served a single version."""
    row = await inventory.require(services.database, name)
    target = body.version_id
    if target is None:
        target = deploys.previous_stable(await deploys.api_of(services).deployments(name))
        if target is None:
            raise Conflict("no earlier stable version to roll back to", code="no_stable_version")
    versions = [{"version_id": target, "percentage": 100}]
    return await deploys.deploy(
        services, row, versions, actor=claims.subject, action="rollback",
        message=body.message or f"rollback by {claims.subject}",
    )  # fmt: skip


@router.post("/api/workers/{name}/rollouts", status_code=201)
async def start_rollout(
    name: Name, body: RolloutIn, claims: Claims = ADMIN,
    services: Services = Depends(get_services),
) -> dict[str, Any]:  # fmt: skip
    """A health-gated gradual rollout of `version_id` (see the README: Worker fleet)."""
    row = await inventory.require(services.database, name)
    if row["namespace"] is not None or row["url"] is None:
        raise InvalidInput("rollouts are for the account's Workers (with a URL to probe)")
    api = deploys.api_of(services)
    deployed, version = await asyncio.gather(
        api.deployments(name), api.version(name, body.version_id)
    )
    if version is None:
        raise NotFound(f"{body.version_id} is not a version of {name}")
    current = active_versions(deployed[0] if deployed else None)
    if not current:
        raise Conflict(f"{name} has no deployment to roll out from", code="no_deployment")
    stable = current[0]["version_id"]
    if stable == body.version_id:
        raise Conflict(f"{body.version_id} is already the stable version", code="already_stable")
    policy = body.policy()
    spec = {
        "worker": name,
        "url": row["url"],
        "new_version": body.version_id,
        "stable_version": stable,
        "actor": claims.subject,
        "policy": {"steps": list(policy.steps), "step_interval_ms": policy.step_interval_ms,
                   "max_error_rate": policy.max_error_rate,
                   "min_requests": policy.min_requests, "max_holds": policy.max_holds},
    }  # fmt: skip
    return await WorkerRolloutClient.of(services, name).start(spec)


@router.get("/api/workers/{name}/rollouts")
async def get_rollout(
    name: Name, _: Claims = READ, services: Services = Depends(get_services)
) -> dict[str, Any]:
    """The latest rollout's progress: its steps, where it is, and every decision."""
    await inventory.require(services.database, name)
    return await WorkerRolloutClient.of(services, name).get()


@router.delete("/api/workers/{name}/rollouts", status_code=202)
async def abort_rollout(
    name: Name, claims: Claims = ADMIN, services: Services = Depends(get_services)
) -> dict[str, Any]:
    """Abort: back to the stable version at 100% (done by the rollout's alarm, at once)."""
    await inventory.require(services.database, name)
    return await WorkerRolloutClient.of(services, name).abort(claims.subject)


@router.post("/api/workers/{name}/health_check")
async def health_check(
    name: Name, _: Claims = READ, services: Services = Depends(get_services)
) -> dict[str, Any]:
    row = await inventory.require(services.database, name)
    if row["url"] is None:
        raise InvalidInput(f"{name} has no URL to check")
    return dict(await WorkerHealthClient.of(services, name).check_now())


@router.get("/api/workers/{name}/usage")
async def worker_usage(
    name: Name,
    _: Claims = READ,
    services: Services = Depends(get_services),
    since: date | None = None,
    until: date | None = None,
    period: Literal["daily", "weekly", "monthly"] = "daily",
) -> dict[str, Any]:
    """Requests, errors, subrequests, CPU time and the estimated cost (USD) per period, from
    the hourly poll; `since` and `until` are UTC dates (default: the last 30 days)."""
    await inventory.require(services.database, name)
    last = until or services.clock.now().date()
    start = since or last - timedelta(days=29)
    if start > last:
        raise InvalidInput("since is after until")
    return await usage_view.worker_usage(services, name, start, last, period)
