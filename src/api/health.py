"""`GET /health`: is this Worker up, which environment and version, and are its parts OK."""

import logging
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import get_services
from clock import rfc3339
from logs import get_logger
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


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(services: Services = Depends(get_services)) -> Any:
    checks = {"database": await _database(services)}
    healthy = all(value in ("ok", "configured", "not_configured") for value in checks.values())
    body = Health(
        status="ok" if healthy else "degraded",
        timestamp=rfc3339(services.clock.now()),
        environment=services.config.environment,
        version=services.config.get("VERSION", VERSION) or VERSION,
        checks=checks,
    )
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
