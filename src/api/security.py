"""Bearer-token auth for routes: `Depends(require(Scope.X, ...))` gives the caller's claims.

Any failure to prove identity is 401 (missing, malformed, `alg: none` or another algorithm, bad
signature, expired); a valid token without one of the route's scopes is 403. Without a bearer
token, the dashboard's session cookie may stand in for one (`api.session_cookie`: the claims
of the token that opened the session, and a CSRF token on state-changing requests).
"""

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import get_services
from api.session_cookie import cookie_claims
from auth import scopes as scope_rules
from auth.tokens import Claims, InvalidToken, decode
from errors import Forbidden, Unauthorized
from services import Services

_bearer = HTTPBearer(auto_error=False, description="JWT, HS256, with `exp` and `scope`")


SERVER_SCOPE = "server"


def server_of(claims: Claims) -> str | None:
    """The server a server credential speaks for (None for every other token)."""
    server_id = claims.raw.get("server_id")
    return server_id if SERVER_SCOPE in claims.scopes and isinstance(server_id, str) else None


def authorize(claims: Claims, *, server_id: str | None, any_of: tuple[str, ...]) -> str | None:
    """For routes open to one server's credential or to user scopes: returns the server id
    when a server credential is speaking, else None; raises Forbidden otherwise."""
    speaking_for = server_of(claims)
    if speaking_for is not None:
        if server_id is not None and speaking_for != server_id:
            raise Forbidden("this credential belongs to another server")
        return speaking_for
    if not scope_rules.grants(claims.scopes, any_of):
        raise Forbidden(f"requires scope {' or '.join(any_of)}")
    return None


def verify_token(token: str, services: Services) -> Claims:
    """The claims a bearer token proves; raises Unauthorized."""
    secret = services.config.get("JWT_SECRET") or ""
    try:
        return decode(token, secret, now_s=services.clock.now_ms() // 1000)
    except InvalidToken as exc:
        raise Unauthorized(str(exc)) from None


def require(*any_of: str) -> Callable[..., Awaitable[Claims]]:
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
            claims = verify_token(credentials.credentials, services)
        if not scope_rules.grants(claims.scopes, any_of):
            raise Forbidden(f"requires scope {' or '.join(any_of)}")
        request.state.claims = claims
        return claims

    dependency.__name__ = f"require_{'_or_'.join(s.replace(':', '_') for s in any_of) or 'token'}"
    return dependency
