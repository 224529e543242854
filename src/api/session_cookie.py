"""Authentication by the dashboard's session cookie, for `api.security.require`.

A request that carries no bearer token may carry the session cookie instead. It then proves
exactly what the session holds (the opening token's subject, scopes and expiry), and a
state-changing request must also carry the session's CSRF token in `X-CSRF-Token`. Bearer-token
requests never come here.
"""

from fastapi import Request

from auth import sessions
from auth.tokens import OPERATOR_AUDIENCE, Claims
from errors import Forbidden, Unauthorized
from services import Services


def is_https(request: Request) -> bool:
    return request.url.scheme in ("https", "wss")


def claims_of(session: sessions.Session) -> Claims:
    raw = {"sub": session.subject, "scope": " ".join(sorted(session.scopes))}
    return Claims(
        session.subject,
        session.scopes,
        session.expires_at,
        OPERATOR_AUDIENCE,
        {**raw, "aud": OPERATOR_AUDIENCE, "session": True},
    )


async def cookie_claims(request: Request, services: Services) -> Claims | None:
    """The session's claims, None without a session cookie; raises when the cookie is stale
    (401) or a state-changing request lacks the session's CSRF token (403)."""
    value = sessions.cookie_value(request.headers.get("cookie"))
    if value is None:
        return None
    now_s = services.clock.now_ms() // 1000
    session = await sessions.find(services.database, value, now_s=now_s)
    if session is None:
        raise Unauthorized("the session has ended: sign in again")
    if request.method.upper() not in sessions.SAFE_METHODS:
        secret = services.config.get("JWT_SECRET") or ""
        if not sessions.csrf_matches(secret, value, request.headers.get(sessions.CSRF_HEADER)):
            raise Forbidden("missing or wrong CSRF token", code="csrf_failed")
    return claims_of(session)
