"""WalSync: a commit is durable only after an fsync that began after it; commits share fsyncs."""

import asyncio
import threading
from pathlib import Path

import pytest

from apiary_local.wal_sync import WalSync

pytestmark = pytest.mark.anyio


class HeldFsync:
    """An fsync (run in a worker thread) that waits until the test lets it finish."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)

    def __call__(self, path: Path) -> None:
        self.calls += 1
        self.started.release()
        self.release.acquire()


async def started(fsync: HeldFsync) -> None:
    assert await asyncio.to_thread(fsync.started.acquire, timeout=10)


async def test_a_commit_made_during_an_fsync_waits_for_the_next(tmp_path: Path) -> None:
    fsync = HeldFsync()
    sync = WalSync(tmp_path / "db.sqlite", fsync=fsync)
    sync.committed()
    first = asyncio.ensure_future(sync.durable())
    await started(fsync)
    sync.committed()  # appended while the first fsync runs: it may not be covered
    second = asyncio.ensure_future(sync.durable())
    fsync.release.release()
    await first
    await started(fsync)
    assert not second.done()
    fsync.release.release()
    await second
    assert fsync.calls == 2


async def test_commits_waiting_together_share_one_fsync(tmp_path: Path) -> None:
    fsync = HeldFsync()
    sync = WalSync(tmp_path / "db.sqlite", fsync=fsync)
    for _ in range(10):
        sync.committed()
    waiters = [asyncio.ensure_future(sync.durable()) for _ in range(10)]
    await started(fsync)
    fsync.release.release()
    await asyncio.gather(*waiters)
    await sync.durable()  # nothing new: no fsync
    assert fsync.calls == 1


async def test_the_wal_is_synced_on_disk(tmp_path: Path) -> None:
    sync = WalSync(tmp_path / "db.sqlite")
    assert sync.wal == tmp_path / "db.sqlite-wal"
    sync.committed()
    await sync.durable()  # no WAL file yet: nothing to sync, and no error
    sync.wal.write_bytes(b"frames")
    sync.committed()
    await sync.durable()
