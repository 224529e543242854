"""Durable commits without an fsync on the event loop: SQLite's WAL synced in a thread.

A database opened with `synchronous=NORMAL` in WAL mode commits by appending to its `-wal` file,
without syncing it: the commit survives SIGKILL (the bytes are in the OS) but not a power loss.
`durable()` fsyncs that file in a worker thread, which makes every commit appended before it
durable, as `synchronous=FULL` would have at each COMMIT. So whatever waits for `durable()` (an
object's output gate, a D1 call) has the same guarantee, while the event loop serves every other
object and request meanwhile, as each Durable Object and D1 does on Cloudflare. Commits that
arrive while an fsync runs share the next one (group commit).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path


def fsync_file(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return  # no WAL: the last connection checkpointed it into the database, synced
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WalSync:
    def __init__(self, database: Path, *, fsync: Callable[[Path], None] = fsync_file) -> None:
        self.wal = Path(f"{database}-wal")
        self.fsync = fsync
        self._committed = 0  # commits that wrote something, counted by `committed()`
        self._synced = 0  # of those, how many are known to be on disk
        self._running: asyncio.Future[None] | None = None

    def committed(self) -> None:
        """Call after each COMMIT that wrote something."""
        self._committed += 1

    async def durable(self) -> None:
        """Returns once every commit counted so far is on disk."""
        target = self._committed
        while self._synced < target:
            if self._running is None:
                self._running = asyncio.ensure_future(self._sync(self._committed))
            await asyncio.shield(self._running)  # a waiter that leaves does not stop the sync

    async def _sync(self, upto: int) -> None:
        try:
            await asyncio.to_thread(self.fsync, self.wal)
            self._synced = max(self._synced, upto)
        finally:
            self._running = None
