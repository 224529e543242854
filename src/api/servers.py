"""Server registry routes: register, list, inspect, remove, heartbeat, rotate credentials."""

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.deps import get_services
from api.security import authorize, require, require_server_or
from auth.scopes import Scope
from auth.tokens import Claims
from durable.registry_shards import ServerRegistries
from durable.server_instance import ServerInstanceClient
from durable.task_manager import TaskManagerClient
from egress import require_allowed
from errors import NotFound, Unavailable
from ids import looks_like, new_id
from logs import get_logger
from services import Services
from tasks import credentials
from tasks.models import HeartbeatIn, ServerIn
from tasks.settings import TaskSettings

router = APIRouter(prefix="/api/servers", tags=["servers"])
log = get_logger("servers")


class Credential(BaseModel):
    credential: str
    credential_expires_in_s: int


class Registered(Credential):
    server: dict[str, Any]


def _known_shape(server_id: str) -> str:
    if not looks_like(server_id, "srv_"):
        raise NotFound("no such server")
    return server_id


async def _deregister(services: Services, server_id: str) -> int | None:
    """Remove a server everywhere; returns how many tasks moved, None if it was unknown."""
    outcome = await ServerRegistries(services).remove(server_id)
    await ServerInstanceClient.for_server(services, server_id).stop()
    await credentials.revoke_all(services.database, server_id)
    if not outcome["removed"]:
        return None
    for task_id in outcome["tasks"]:
        await TaskManagerClient.for_task(services, task_id).server_lost(server_id, "server_lost")
    return len(outcome["tasks"])


@router.post("", status_code=201, response_model=Registered)
async def register(
    body: ServerIn,
    _: Claims = Depends(require(Scope.SERVERS_ADMIN)),
    services: Services = Depends(get_services),
) -> Registered:
    url = str(body.url).rstrip("/")
    require_allowed(services.config, [url])  # apiary calls it at once and on a timer
    server_id = new_id(services.clock.now_ms(), prefix="srv_")
    server = {**body.model_dump(mode="json"), "id": server_id, "url": url}
    registries = ServerRegistries(services)
    shard = registries.shard_for_new_server(server_id)
    registry = registries.shard(shard)
    await registry.register(server, "unhealthy")
    try:
        await ServerInstanceClient.for_server(services, server_id).start(server_id, url, shard)
    except Exception as exc:
        log.exception("server health watch failed to start")
        await registry.remove(server_id)
        raise Unavailable("could not start watching the server; try again") from exc
    record = await registry.get(server_id)
    issued = await credentials.issue(services, server_id)
    return Registered(
        server=dict(record),
        credential=issued.credential,
        credential_expires_in_s=issued.expires_in_s,
    )


@router.get("")
async def list_servers(
    _: Claims = Depends(require(Scope.SERVERS_ADMIN, Scope.TASKS_READ)),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    return {"servers": await ServerRegistries(services).servers()}


@router.post("/cleanup")
async def cleanup(
    _: Claims = Depends(require(Scope.SERVERS_ADMIN)),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    """Remove servers silent for longer than the stale limit; their tasks move elsewhere."""
    limit = TaskSettings.from_config(services.config).stale_after_ms
    removed, moved = [], 0
    for server_id in await ServerRegistries(services).stale(limit):
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
    return dict(await ServerRegistries(services).get(_known_shape(server_id)))


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
    instance = ServerInstanceClient.for_server(services, _known_shape(server_id))
    outcome = await instance.heartbeat(body.model_dump(exclude_none=True))
    if not outcome["known"]:
        raise NotFound("no such server (deregistered?)")
    return {"id": server_id, "status": outcome["status"]}


@router.post("/{server_id}/credentials", status_code=201, response_model=Credential)
async def rotate_credential(
    server_id: str,
    claims: Claims = Depends(require_server_or(Scope.SERVERS_ADMIN)),
    services: Services = Depends(get_services),
) -> Credential:
    """A new credential for the server (the server itself, or an admin, asks). The ones issued
    before keep working for `SERVER_CREDENTIAL_GRACE_S` (600 s), then they are refused."""
    authorize(claims, server_id=server_id)
    await ServerRegistries(services).get(_known_shape(server_id))  # 404 if unknown
    issued = await credentials.rotate(services, server_id)
    return Credential(credential=issued.credential, credential_expires_in_s=issued.expires_in_s)
