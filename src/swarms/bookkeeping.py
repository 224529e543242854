"""What chunk outcomes change besides the chunk, kept in memory and written in batches.

A chunk's result is written by the event that brings it, always. What it changes besides is
kept here and written later, so a busy swarm writes about one row per chunk:

- a job's done and failed counts: written with the next broadcast, which is when anyone is
  shown them. If the instance goes first (a crash), the swarm document says counts were
  pending (`uncounted`) and the next instance counts them again from the chunk rows.
- a device's speed (ms per chunk), reliability and quota: written at most every
  `DEVICE_FLUSH_MS`, at once when nothing is in flight, or with any other write of the
  device's row. A crash loses at most those few seconds of samples; the estimates recover from
  the next chunks, and nothing a device or operator was told depends on them.

Reads go through `overlay_*`, so scheduling and the API always see the latest values.
"""

from typing import Any

DEVICE_FLUSH_MS = 5_000
DEVICE_FIELDS = ("ms_per_chunk", "reliability", "quota")

type Row = dict[str, Any]


class Bookkeeping:
    def __init__(self) -> None:
        self.devices: dict[str, Row] = {}  # device id -> fields not written yet
        self.jobs: dict[str, dict[str, int]] = {}  # job id -> {"done": n, "failed": n} to add
        self.oldest_ms: int | None = None  # when the oldest unwritten device field came

    # --- devices ---

    def note_device(self, device_id: str, now_ms: int, **fields: Any) -> None:
        self.devices.setdefault(device_id, {}).update(fields)
        if self.oldest_ms is None:
            self.oldest_ms = now_ms

    def overlay_device(self, row: Row) -> Row:
        pending = self.devices.get(row["id"])
        return {**row, **pending} if pending else row

    def take_device(self, device_id: str) -> Row:
        """The device's unwritten fields, now to be written with its row."""
        fields = self.devices.pop(device_id, {})
        if not self.devices:
            self.oldest_ms = None
        return fields

    def devices_due(self, now_ms: int, in_flight: bool) -> bool:
        if self.oldest_ms is None:
            return False
        return not in_flight or now_ms - self.oldest_ms >= DEVICE_FLUSH_MS

    def devices_due_at(self) -> int | None:
        return None if self.oldest_ms is None else self.oldest_ms + DEVICE_FLUSH_MS

    # --- jobs ---

    def count(self, job_id: str, column: str) -> None:
        counts = self.jobs.setdefault(job_id, {"done": 0, "failed": 0})
        counts[column] += 1

    def overlay_job(self, row: Row) -> Row:
        pending = self.jobs.get(row["id"])
        if not pending:
            return row
        return {**row, "done": row["done"] + pending["done"],
                "failed": row["failed"] + pending["failed"]}  # fmt: skip

    def take_jobs(self) -> dict[str, dict[str, int]]:
        jobs, self.jobs = self.jobs, {}
        return jobs
