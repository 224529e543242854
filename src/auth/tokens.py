"""JWT (RFC 7519) with HS256 only, on the standard library.

Only what apiary needs, and strict: the header must say `alg: HS256` (so `none` and every
other algorithm are refused before any signature check), the signature is compared in
constant time, and `exp` is required. Time is an argument, never read here.
"""

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

ALGORITHM = "HS256"
LEEWAY_S = 30  # tolerated clock skew between the minting host and us


class InvalidToken(Exception):
    """Why a token was refused; the reason is safe to show the caller."""


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str
    scopes: frozenset[str]
    expires_at: int
    raw: dict[str, Any]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or any(c in text for c in "=+/ \n"):
        raise InvalidToken("malformed token")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed token") from exc


def _sign(signing_input: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()


def encode(claims: dict[str, Any], secret: str) -> str:
    header = {"alg": ALGORITHM, "typ": "JWT"}
    signing_input = (
        _b64encode(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    )
    return signing_input + "." + _b64encode(_sign(signing_input.encode("ascii"), secret))


def mint(
    *,
    subject: str,
    scopes: list[str],
    now_s: int,
    ttl_s: int,
    secret: str,
    extra: dict[str, Any] | None = None,
) -> str:
    claims = {
        **(extra or {}),
        "sub": subject,
        "scope": " ".join(scopes),
        "iat": now_s,
        "exp": now_s + ttl_s,
    }
    return encode(claims, secret)


def _json_object(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(segment))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidToken("malformed token") from exc
    if not isinstance(value, dict):
        raise InvalidToken("malformed token")
    return value


def _number(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"claim {name!r} must be a number")
    return int(value)


def decode(token: str, secret: str, *, now_s: int) -> Claims:
    if not secret:
        raise InvalidToken("token verification is not configured")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed token")
    header = _json_object(parts[0])
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("unsupported token algorithm")
    signature = _b64decode(parts[2])
    expected = _sign(f"{parts[0]}.{parts[1]}".encode("ascii"), secret)
    if not hmac.compare_digest(signature, expected):
        raise InvalidToken("bad token signature")
    claims = _json_object(parts[1])
    expires_at = _number(claims, "exp")
    if expires_at is None:
        raise InvalidToken("token has no expiry")
    if now_s >= expires_at + LEEWAY_S:
        raise InvalidToken("token expired")
    not_before = _number(claims, "nbf")
    if not_before is not None and now_s + LEEWAY_S < not_before:
        raise InvalidToken("token not yet valid")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("token has no subject")
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise InvalidToken("claim 'scope' must be a string")
    return Claims(subject, frozenset(scope.split()), expires_at, claims)
