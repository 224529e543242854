"""`GET /health`: is this Worker up, which environment and version, and are its parts OK.

Anyone may ask (load balancers do), so an anonymous caller gets the status only, and the
backend check behind it is made at most once per `BACKEND_CACHE_MS` per isolate: a flood of
anonymous requests is never a flood at the backend. A caller with a valid token gets every
check, freshly made.
"""

import asyncio
import logging
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import get_services
from api.security import optional_claims
from auth.tokens import Claims
from clock import rfc3339
from logs import get_logger
from ports import HttpError
from services import Services
from version import VERSION

router = APIRouter(tags=["health"])
log = get_logger("health")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    timestamp: str
    environment: str
    version: str
    checks: dict[str, str] | None = None  # for a caller with a valid token


async def _database(services: Services) -> str:
    try:
        await services.database.execute("SELECT 1")
    except Exception:
        log.log(logging.WARNING, "health check: database unreachable", exc_info=True)
        return "error"
    return "ok"


BACKEND_TIMEOUT_S = 2.0
BACKEND_CACHE_MS = 10_000
_backend_seen: dict[str, tuple[int, str]] = {}  # base URL -> (checked at, result), per isolate


async def _backend(services: Services, *, fresh: bool) -> str:
    """Can the cron jobs' backend be reached? (Its own `/health`, briefly.)"""
    base = services.config.get("BACKEND_BASE")
    if not base:
        return "not_configured"
    now = services.clock.now_ms()
    seen = _backend_seen.get(base)
    if not fresh and seen is not None and now - seen[0] < BACKEND_CACHE_MS:
        return seen[1]
    result = await _check_backend(services, base)
    _backend_seen[base] = (now, result)
    return result


async def _check_backend(services: Services, base: str) -> str:
    try:
        response = await services.http.request(
            "GET", f"{base.rstrip('/')}/health", timeout_s=BACKEND_TIMEOUT_S
        )
    except HttpError as exc:
        log.log(logging.WARNING, "health check: backend unreachable (%s)", exc.kind)
        return "unreachable"
    return "ok" if 200 <= response.status < 300 else f"http_{response.status}"


def _auth(services: Services) -> str:
    return "configured" if services.config.get("CRON_TOKEN") else "not_configured"


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(
    services: Services = Depends(get_services), claims: Claims | None = Depends(optional_claims)
) -> Any:
    trusted = claims is not None
    database, backend = await asyncio.gather(_database(services), _backend(services, fresh=trusted))
    checks = {"database": database, "backend": backend, "auth": _auth(services)}
    healthy = all(value in ("ok", "configured", "not_configured") for value in checks.values())
    # 503 only when apiary itself cannot serve; a backend outage is reported, not fatal here.
    serving = checks["database"] == "ok"
    body = Health(
        status="ok" if healthy else "degraded",
        timestamp=rfc3339(services.clock.now()),
        environment=services.config.environment,
        version=services.config.get("VERSION", VERSION) or VERSION,
        checks=checks if trusted else None,
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if serving else 503)
