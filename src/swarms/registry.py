"""Which swarms exist, in D1: asked before anything reaches a swarm's Durable Object.

A Durable Object comes into being when it is first addressed, and each wake is a billed
request: so an upgrade to, or a read of, an id nobody created must be answered without one.
The row is written before the object is created, so a swarm the API has announced is always
found here.
"""

from ids import looks_like
from ports import Database, first


async def exists(db: Database, swarm_id: str) -> bool:
    if not looks_like(swarm_id, "swm_"):
        return False
    return await first(db, "SELECT 1 AS found FROM swarms WHERE id = ?", swarm_id) is not None


async def record(db: Database, swarm_id: str, name: str, created_at: str) -> None:
    await db.execute(
        "INSERT INTO swarms (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
        swarm_id,
        name,
        created_at,
    )
