"""Server credentials: minted at registration, rotated on request, revoked with the server.

A credential is a JWT for the `apiary:server` audience naming its server and a credential id
(`cid`). D1 keeps the ids still good (`server_credentials`), so a credential can end before its
own expiry: rotation gives the old id `SERVER_CREDENTIAL_GRACE_S` (600) more seconds, so a
server can switch without a gap, and removing the server ends all of its ids at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from auth.tokens import SERVER_AUDIENCE, mint
from ports import Database, first
from services import Services

TTL_S = 90 * 86_400
GRACE_S = 600


@dataclass(frozen=True, slots=True)
class Issued:
    credential: str
    expires_in_s: int


def grace_s(services: Services) -> int:
    raw = services.config.get("SERVER_CREDENTIAL_GRACE_S")
    return int(raw) if raw and raw.isdigit() else GRACE_S


async def issue(services: Services, server_id: str) -> Issued:
    now_ms = services.clock.now_ms()
    cid = secrets.token_hex(8)
    await services.database.execute(
        "INSERT INTO server_credentials (server_id, cid, expires_at_ms) VALUES (?, ?, ?)",
        server_id,
        cid,
        now_ms + TTL_S * 1000,
    )
    credential = mint(
        subject=f"server:{server_id}",
        scopes=[],
        now_s=now_ms // 1000,
        ttl_s=TTL_S,
        secret=services.config.get("JWT_SECRET") or "",
        audience=SERVER_AUDIENCE,
        extra={"server_id": server_id, "cid": cid},
    )
    return Issued(credential, TTL_S)


async def rotate(services: Services, server_id: str) -> Issued:
    """A new credential; the ones before it keep working for the grace period only."""
    ends = services.clock.now_ms() + grace_s(services) * 1000
    await services.database.execute(
        "UPDATE server_credentials SET expires_at_ms = min(expires_at_ms, ?) WHERE server_id = ?",
        ends,
        server_id,
    )
    return await issue(services, server_id)


async def still_good(db: Database, server_id: str, cid: object, now_ms: int) -> bool:
    if not isinstance(cid, str):
        return False
    row = await first(
        db,
        "SELECT 1 AS good FROM server_credentials WHERE server_id = ? AND cid = ?"
        " AND expires_at_ms > ?",
        server_id,
        cid,
        now_ms,
    )
    return row is not None


async def revoke_all(db: Database, server_id: str) -> None:
    await db.execute("DELETE FROM server_credentials WHERE server_id = ?", server_id)
