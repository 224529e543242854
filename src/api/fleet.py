"""The fleet as a whole: monitoring (metrics, logs), sync and drift, limits, usage and cost,
templates and the deploys made from them, customer Workers, scaling, the audit and the
platform status."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query

from api.deps import get_services
from api.security import require
from auth.scopes import Scope
from auth.tokens import Claims
from cfapi import telemetry
from cfapi.analytics import Analytics
from cfapi.client import CloudflareApi
from clock import from_ms, rfc3339
from errors import InvalidInput
from fleet import (
    customers,
    deploys,
    inventory,
    limits,
    poll,
    scaling,
    sync,
    templates,
    usage_view,
)
from fleet.audit import recent
from fleet.deploys import Code, Placement
from fleet.health import Bucket, uptime
from fleet.models import AutoScaleIn, CustomerWorkerIn, FromR2In, ScaleIn, TemplateIn
from fleet.settings import FleetSettings
from ports import query
from services import Services
from version import VERSION

router = APIRouter(tags=["fleet"])
READ = Depends(require(Scope.CLOUDFLARE_READ, Scope.CLOUDFLARE_ADMIN))
ADMIN = Depends(require(Scope.CLOUDFLARE_ADMIN))
MAX_WINDOW = timedelta(days=31)  # GraphQL answers at most a month per query


@router.get("/api/monitor/{name}/metrics")
async def metrics(
    name: str,
    _: Claims = READ,
    services: Services = Depends(get_services),
    hours: int = Query(default=24, ge=1, le=24 * 31),
) -> dict[str, Any]:
    """Requests, errors, error rate and CPU p50/p99 from analytics over the last `hours`, and
    the uptime of the scheduled health checks in that window."""
    await inventory.require(services.database, name)
    until = services.clock.now()
    since = until - timedelta(hours=hours)
    window = await Analytics(CloudflareApi.of(services)).window(name, since, until)
    rows = await query(
        services.database,
        "SELECT hour, checks, failures FROM worker_health_hours WHERE worker = ? AND hour >= ?",
        name,
        rfc3339(since),
    )
    buckets = [Bucket(0, r["checks"], r["failures"]) for r in rows]
    return {
        "worker": name,
        "since": rfc3339(since),
        "until": rfc3339(until),
        "requests": window.requests,
        "errors": window.errors,
        "error_rate": round(window.errors / window.requests, 6) if window.requests else 0.0,
        "subrequests": window.subrequests,
        "cpu_p50_ms": round(window.cpu_p50_ms, 3),
        "cpu_p99_ms": round(window.cpu_p99_ms, 3),
        "health_checks": sum(b.checks for b in buckets),
        "uptime_percent": uptime(buckets),
    }


@router.get("/api/monitor/{name}/logs")
async def logs(
    name: str,
    _: Claims = READ,
    services: Services = Depends(get_services),
    limit: int = Query(default=50, ge=1, le=500),
    since: int | None = Query(default=None, description="epoch ms (default: an hour ago)"),
) -> dict[str, Any]:
    """Recent invocations with their status, console lines and exceptions (Workers
    Observability's telemetry query)."""
    await inventory.require(services.database, name)
    until_ms = services.clock.now_ms()
    since_ms = since if since is not None else until_ms - 3_600_000
    found = await telemetry.recent(
        CloudflareApi.of(services), name, since_ms=since_ms, until_ms=until_ms, limit=limit
    )
    return {
        "worker": name,
        "invocations": [
            {"request_id": i.request_id, "at": rfc3339(from_ms(i.timestamp_ms)),
             "outcome": i.outcome, "status": i.status_code, "version_id": i.version_id,
             "wall_time_ms": i.wall_time_ms,
             "logs": [{"level": line.level, "message": line.message} for line in i.logs],
             "exceptions": i.exceptions}
            for i in found
        ],
    }  # fmt: skip


@router.post("/api/fleet/sync")
async def fleet_sync(claims: Claims = ADMIN, services: Services = Depends(get_services)) -> Any:
    """Import the account's scripts the inventory does not have, and report drift."""
    return await sync.sync(services, claims.subject)


@router.get("/api/fleet/limits")
async def fleet_limits(_: Claims = READ, services: Services = Depends(get_services)) -> Any:
    plan = FleetSettings.of(services.config).plan
    found = await poll.readings(services, deploys.api_of(services), plan)
    return {
        "plan": plan.name,
        "warn_at_percent": round(limits.WARN_AT * 100),
        "limits": limits.readings_view(found),
        "warning": any(r.warning for r in found),
        "alerted": await poll.recorded_warnings(services.database),
    }


@router.get("/api/fleet/usage")
async def fleet_usage(
    _: Claims = READ,
    services: Services = Depends(get_services),
    days: int = Query(default=30, ge=1, le=92),
) -> dict[str, Any]:
    """The account's usage per day, the month to date and the forecast to its end."""
    return await usage_view.account_usage(services, days)


@router.get("/api/fleet/audit")
async def fleet_audit(
    _: Claims = READ,
    services: Services = Depends(get_services),
    worker: str | None = Query(default=None, max_length=100),
    limit: int = Query(default=50, ge=1, le=500),
) -> dict[str, Any]:
    return {"audit": await recent(services.database, worker=worker, limit=limit)}


@router.post("/api/templates", status_code=201)
async def save_template(
    body: TemplateIn, _: Claims = ADMIN, services: Services = Depends(get_services)
) -> dict[str, Any]:
    return await templates.save(services, body)


@router.get("/api/templates")
async def list_templates(
    _: Claims = READ, services: Services = Depends(get_services)
) -> dict[str, Any]:
    return {"templates": await templates.listing(services)}


@router.post("/api/deploy/from-r2", status_code=201)
async def deploy_from_r2(
    body: FromR2In, claims: Claims = ADMIN, services: Services = Depends(get_services)
) -> dict[str, Any]:
    """A new Worker from a template stored in R2 (`r2_key` under `templates/`)."""
    template = await templates.load(services, body.r2_key)
    place = Placement(name=body.worker_name, environment=body.environment, type=template["type"])
    code = Code(
        main_module=template["main_module"],
        modules=template["modules"],
        bindings=template["default_bindings"],
        compatibility_date=deploys.compatibility_date(services),
        message=body.message or f"from {body.r2_key}",
    )
    return await deploys.create(services, place, code, claims.subject, action="create.from_r2")


@router.post("/api/deploy/customer-worker", status_code=201)
async def deploy_customer_worker(
    body: CustomerWorkerIn, claims: Claims = ADMIN, services: Services = Depends(get_services)
) -> dict[str, Any]:
    """A customer's own Worker in the customers dispatch namespace, reached at
    `{subdomain}.CUSTOMER_DOMAIN` (and `/{CUSTOMER_PATH_PREFIX}/{subdomain}/` where set)."""
    return await customers.deploy(services, body, claims.subject)


@router.post("/api/scale/auto")
async def scale_auto(
    body: AutoScaleIn, claims: Claims = ADMIN, services: Services = Depends(get_services)
) -> dict[str, Any]:
    """Per managed Worker: a CPU limit from its p99 CPU time over 7 days with headroom, and
    those whose invocations ended `exceededResources`. `apply: true` sets them."""
    rows = await query(
        services.database,
        "SELECT * FROM workers WHERE deleted_at IS NULL AND namespace IS NULL ORDER BY name",
    )
    until = services.clock.now()
    analytics = Analytics(CloudflareApi.of(services))
    p99 = await analytics.cpu_p99(until - timedelta(days=7), until)
    exceeded = await analytics.exceeded(until - timedelta(days=7), until)
    found = []
    for row in rows:
        current = (inventory.view(row, 0)["limits"] or {}).get("cpu_ms")
        advice = scaling.recommend(
            row["name"], p99.get(row["name"], 0.0), current, exceeded.get(row["name"], 0)
        )
        applied = False
        if body.apply and advice.changes:
            await _scale(services, row, {"limits": {"cpu_ms": advice.cpu_limit_ms}},
                         claims.subject, "scale.auto")  # fmt: skip
            applied = True
        found.append({**asdict(advice), "changes": advice.changes, "applied": applied})
    return {"workers": found, "applied": body.apply, "headroom": scaling.HEADROOM}


async def _scale(
    services: Services, row: dict[str, Any], patch: dict[str, Any], actor: str, action: str
) -> dict[str, Any]:
    return await deploys.update(
        services, row, code=None, settings_patch=patch, deploy=True, actor=actor, action=action
    )


@router.post("/api/scale/{name}")
async def scale(
    name: str, body: ScaleIn, claims: Claims = ADMIN, services: Services = Depends(get_services)
) -> dict[str, Any]:
    """`cpu_limit_ms` and `placement` (smart or off) are the script's settings; Workers have
    no instance count or memory size to set (422 with the reason)."""
    for field, reason in scaling.UNSCALABLE.items():
        if getattr(body, field) is not None:
            raise InvalidInput(f"{field}: {reason}", code="not_scalable")
    if body.cpu_limit_ms is None and body.placement is None:
        raise InvalidInput("give cpu_limit_ms or placement")
    row = await inventory.require(services.database, name)
    patch: dict[str, Any] = {}
    if body.cpu_limit_ms is not None:
        patch["limits"] = {"cpu_ms": body.cpu_limit_ms}
    if body.placement is not None:
        patch["placement"] = {"mode": "smart"} if body.placement == "smart" else {}
    result = await _scale(services, row, patch, claims.subject, "scale")
    return {**result, "settings": patch}


@router.get("/api/status")
async def status(services: Services = Depends(get_services)) -> dict[str, Any]:
    """The platform's status for anyone: no secret, no Worker names, from D1 alone."""
    return {
        "service": "apiary",
        "version": VERSION,
        "environment": services.config.environment,
        "account": services.config.get("CF_ACCOUNT_ID"),
        "fleet": await inventory.counts(services.database),
        "capabilities": [
            "workers.crud", "workers.versions", "workers.deployments", "workers.rollback",
            "rollouts.health_gated", "health.checks", "usage.daily", "cost.forecast",
            "limits.warnings", "fleet.sync.drift", "templates.r2", "customers.dispatch",
            "scale.cpu_limit", "monitor.metrics", "monitor.logs",
        ],
        "endpoints": sorted({route.path for route in router.routes}  # type: ignore[attr-defined]
                            | {"/api/workers", "/api/workers/{name}"}),
    }  # fmt: skip
