"""The registry's shards as one (`ServerRegistries`), and where a key lives (`shard_of`).

A server lives in one shard, chosen by a hash of its id when it registers and kept by its
ServerInstance; a task asks the shard its id hashes to, and another only when that one has no
healthy server with the capabilities it needs.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable

from durable.server_registry import Removal, ServerRecord, ServerRegistryClient, Slot
from errors import NotFound
from services import Services
from tasks.settings import TaskSettings


def shard_of(key: str, shards: int) -> int:
    """A stable hash (Python's own is salted per process), spread evenly over the shards."""
    return zlib.crc32(key.encode()) % shards


class ServerRegistries:
    """Every shard of the registry as one. What names a server goes to its shard; what lists
    or looks a server up by id alone asks every shard at once (admin calls, not per task)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.count = TaskSettings.from_config(services.config).registry_shards

    def shard(self, shard: int) -> ServerRegistryClient:
        return ServerRegistryClient.of(self.services, shard)

    def shard_for_new_server(self, server_id: str) -> int:
        return shard_of(server_id, self.count)

    async def _each[T](self, call: Callable[[ServerRegistryClient], Awaitable[T]]) -> list[T]:
        return list(await asyncio.gather(*(call(self.shard(k)) for k in range(self.count))))

    async def get(self, server_id: str) -> ServerRecord:
        async def lookup(shard: ServerRegistryClient) -> ServerRecord | None:
            try:
                return await shard.get(server_id)
            except NotFound:
                return None

        found = [r for r in await self._each(lookup) if r is not None]
        if not found:
            raise NotFound("no such server")
        return found[0]

    async def servers(self) -> list[ServerRecord]:
        listed = await self._each(lambda shard: shard.servers())
        records = (r for shard in listed for r in shard)
        return sorted(records, key=lambda r: (r["registered_at_ms"], r["id"]))

    async def remove(self, server_id: str) -> Removal:
        removals = await self._each(lambda shard: shard.remove(server_id))
        return Removal(removed=any(r["removed"] for r in removals),
                       tasks=[t for r in removals for t in r["tasks"]])  # fmt: skip

    async def stale(self, older_than_ms: int) -> list[str]:
        listed = await self._each(lambda shard: shard.stale(older_than_ms))
        return sorted(server_id for shard in listed for server_id in shard)

    async def acquire(
        self,
        task_id: str,
        attempt: int,
        priority: int,
        required: list[str],
        exclude: list[str],
        at: int | None = None,
    ) -> tuple[Slot | None, int]:
        """A slot, or the shard the task is queued in. It asks `at` (where the task waits
        already) or the shard its id hashes to; another only when that one has no healthy
        server able to run it; and queues in the first if none has."""
        first = at if at is not None and at < self.count else shard_of(task_id, self.count)
        order = [first, *(k for k in range(self.count) if k != first)]
        args = (task_id, attempt, priority, required, exclude)
        for shard in order:
            got = await self.shard(shard).acquire(*args, last=self.count == 1 or at is not None)
            if got["slot"] is not None or got["queued"]:
                return got["slot"], shard
        queued = await self.shard(first).acquire(*args, last=True)
        return queued["slot"], first
