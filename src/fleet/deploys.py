"""Creating, changing, deploying, rolling back and deleting managed Workers through the API.

Each operation checks the inventory first (a name that exists is a 409; a Worker with a
rollout running refuses other deployments with a 409), makes its calls to Cloudflare, then
records the result in one D1 batch: the inventory row, the version with its author (the
token's subject) and message, and the audit row. A call Cloudflare refuses is audited as
`failed` and answered as a 502 with Cloudflare's code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cfapi.client import CloudflareApi
from cfapi.workers import WorkersApi, active_versions
from clock import rfc3339
from durable.worker_health import WorkerHealthClient
from durable.worker_rollout import WorkerRolloutClient
from errors import Conflict, Upstream
from fleet import audit, drift, inventory
from fleet.audit import Entry
from fleet.settings import DEFAULT_COMPATIBILITY_DATE, FleetSettings
from ids import new_id
from logs import event, get_logger
from ports import Row, Statement
from services import Services

log = get_logger("fleet")


@dataclass(frozen=True, slots=True)
class Code:
    """What an upload carries."""

    main_module: str
    modules: Mapping[str, str]
    bindings: Sequence[Mapping[str, Any]]
    compatibility_date: str
    compatibility_flags: Sequence[str] = ()
    limits: Mapping[str, Any] | None = None
    message: str = ""

    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "main_module": self.main_module,
            "compatibility_date": self.compatibility_date,
            "compatibility_flags": list(self.compatibility_flags),
            "bindings": [dict(b) for b in self.bindings],
        }
        if self.limits:
            metadata["limits"] = dict(self.limits)
        if self.message:
            metadata["annotations"] = {"workers/message": self.message[:100]}
        return metadata


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a new Worker goes and what the inventory says of it."""

    name: str
    environment: str
    type: str
    customer_id: str | None = None
    namespace: str | None = None
    subdomain: str | None = None
    routes: Sequence[str] = ()
    cpu_limit_ms: int | None = None
    subrequest_limit: int | None = None


def api_of(services: Services) -> WorkersApi:
    return WorkersApi(CloudflareApi.of(services))


def compatibility_date(services: Services) -> str:
    return services.config.get("FLEET_COMPATIBILITY_DATE") or DEFAULT_COMPATIBILITY_DATE


async def refuse_during_rollout(services: Services, name: str) -> None:
    if await WorkerRolloutClient.of(services, name).running():
        raise Conflict(
            f"a rollout of {name} is in progress: abort it first (DELETE .../rollouts)",
            code="rollout_in_progress",
        )


def version_row(version_id: str, worker: str, actor: str, message: str, at: str) -> Statement:
    return Statement(
        "INSERT INTO worker_versions (version_id, worker, author, message, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (version_id) DO NOTHING",
        (version_id, worker, actor, message, at),
    )


async def _audited_failure(services: Services, entry: Entry, exc: Upstream) -> None:
    failed = Entry(entry.actor, entry.action, entry.worker, "failed", entry.from_version,
                   entry.to_version, {**entry.detail, "error": exc.message})  # fmt: skip
    await audit.record(services.database, failed, services.clock.now_ms())


async def worker_url(services: Services, api: WorkersApi, name: str) -> str:
    settings = FleetSettings.of(services.config)
    subdomain = services.config.get("WORKERS_SUBDOMAIN") or ""
    if "{subdomain}" in settings.workers_url and not subdomain:
        subdomain = await api.account_subdomain()
    return settings.url_of(name, subdomain)


