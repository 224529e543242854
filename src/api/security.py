"""Bearer-token auth for routes: `Depends(require(Scope.X, ...))` gives the caller's claims.

Any failure to prove identity is 401 (missing, malformed, `alg: none` or another algorithm, bad
signature, expired, another audience); a valid token without one of the route's scopes is 403.
Operator routes take operator tokens only; the few routes a backend server calls
(`require_server_or`) take its credential (audience `apiary:server`) too. Without a bearer
token, the dashboard's session cookie may stand in for an operator token (`api.session_cookie`:
the claims of the token that opened the session, and a CSRF token on state-changing requests).
"""

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import get_services
from api.session_cookie import cookie_claims
from auth import scopes as scope_rules
from auth.tokens import OPERATOR_AUDIENCE, SERVER_AUDIENCE, Claims, InvalidToken, decode
from errors import Forbidden, Unauthorized
from services import Services
from tasks import credentials as server_credentials

_bearer = HTTPBearer(auto_error=False, description="JWT, HS256, with `exp` and `scope`")


def server_of(claims: Claims) -> str | None:
    """The server a server credential speaks for (None for every other token)."""
    server_id = claims.raw.get("server_id")
    speaks = claims.audience == SERVER_AUDIENCE and isinstance(server_id, str)
    return server_id if speaks else None


def authorize(claims: Claims, *, server_id: str | None) -> str | None:
    """On a `require_server_or` route: the server id when a server credential is speaking
    (Forbidden when it speaks for another server than `server_id`), None for an operator."""
    speaking_for = server_of(claims)
    if speaking_for is not None and server_id is not None and speaking_for != server_id:
        raise Forbidden("this credential belongs to another server")
    return speaking_for


def verify_token(
    token: str, services: Services, audiences: tuple[str, ...] = (OPERATOR_AUDIENCE,)
) -> Claims:
    """The claims a bearer token proves; raises Unauthorized."""
    secret = services.config.get("JWT_SECRET") or ""
    try:
        return decode(token, secret, now_s=services.clock.now_ms() // 1000, audiences=audiences)
    except InvalidToken as exc:
        raise Unauthorized(str(exc)) from None


def _requirement(
    any_of: tuple[str, ...], audiences: tuple[str, ...]
) -> Callable[..., Awaitable[Claims]]:
    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
        services: Services = Depends(get_services),
    ) -> Claims:
        if credentials is None or credentials.scheme.lower() != "bearer":
            session = await cookie_claims(request, services)
            if session is None:
                raise Unauthorized("a bearer token is required")
            claims = session
        else:
            claims = verify_token(credentials.credentials, services, audiences)
        server_id = server_of(claims)
        if server_id is not None and not await server_credentials.still_good(
            services.database, server_id, claims.raw.get("cid"), services.clock.now_ms()
        ):
            raise Unauthorized("this server credential was replaced or revoked")
        if server_id is None and not scope_rules.grants(claims.scopes, any_of):
            raise Forbidden(f"requires scope {' or '.join(any_of)}")
        request.state.claims = claims
        return claims

    dependency.__name__ = f"require_{'_or_'.join(s.replace(':', '_') for s in any_of) or 'token'}"
    return dependency


def require(*any_of: str) -> Callable[..., Awaitable[Claims]]:
    """An operator token holding one of `any_of` (any operator token when none is named)."""
    return _requirement(any_of, (OPERATOR_AUDIENCE,))


def require_server_or(*any_of: str) -> Callable[..., Awaitable[Claims]]:
    """A server's credential, or an operator token; `authorize` then says which may act."""
    return _requirement(any_of, (OPERATOR_AUDIENCE, SERVER_AUDIENCE))


async def optional_claims(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    services: Services = Depends(get_services),
) -> Claims | None:
    """The caller's operator token if it presents a valid one, else None (never an error)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        return None
    secret = services.config.get("JWT_SECRET") or ""
    try:
        return decode(credentials.credentials, secret, now_s=services.clock.now_ms() // 1000)
    except InvalidToken:
        return None
