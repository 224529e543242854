"""Server registry routes: register, list, inspect, remove, heartbeat, clean up."""

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.deps import get_services
from api.security import authorize, require, require_server_or
from auth.scopes import Scope
from auth.tokens import SERVER_AUDIENCE, Claims, mint
from egress import require_allowed
from errors import NotFound, Unavailable
from ids import looks_like, new_id
from logs import get_logger
from services import Services
from tasks import settings as names
from tasks.models import HeartbeatIn, ServerIn
from tasks.settings import TaskSettings

router = APIRouter(prefix="/api/servers", tags=["servers"])
log = get_logger("servers")
CREDENTIAL_TTL_S = 90 * 86_400


class Registered(BaseModel):
    server: dict[str, Any]
    credential: str
    credential_expires_in_s: int


def _registry(services: Services) -> Any:
    return services.namespace(names.REGISTRY).get("global")


def _known_shape(server_id: str) -> str:
    if not looks_like(server_id, "srv_"):
        raise NotFound("no such server")
    return server_id


async def _deregister(services: Services, server_id: str) -> int | None:
    """Remove a server everywhere; returns how many tasks moved, None if it was unknown."""
    outcome = await _registry(services).call("remove", server_id)
    await services.namespace(names.INSTANCES).get(server_id).call("stop")
    if not outcome["removed"]:
        return None
    tasks = services.namespace(names.TASKS)
    for task_id in outcome["tasks"]:
        await tasks.get(task_id).call("server_lost", server_id)
    return len(outcome["tasks"])


@router.post("", status_code=201, response_model=Registered)
async def register(
    body: ServerIn,
    _: Claims = Depends(require(Scope.SERVERS_ADMIN)),
    services: Services = Depends(get_services),
) -> Registered:
    url = str(body.url).rstrip("/")
    require_allowed(services.config, [url])  # apiary calls it at once and on a timer
    now = services.clock.now_ms()
    server_id = new_id(now, prefix="srv_")
    server = {**body.model_dump(mode="json"), "id": server_id, "url": url}
    await _registry(services).call("register", server, "unhealthy")
    try:
        await services.namespace(names.INSTANCES).get(server_id).call("start", server_id, url)
    except Exception as exc:
        log.exception("server health watch failed to start")
        await _registry(services).call("remove", server_id)
        raise Unavailable("could not start watching the server; try again") from exc
    record = await _registry(services).call("get", server_id)
    credential = mint(
        subject=f"server:{server_id}",
        scopes=[],
        audience=SERVER_AUDIENCE,
        now_s=now // 1000,
        ttl_s=CREDENTIAL_TTL_S,
        secret=services.config.get("JWT_SECRET") or "",
        extra={"server_id": server_id},
    )
    return Registered(
        server=record, credential=credential, credential_expires_in_s=CREDENTIAL_TTL_S
    )


@router.get("")
async def list_servers(
    _: Claims = Depends(require(Scope.SERVERS_ADMIN, Scope.TASKS_READ)),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    return {"servers": await _registry(services).call("servers")}


@router.post("/cleanup")
async def cleanup(
    _: Claims = Depends(require(Scope.SERVERS_ADMIN)),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    """Remove servers silent for longer than the stale limit; their tasks move elsewhere."""
    limit = TaskSettings.from_config(services.config).stale_after_ms
    removed, moved = [], 0
    for server_id in await _registry(services).call("stale", limit):
        count = await _deregister(services, server_id)
        if count is not None:
            removed.append(server_id)
            moved += count
    return {"removed": removed, "tasks_reassigned": moved}


@router.get("/{server_id}")
async def get_server(
    server_id: str,
    _: Claims = Depends(require(Scope.SERVERS_ADMIN, Scope.TASKS_READ)),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    record = await _registry(services).call("get", _known_shape(server_id))
    if record is None:
        raise NotFound("no such server")
    return record


@router.delete("/{server_id}")
async def delete_server(
    server_id: str,
    _: Claims = Depends(require(Scope.SERVERS_ADMIN)),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    moved = await _deregister(services, _known_shape(server_id))
    if moved is None:
        raise NotFound("no such server")
    return {"removed": server_id, "tasks_reassigned": moved}


@router.post("/{server_id}/heartbeat")
async def heartbeat(
    server_id: str,
    body: HeartbeatIn,
    claims: Claims = Depends(require_server_or(Scope.SERVERS_ADMIN)),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    authorize(claims, server_id=server_id)
    outcome = (
        await services.namespace(names.INSTANCES)
        .get(_known_shape(server_id))
        .call("heartbeat", body.model_dump(exclude_none=True))
    )
    if not outcome["known"]:
        raise NotFound("no such server (deregistered?)")
    return {"id": server_id, "status": outcome["status"]}
