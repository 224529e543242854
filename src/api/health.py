"""`GET /health`: is this Worker up, which environment and version, and are its parts OK."""

import asyncio
import logging
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import get_services
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
    checks: dict[str, str]


async def _database(services: Services) -> str:
    try:
        await services.database.execute("SELECT 1")
    except Exception:
        log.log(logging.WARNING, "health check: database unreachable", exc_info=True)
        return "error"
    return "ok"


BACKEND_TIMEOUT_S = 2.0


async def _backend(services: Services) -> str:
    """Can the cron jobs' backend be reached? (Its own `/health`, briefly.)"""
    base = services.config.get("BACKEND_BASE")
    if not base:
        return "not_configured"
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
async def health(services: Services = Depends(get_services)) -> Any:
    database, backend = await asyncio.gather(_database(services), _backend(services))
    checks = {"database": database, "backend": backend, "auth": _auth(services)}
    healthy = all(value in ("ok", "configured", "not_configured") for value in checks.values())
    # 503 only when apiary itself cannot serve; a backend outage is reported, not fatal here.
    serving = checks["database"] == "ok"
    body = Health(
        status="ok" if healthy else "degraded",
        timestamp=rfc3339(services.clock.now()),
        environment=services.config.environment,
        version=services.config.get("VERSION", VERSION) or VERSION,
        checks=checks,
    )
    return JSONResponse(body.model_dump(), status_code=200 if serving else 503)
