"""Dashboard sessions: an opaque cookie value that names a D1 row holding a token's claims.

The cookie's value is 32 random bytes; D1 keeps only its SHA-256, so a copy of the table opens
no session. A session carries exactly the subject and scopes of the token that opened it and
ends at that token's expiry at the latest; sign-out stamps `revoked_at`, after which the value
is refused. The CSRF token is an HMAC of the cookie value under `JWT_SECRET`: it needs no
storage, is worthless for any other session, and cannot be computed from the page (the cookie
is HttpOnly), so a page must fetch it from `GET /api/auth/session` first.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from ports import Database, first

COOKIE = "apiary_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PURGE_AFTER_S = 86_400  # expired rows linger a day (for the audit trail), then go


@dataclass(frozen=True, slots=True)
class Session:
    subject: str
    scopes: frozenset[str]
    expires_at: int  # epoch seconds: the opening token's `exp`


def new_value() -> str:
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def csrf_token(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{value}".encode(), hashlib.sha256).hexdigest()


def csrf_matches(secret: str, value: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(secret, value), presented or "")


def cookie_value(cookie_header: str | None) -> str | None:
    """The session cookie's value from a `Cookie` header, or None."""
    if not cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def set_cookie(value: str, *, max_age_s: int, secure: bool) -> str:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure
    on https; it lives no longer than the token that opened it."""
    flags = "; Secure" if secure else ""
    return f"{COOKIE}={value}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{flags}"


def clear_cookie(*, secure: bool) -> str:
    return set_cookie("", max_age_s=0, secure=secure)


async def open_session(
    db: Database, value: str, session: Session, *, now_s: int, created_at: str
) -> None:
    await db.execute("DELETE FROM dashboard_sessions WHERE expires_at < ?", now_s - PURGE_AFTER_S)
    await db.execute(
        "INSERT INTO dashboard_sessions (digest, subject, scopes, expires_at, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        digest(value),
        session.subject,
        " ".join(sorted(session.scopes)),
        session.expires_at,
        created_at,
    )


async def find(db: Database, value: str, *, now_s: int) -> Session | None:
    """The live session `value` names: not revoked, not expired."""
    row = await first(
        db,
        "SELECT subject, scopes, expires_at FROM dashboard_sessions"
        " WHERE digest = ? AND revoked_at IS NULL AND expires_at > ?",
        digest(value),
        now_s,
    )
    if row is None:
        return None
    return Session(row["subject"], frozenset(row["scopes"].split()), int(row["expires_at"]))


async def revoke(db: Database, value: str, *, revoked_at: str) -> bool:
    result = await db.execute(
        "UPDATE dashboard_sessions SET revoked_at = ? WHERE digest = ? AND revoked_at IS NULL",
        revoked_at,
        digest(value),
    )
    return result.changes > 0
