"""`/api/auth/session`: the dashboard signs in with a token once and then holds a cookie.

- `POST` `{token, subject?}` checks the token as a bearer token would be checked, opens a
  session with its subject, scopes and expiry, and sets the HttpOnly, SameSite=Strict cookie
  (Secure on https). Server credentials cannot open one. The token is never stored.
- `GET` tells the page whether and as whom it is signed in (200 either way: a page that is
  not signed in is not an error, and a browser logs every 4xx to the console), and gives it
  the CSRF token it must send as `X-CSRF-Token` on every state-changing request the cookie
  authenticates.
- `DELETE` (cookie and CSRF token) revokes the session server-side and clears the cookie.

Only same-origin pages may open a session: a browser's `Sec-Fetch-Site` from another site is
refused, and the body must be JSON (a cross-site form cannot send that without a CORS
preflight, which the CORS allowlist refuses).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import get_services
from api.security import require, verify_token
from api.session_cookie import claims_of, is_https
from auth import sessions
from auth.tokens import Claims
from clock import from_ms, rfc3339
from errors import Forbidden, Unauthorized
from services import Services

router = APIRouter(tags=["auth"])
SAME_ORIGIN = frozenset({"same-origin", "none"})


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, Field(min_length=1, max_length=8192)]
    # Optional, like a username: when given it must be the token's subject.
    subject: Annotated[str, Field(max_length=200)] | None = None


class SessionOut(BaseModel):
    signed_in: bool = True
    subject: str | None = None
    scopes: list[str] = []
    expires_at: str | None = None
    csrf_token: str | None = None


def _view(claims: Claims, csrf: str) -> SessionOut:
    return SessionOut(
        subject=claims.subject,
        scopes=sorted(claims.scopes),
        expires_at=rfc3339(from_ms(claims.expires_at * 1000)),
        csrf_token=csrf,
    )


def _secret(services: Services) -> str:
    return services.config.get("JWT_SECRET") or ""


@router.post("/api/auth/session", response_model=SessionOut, status_code=201)
async def sign_in(
    body: SessionIn,
    request: Request,
    response: Response,
    services: Services = Depends(get_services),
) -> SessionOut:
    if request.headers.get("sec-fetch-site", "same-origin") not in SAME_ORIGIN:
        raise Forbidden("sessions are opened from this site's own pages only")
    # Operator tokens only: a server credential's audience is refused here.
    claims = verify_token(body.token, services)
    if body.subject and body.subject.strip() != claims.subject:
        raise Unauthorized("this token belongs to another subject")
    now_s = services.clock.now_ms() // 1000
    value = sessions.new_value()
    session = sessions.Session(claims.subject, claims.scopes, claims.expires_at)
    await sessions.open_session(
        services.database, value, session, now_s=now_s, created_at=rfc3339(services.clock.now())
    )
    response.headers["set-cookie"] = sessions.set_cookie(
        value, max_age_s=max(1, claims.expires_at - now_s), secure=is_https(request)
    )
    response.headers["cache-control"] = "no-store"
    return _view(claims, sessions.csrf_token(_secret(services), value))


@router.get("/api/auth/session", response_model=SessionOut)
async def current(
    request: Request, response: Response, services: Services = Depends(get_services)
) -> SessionOut:
    response.headers["cache-control"] = "no-store"
    value = sessions.cookie_value(request.headers.get("cookie"))
    now_s = services.clock.now_ms() // 1000
    session = None
    if value is not None:
        session = await sessions.find(services.database, value, now_s=now_s)
    if value is None or session is None:
        return SessionOut(signed_in=False)
    return _view(claims_of(session), sessions.csrf_token(_secret(services), value))


@router.delete("/api/auth/session", status_code=204)
async def sign_out(
    request: Request,
    claims: Claims = Depends(require()),
    services: Services = Depends(get_services),
) -> Response:
    value = sessions.cookie_value(request.headers.get("cookie"))
    if value is None or not claims.raw.get("session"):
        raise Unauthorized("no dashboard session to end")
    await sessions.revoke(services.database, value, revoked_at=rfc3339(services.clock.now()))
    headers: dict[str, Any] = {"set-cookie": sessions.clear_cookie(secure=is_https(request))}
    return Response(status_code=204, headers=headers)