async def create(
    services: Services,
    place: Placement,
    code: Code,
    actor: str,
    *,
    action: str = "create",
    url: str | None = None,
) -> dict[str, Any]:
    """Upload and deploy a new Worker, record it, and start watching its health (at its
    workers.dev URL, or at `url` for a dispatch-namespace Worker, which has none)."""
    db, api = services.database, api_of(services)
    if await inventory.get(db, place.name) is not None:
        raise Conflict(f"a Worker named {place.name!r} exists", code="exists")
    if await api.settings(place.name, namespace=place.namespace) is not None:
        raise Conflict(
            f"the account has a Worker named {place.name!r}: POST /api/fleet/sync imports it",
            code="exists",
        )
    entry = Entry(actor, action, place.name, "ok", detail={"type": place.type})
    try:
        result = await api.upload(
            place.name, code.metadata(), code.modules, namespace=place.namespace
        )
    except Upstream as exc:
        await _audited_failure(services, entry, exc)
        raise
    version_id = str(result.get("deployment_id") or result.get("id") or "")
    if place.namespace is None:
        try:
            await api.enable_workers_dev(place.name)
        except Upstream as exc:  # the Worker is deployed; only its workers.dev route is not
            event(log, logging.WARNING, "workers.dev not enabled", worker=place.name,
                  error=exc.message)  # fmt: skip
        url = await worker_url(services, api, place.name)
    now_ms, now = services.clock.now_ms(), rfc3339(services.clock.now())
    grid = None
    if url is not None:
        grid = await WorkerHealthClient.of(services, place.name).start(place.name, url)
    record = {
        "name": place.name, "id": new_id(now_ms, prefix="wkr_"),
        "environment": place.environment, "type": place.type, "customer_id": place.customer_id,
        "namespace": place.namespace, "subdomain": place.subdomain, "url": url,
        "managed_by": "apiary", "etag": result.get("etag"), "main_module": code.main_module,
        "compatibility_date": code.compatibility_date,
        "bindings": drift.bindings_shape(code.bindings), "limits": dict(code.limits or {}),
        "placement": {}, "routes": list(place.routes),
        "deployment": [{"version_id": version_id, "percentage": 100.0}] if version_id else [],
        "last_version_id": version_id or None, "last_deployed_at": now,
        "health_status": "unknown", "health_changed_at": None,
        "health_origin_ms": grid["origin_ms"] if grid else None,
        "health_interval_ms": grid["interval_ms"] if grid else None,
        "rollout_id": None, "rollout_status": None, "drift": [], "drift_checked_at": None,
        "cpu_limit_ms": place.cpu_limit_ms, "subrequest_limit": place.subrequest_limit,
        "created_at": now, "updated_at": now, "deleted_at": None,
    }  # fmt: skip
    entry = Entry(actor, action, place.name, "ok", None, version_id or None, entry.detail)
    statements = [inventory.upsert(record), audit.statement(entry.row(now_ms))]
    if version_id:
        statements.append(version_row(version_id, place.name, actor, code.message, now))
    await db.batch(statements)
    row = await inventory.require(db, place.name)
    return inventory.view(row, services.clock.now_ms())


async def update(
    services: Services,
    row: Row,
    *,
    code: Code | None,
    settings_patch: Mapping[str, Any] | None,
    deploy: bool,
    actor: str,
    action: str | None = None,
) -> dict[str, Any]:
    """New code (a version, deployed unless `deploy` is false) or new settings (Cloudflare
    makes those a deployed version of their own: scaling is one)."""
    name, db, api = row["name"], services.database, api_of(services)
    await refuse_during_rollout(services, name)
    action = action or ("deploy" if deploy else "version")
    entry = Entry(actor, action, name, "ok", row["last_version_id"])
    try:
        if code is not None and deploy:
            result = await api.upload(name, code.metadata(), code.modules)
            version_id = str(result.get("deployment_id") or "")
            etag = result.get("etag")
        elif code is not None:
            result = await api.upload_version(name, code.metadata(), code.modules)
            version_id, etag = str(result.get("id") or ""), None
        else:
            await api.patch_settings(name, settings_patch or {})
            deployed = await api.deployments(name)
            top = active_versions(deployed[0] if deployed else None)
            version_id, etag = (top[0]["version_id"] if top else ""), None
    except Upstream as exc:
        await _audited_failure(services, entry, exc)
        raise
    now_ms, now = services.clock.now_ms(), rfc3339(services.clock.now())
    fields: dict[str, Any] = {"updated_at": now}
    if deploy:
        fields.update(
            deployment=[{"version_id": version_id, "percentage": 100.0}],
            last_version_id=version_id, last_deployed_at=now,
        )  # fmt: skip
        if etag:
            fields["etag"] = etag
    if code is not None and deploy:
        fields.update(main_module=code.main_module, bindings=drift.bindings_shape(code.bindings))
        fields["compatibility_date"] = code.compatibility_date
    if settings_patch:
        if "bindings" in settings_patch:
            fields["bindings"] = drift.bindings_shape(settings_patch["bindings"])
        for key in ("compatibility_date", "limits", "placement"):
            if key in settings_patch:
                fields[key] = settings_patch[key]
    message = code.message if code is not None else "settings changed"
    detail: dict[str, Any] = {"deployed": deploy}
    if settings_patch:
        detail["settings"] = dict(settings_patch)
    done = Entry(actor, action, name, "ok", row["last_version_id"], version_id or None, detail)
    await db.batch([
        inventory.update(name, **fields),
        version_row(version_id, name, actor, message, now),
        audit.statement(done.row(now_ms)),
    ])  # fmt: skip
    return {
        "worker": inventory.view(await inventory.require(db, name), now_ms),
        "version_id": version_id,
        "deployed": deploy,
    }


