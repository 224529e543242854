"""Task routes: create (idempotently), batch, inspect, report outcomes, list."""

import asyncio
import hashlib
import json
from typing import Any, cast

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import AwareDatetime

import correlation
from api.deps import get_services
from api.paging import newest_first
from api.security import authorize, require, require_server_or
from auth.scopes import Scope
from auth.tokens import Claims
from clock import rfc3339
from durable.task_manager import Created, TaskManagerClient
from errors import Conflict, NotFound
from ids import looks_like, new_id
from ports import first
from services import Services
from tasks.models import TaskBatchIn, TaskIn, TaskUpdateIn
from tasks.states import TaskStatus

router = APIRouter(tags=["tasks"])
IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000
LEASE_HEADER = "X-Apiary-Lease"


def _spec(body: TaskIn, task_id: str) -> dict[str, Any]:
    return {**body.model_dump(mode="json"), "id": task_id, "correlation_id": correlation.current()}


async def _create(services: Services, body: TaskIn, task_id: str) -> Created:
    return await TaskManagerClient.for_task(services, task_id).create(_spec(body, task_id))


async def _claim_key(services: Services, key: str, body_hash: str, task_id: str) -> str:
    """Bind `key` to `task_id` unless a live binding exists; returns the bound task id."""
    now = services.clock.now_ms()
    await services.database.execute(
        "INSERT INTO idempotency_keys (key, task_id, body_hash, created_at_ms) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET task_id = excluded.task_id,"
        " body_hash = excluded.body_hash, created_at_ms = excluded.created_at_ms"
        " WHERE idempotency_keys.created_at_ms < ?",
        key,
        task_id,
        body_hash,
        now,
        now - IDEMPOTENCY_TTL_MS,
    )
    row = await first(
        services.database, "SELECT task_id, body_hash FROM idempotency_keys WHERE key = ?", key
    )
    assert row is not None
    if row["body_hash"] != body_hash:
        raise Conflict(
            "this Idempotency-Key was used with a different request", code="idempotency_conflict"
        )
    return cast(str, row["task_id"])


@router.post("/api/task", status_code=201)
async def create_task(
    body: TaskIn,
    response: Response,
    claims: Claims = Depends(require(Scope.TASKS_WRITE)),
    services: Services = Depends(get_services),
    idempotency_key: str | None = Header(default=None, max_length=255),
) -> dict[str, Any]:
    task_id = new_id(services.clock.now_ms(), prefix="tsk_")
    if idempotency_key:
        canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
        body_hash = hashlib.sha256(canonical).hexdigest()
        task_id = await _claim_key(
            services, f"{claims.subject}\x00{idempotency_key}", body_hash, task_id
        )
    outcome = await _create(services, body, task_id)
    if not outcome["created"]:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return outcome["task"]


@router.post("/api/tasks/batch", status_code=201)
async def create_batch(
    body: TaskBatchIn,
    _: Claims = Depends(require(Scope.TASKS_WRITE)),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    ids = [new_id(services.clock.now_ms(), prefix="tsk_") for _ in body.tasks]
    outcomes = await asyncio.gather(
        *(_create(services, task, task_id) for task, task_id in zip(body.tasks, ids, strict=True))
    )
    return {"tasks": [outcome["task"] for outcome in outcomes]}


def _task_id(task_id: str) -> str:
    if not looks_like(task_id, "tsk_"):
        raise NotFound("no such task")
    return task_id


@router.get("/api/task/{task_id}")
async def get_task(
    task_id: str,
    _: Claims = Depends(require(Scope.TASKS_READ)),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    return await TaskManagerClient.for_task(services, _task_id(task_id)).get()


@router.put("/api/task/{task_id}")
async def update_task(
    task_id: str,
    body: TaskUpdateIn,
    claims: Claims = Depends(require_server_or(Scope.TASKS_WRITE)),
    services: Services = Depends(get_services),
    lease: str | None = Header(default=None, alias=LEASE_HEADER, max_length=64),
) -> dict[str, Any]:
    server_id = authorize(claims, server_id=None)
    manager = TaskManagerClient.for_task(services, _task_id(task_id))
    return await manager.update(server_id, lease, body.model_dump(mode="json"))


@router.get("/api/tasks")
async def list_tasks(
    _: Claims = Depends(require(Scope.TASKS_READ)),
    services: Services = Depends(get_services),
    status: TaskStatus | None = None,
    type: str | None = Query(default=None, max_length=100),
    server_id: str | None = Query(default=None, max_length=64),
    since: AwareDatetime | None = None,
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=64),
) -> dict[str, Any]:
    """Newest first. Pass `next_cursor` back as `cursor` for the next page."""
    tasks, next_cursor = await newest_first(
        services.database,
        "SELECT id, type, status, priority, server_id, attempts, max_attempts, error,"
        " created_at, updated_at FROM tasks",
        equal={"status": status and status.value, "type": type, "server_id": server_id},
        since=rfc3339(since) if since else None,
        cursor=cursor,
        prefix="tsk_",
        limit=limit,
    )
    return {"tasks": tasks, "next_cursor": next_cursor}
