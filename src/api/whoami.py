"""`GET /api/auth/whoami`: what the presented token proves (subject, scopes, expiry)."""

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.security import require
from auth.tokens import Claims
from clock import from_ms, rfc3339

router = APIRouter(tags=["auth"])


class WhoAmI(BaseModel):
    subject: str
    scopes: list[str]
    expires_at: str


@router.get("/api/auth/whoami", response_model=WhoAmI)
async def whoami(claims: Claims = Depends(require())) -> WhoAmI:
    return WhoAmI(
        subject=claims.subject,
        scopes=sorted(claims.scopes),
        expires_at=rfc3339(from_ms(claims.expires_at * 1000)),
    )
