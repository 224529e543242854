"""The chunks waiting for a device, in order: a cache, over the chunk rows, of the pending
chunks no connection holds.

A chunk's row says `pending` until it is done or has failed for good; which pending chunks are
in flight is in the sockets' attachments (`swarms.connections`), so handing one out writes no
row. The backlog reads a job's pending rows in index order a page at a time, skipping held
ones, and takes back the chunks a device let go, which go out first (the oldest). It lives in
memory: a new instance starts again from the rows and the attachments.
"""

import bisect
from collections import deque
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

PAGE = 64

type Rows = Callable[[str, int, int], list[dict[str, Any]]]  # job id, from index, limit


@dataclass
class _Queue:
    next_idx: int = 0  # rows from here on are not read yet
    ready: deque[str] = field(default_factory=deque)
    returned: list[int] = field(default_factory=list)  # indexes, sorted
    exhausted: bool = False  # no pending row at or past next_idx


def split(chunk_id: str) -> tuple[str, int]:
    """(job id, index) of a chunk id `{job_id}.{idx}`."""
    job_id, idx = chunk_id.rsplit(".", 1)
    return job_id, int(idx)


class Backlog:
    def __init__(self, pending_rows: Rows) -> None:
        self._rows = pending_rows
        self._jobs: dict[str, _Queue] = {}

    def take(self, job_id: str, n: int, held: Container[str]) -> list[str]:
        """Up to `n` of the job's chunks for devices to hold, oldest first."""
        queue = self._jobs.setdefault(job_id, _Queue())
        taken: list[str] = []
        while queue.returned and len(taken) < n:
            taken.append(f"{job_id}.{queue.returned.pop(0)}")
        while len(taken) < n:
            if not queue.ready:
                if queue.exhausted:
                    break
                rows = self._rows(job_id, queue.next_idx, PAGE)
                queue.exhausted = len(rows) < PAGE
                if rows:
                    queue.next_idx = rows[-1]["idx"] + 1
                queue.ready.extend(r["id"] for r in rows if r["id"] not in held)
                continue
            taken.append(queue.ready.popleft())
        return taken

    def reset(self) -> None:
        """Forget what was read: the next take reads the rows again."""
        self._jobs.clear()

    def give_back(self, chunk_id: str) -> None:
        """A chunk let go (its device went, failed it or missed its deadline) waits again."""
        job_id, idx = split(chunk_id)
        queue = self._jobs.get(job_id)
        if queue is None or idx >= queue.next_idx:
            return  # not read yet: it will be, from its row
        at = bisect.bisect_left(queue.returned, idx)
        if at == len(queue.returned) or queue.returned[at] != idx:
            queue.returned.insert(at, idx)
