"""Invite tokens and device credentials. Pure functions; secrets come from `secrets`.

An invite token is shown once and stored only as its SHA-256. A device secret is kept by the
object (it must compute the HMAC) and by the device; a RESUME proves possession with
HMAC-SHA256(secret, "device_id:ts:nonce"), fresh within `MAX_SKEW_MS`, nonce never reused.
"""

import hashlib
import hmac
import secrets

MAX_SKEW_MS = 60_000


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign(secret: str, device_id: str, ts: int, nonce: str) -> str:
    message = f"{device_id}:{ts}:{nonce}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def check_resume(
    secret: str, device_id: str, ts: int, nonce: str, signature: str, now_ms: int
) -> str | None:
    """Why a RESUME fails (None when it is good), before the nonce's reuse is checked."""
    if abs(now_ms - ts) > MAX_SKEW_MS:
        return "stale timestamp"
    if not hmac.compare_digest(sign(secret, device_id, ts, nonce), signature):
        return "bad signature"
    return None
