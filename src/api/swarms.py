"""Swarm routes: create and inspect swarms, invite devices, submit jobs. The WebSocket
(`/api/swarms/{id}/ws`) never comes here: the entrypoint routes it to the swarm's object."""

from typing import Any

from fastapi import APIRouter, Depends, Query

from api.deps import get_services
from api.paging import newest_first
from api.security import require
from auth.scopes import Scope
from auth.tokens import Claims
from clock import rfc3339
from durable.rate_limiter import RateLimiterClient
from durable.swarm_coordinator import SwarmClient
from errors import NotFound, RateLimited
from ids import looks_like, new_id
from services import Services
from swarms import registry
from swarms.models import InviteIn, JobIn, SwarmIn

router = APIRouter(tags=["swarms"])
INVITES_PER_MINUTE = 5
ADMIN = Depends(require(Scope.SWARMS_ADMIN))


async def _swarm(services: Services, swarm_id: str) -> SwarmClient:
    """The swarm's object, only once D1 says it exists: an unknown id wakes nothing."""
    if not await registry.exists(services.database, swarm_id):
        raise NotFound("no such swarm")
    return SwarmClient.for_swarm(services, swarm_id)


@router.post("/api/swarms", status_code=201)
async def create_swarm(
    body: SwarmIn, _: Claims = ADMIN, services: Services = Depends(get_services)
) -> dict[str, Any]:
    swarm_id = new_id(services.clock.now_ms(), prefix="swm_")
    spec = {"id": swarm_id, **body.model_dump(mode="json")}
    # D1 first: the registry row is what lets anything reach the object afterwards.
    await registry.record(services.database, swarm_id, body.name, rfc3339(services.clock.now()))
    return await SwarmClient.for_swarm(services, swarm_id).create(spec)


@router.get("/api/swarms")
async def list_swarms(
    _: Claims = ADMIN,
    services: Services = Depends(get_services),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=64),
) -> dict[str, Any]:
    """Newest first. Pass `next_cursor` back as `cursor` for the next page."""
    swarms, next_cursor = await newest_first(
        services.database,
        "SELECT id, name, created_at FROM swarms",
        equal={},
        cursor=cursor,
        prefix="swm_",
        limit=limit,
    )
    return {"swarms": swarms, "next_cursor": next_cursor}


@router.get("/api/swarms/{swarm_id}")
async def get_swarm(
    swarm_id: str, _: Claims = ADMIN, services: Services = Depends(get_services)
) -> dict[str, Any]:
    return await (await _swarm(services, swarm_id)).snapshot()


@router.post("/api/swarms/{swarm_id}/invites", status_code=201)
async def create_invite(
    swarm_id: str,
    body: InviteIn | None = None,
    _: Claims = ADMIN,
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    body = body or InviteIn()
    swarm = await _swarm(services, swarm_id)
    limiter = RateLimiterClient.for_key(services, f"invites:{swarm_id}")
    verdict = await limiter.acquire(INVITES_PER_MINUTE, 60, 1)
    if not verdict["allowed"]:
        raise RateLimited(
            f"at most {INVITES_PER_MINUTE} invites per minute per swarm",
            retry_after_s=max(1, int(verdict["retry_after_s"] + 0.999)),
        )
    invite = await swarm.invite(body.max_uses, body.ttl_s)
    public = (services.config.get("PUBLIC_URL") or "").rstrip("/")
    ws_base = public.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    # The page a phone opens (from the QR code): the token rides in the fragment, which
    # browsers never send, so it reaches no server log.
    page = f"{public}/join#swarm={swarm_id}&invite={invite['token']}"
    return {**invite, "join_url": f"{ws_base}/api/swarms/{swarm_id}/ws", "invite_url": page}


@router.post("/api/swarms/{swarm_id}/jobs", status_code=201)
async def create_job(
    swarm_id: str, body: JobIn, _: Claims = ADMIN, services: Services = Depends(get_services)
) -> dict[str, Any]:
    spec = body.model_dump(mode="json")
    return await (await _swarm(services, swarm_id)).add_job(spec)


@router.get("/api/swarms/{swarm_id}/jobs/{job_id}")
async def get_job(
    swarm_id: str, job_id: str, _: Claims = ADMIN, services: Services = Depends(get_services)
) -> dict[str, Any]:
    if not looks_like(job_id, "job_"):
        raise NotFound("no such job")
    return await (await _swarm(services, swarm_id)).get_job(job_id)
