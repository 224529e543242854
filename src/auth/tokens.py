"""JWT (RFC 7519), HS256 only, through PyJWT; time is an argument, never read here.

Strict: the algorithm is pinned (so `none` and every other one are refused before any
signature check), the signature is compared in constant time, `exp`, `sub` and `aud` are
required, and the leeway for clock skew is explicit and small. Each segment must be base64url
and nothing else (base64 decoders skip stray characters, which would let many strings verify as
one token). An audience tells operator tokens from server credentials, so one can never pass as
the other.
"""

import re
from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHM = "HS256"
LEEWAY_S = 30  # tolerated clock skew between the minting host and us
OPERATOR_AUDIENCE = "apiary"  # people and their tools (`apiary token`)
SERVER_AUDIENCE = "apiary:server"  # a registered backend server's credential
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
LATEST_EXP_S = 253_402_300_799  # 9999-12-31T23:59:59Z: anything later is not a time we show
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


class InvalidToken(Exception):
    """Why a token was refused; the reason is safe to show the caller."""


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str
    scopes: frozenset[str]
    expires_at: int
    audience: str
    raw: dict[str, Any]


def _strong_enough(secret: str) -> bool:
    return len(secret.encode()) >= MIN_SECRET_BYTES


def encode(claims: dict[str, Any], secret: str) -> str:
    if not _strong_enough(secret):
        raise ValueError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def mint(
    *,
    subject: str,
    scopes: list[str],
    now_s: int,
    ttl_s: int,
    secret: str,
    audience: str = OPERATOR_AUDIENCE,
    extra: dict[str, Any] | None = None,
) -> str:
    claims = {
        **(extra or {}),
        "sub": subject,
        "aud": audience,
        "scope": " ".join(scopes),
        "iat": now_s,
        "exp": now_s + ttl_s,
    }
    return encode(claims, secret)


def _time(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidToken(f"claim {name!r} must be a number")
    if not 0 <= value <= LATEST_EXP_S:
        raise InvalidToken(f"claim {name!r} is out of range")
    return int(value)


def decode(
    token: str, secret: str, *, now_s: int, audiences: tuple[str, ...] = (OPERATOR_AUDIENCE,)
) -> Claims:
    if not _strong_enough(secret):
        raise InvalidToken("token verification is not configured")
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.match(part) for part in parts):
        raise InvalidToken("malformed token")
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise InvalidToken("malformed token") from None
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("unsupported token algorithm")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=list(audiences),
            # Times are judged below against `now_s` (the clock port), not PyJWT's clock.
            options={
                "require": ["exp", "sub", "aud"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise InvalidToken("bad token signature") from None
    except jwt.MissingRequiredClaimError as exc:
        what = {"exp": "expiry", "sub": "subject", "aud": "audience"}.get(exc.claim, exc.claim)
        raise InvalidToken(f"token has no {what}") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("token is not for this audience") from None
    except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError):
        raise InvalidToken("malformed token") from None
    expires_at = _time(claims, "exp")
    assert expires_at is not None  # required above
    if now_s >= expires_at + LEEWAY_S:
        raise InvalidToken("token expired")
    not_before = _time(claims, "nbf")
    if not_before is not None and now_s + LEEWAY_S < not_before:
        raise InvalidToken("token not yet valid")
    subject, scope, audience = claims.get("sub"), claims.get("scope", ""), claims.get("aud")
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("token has no subject")
    if not isinstance(scope, str):
        raise InvalidToken("claim 'scope' must be a string")
    if not isinstance(audience, str):
        raise InvalidToken("claim 'aud' must be one audience")
    return Claims(subject, frozenset(scope.split()), expires_at, audience, claims)