async def deploy(
    services: Services,
    row: Row,
    versions: list[dict[str, Any]],
    *,
    actor: str,
    action: str = "deploy",
    message: str = "",
) -> dict[str, Any]:
    name, db = row["name"], services.database
    await refuse_during_rollout(services, name)
    before = (row_deployment(row) or [{}])[0].get("version_id")
    target = max(versions, key=lambda v: v["percentage"])["version_id"]
    entry = Entry(actor, action, name, "ok", before, target, {"versions": versions})
    try:
        result = await api_of(services).deploy(
            name, versions, message=message or f"{action} by {actor}"
        )
    except Upstream as exc:
        await _audited_failure(services, entry, exc)
        raise
    now_ms, now = services.clock.now_ms(), rfc3339(services.clock.now())
    shares = active_versions({"versions": versions})
    fields: dict[str, Any] = {"deployment": shares, "last_deployed_at": now, "updated_at": now}
    if len(shares) == 1:
        fields["last_version_id"] = target
    await db.batch([inventory.update(name, **fields), audit.statement(entry.row(now_ms))])
    return {"deployment": result, "versions": shares}


def row_deployment(row: Row) -> list[dict[str, Any]]:
    value = row.get("deployment") or "[]"
    return list(json.loads(value) if isinstance(value, str) else value)


def previous_stable(deployments: list[dict[str, Any]]) -> str | None:
    """The version of the newest earlier deployment that served one version at 100%, other
    than the one serving the most now."""
    if not deployments:
        return None
    current = active_versions(deployments[0])
    now_top = current[0]["version_id"] if current else None
    for deployment in deployments[1:]:
        shares = active_versions(deployment)
        if len(shares) == 1 and shares[0]["version_id"] != now_top:
            return str(shares[0]["version_id"])
    return None


async def delete(services: Services, row: Row, *, actor: str) -> dict[str, Any]:
    name, db = row["name"], services.database
    await refuse_during_rollout(services, name)
    entry = Entry(actor, "delete", name, "ok", row["last_version_id"], None)
    try:
        existed = await api_of(services).delete(name, namespace=row["namespace"])
    except Upstream as exc:
        await _audited_failure(services, entry, exc)
        raise
    if row["url"] is not None:
        await WorkerHealthClient.of(services, name).stop()
    now_ms, now = services.clock.now_ms(), rfc3339(services.clock.now())
    done = Entry(actor, "delete", name, "ok", row["last_version_id"], None,
                 {"was_in_account": existed})  # fmt: skip
    await db.batch([
        inventory.update(name, deleted_at=now, updated_at=now, subdomain=None),
        audit.statement(done.row(now_ms)),
    ])  # fmt: skip
    return {"name": name, "deleted_at": now, "was_in_account": existed}
