"""The work of one swarm event: hand out chunks, take results, take back what is lost.

Decisions come from `swarms.scheduling` (pure); this applies them to the store and sends
JOB_ASSIGN frames (which leave after the event's writes commit). A chunk completes once: only
its current assignee's JOB_COMPLETE counts; a late or repeated one is acknowledged and ignored.
"""

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from clock import rfc3339_ms
from ports import Socket
from swarms.protocol import JobComplete, deliver, frame
from swarms.scheduling import (
    DeviceLoad,
    Requirements,
    Speed,
    assign,
    ewma,
    next_quota,
    next_reliability,
    weights,
)
from swarms.store import SwarmStore

MAX_CHUNK_ATTEMPTS = 5


class Work:
    def __init__(
        self,
        store: SwarmStore,
        doc: dict[str, Any],
        now_ms: int,
        bump: Callable[[dict[str, Any]], int],
        sockets: dict[str, Socket],
    ) -> None:
        self.store = store
        self.doc = doc
        self.now = now_ms
        self.bump = bump
        self.sockets = sockets

    def schedule(self) -> int:
        """Assign pending chunks to online, registered, connected devices; returns how many."""
        if not self.sockets:
            return 0
        rows = self.store.exec(
            "SELECT * FROM devices WHERE status = 'online' AND capabilities IS NOT NULL"
        )
        rows = [r for r in rows if r["id"] in self.sockets]
        if not rows:
            return 0
        weight = weights({r["id"]: Speed(r["score"], r["ms_per_chunk"]) for r in rows})
        in_flight = self.store.in_flight()
        loads = {}
        for row in rows:
            caps = json.loads(row["capabilities"])
            loads[row["id"]] = DeviceLoad(
                id=row["id"],
                weight=weight[row["id"]],
                quota=row["quota"],
                in_flight=in_flight.get(row["id"], 0),
                gpu=bool(caps.get("gpuAvailable")),
                memory_gb=float(caps.get("memoryGB", 0)),
            )
        free = sum(max(0, d.quota - d.in_flight) for d in loads.values())
        assigned = 0
        for job in self.store.pending_jobs():
            if free <= 0:
                break
            req = json.loads(job["requirements"])
            requirements = Requirements(bool(req.get("gpu")), float(req.get("min_memory_gb") or 0))
            chunks = self.store.pending_chunks(job["id"], free)
            for chunk_id, device_id in assign(chunks, list(loads.values()), requirements):
                self._give(job, chunk_id, device_id)
                load = loads[device_id]
                loads[device_id] = replace(load, in_flight=load.in_flight + 1)
                free -= 1
                assigned += 1
        return assigned

    def _give(self, job: dict[str, Any], chunk_id: str, device_id: str) -> None:
        deadline = self.now + int(job["chunk_timeout_s"] * 1000)
        self.store.exec(
            "UPDATE chunks SET status = 'assigned', device_id = ?, deadline_ms = ?,"
            " attempts = attempts + 1, pct = NULL WHERE id = ?",
            device_id,
            deadline,
            chunk_id,
        )
        chunk = self.store.chunk(chunk_id)
        assert chunk is not None
        deliver(
            self.sockets[device_id],
            frame(
                "JOB_ASSIGN",
                {
                    "chunkId": chunk_id,
                    "jobId": job["id"],
                    "payload": json.loads(chunk["payload"]),
                    "deadline": rfc3339_ms(deadline),
                },
            ),
        )

    def complete(self, device_id: str, data: JobComplete) -> bool:
        """Record a chunk's outcome from its assignee; False when it is not theirs (ignored)."""
        chunk = self.store.chunk(data.chunkId)
        if chunk is None or chunk["status"] != "assigned" or chunk["device_id"] != device_id:
            return False
        device = self.store.device(device_id)
        assert device is not None
        succeeded = data.error is None
        duration = data.durationMs
        if duration is None:  # the device did not say: time it from the assignment
            duration = self.now - (chunk["deadline_ms"] - self._timeout_ms(chunk["job_id"]))
        if succeeded:
            self.store.exec(
                "UPDATE chunks SET status = 'done', result = ?, error = NULL, duration_ms = ?,"
                " completed_ms = ?, pct = 100 WHERE id = ?",
                json.dumps(data.result),
                duration,
                self.now,
                chunk["id"],
            )
            self._count(chunk["job_id"], "done")
        else:
            self._release(chunk, data.error or "failed")
        speed = ewma(device["ms_per_chunk"], max(1, duration)) if succeeded else None
        self._judge(device, succeeded, ms_per_chunk=speed or device["ms_per_chunk"])
        return True

    def progress(self, device_id: str, chunk_id: str, pct: float) -> None:
        self.store.exec(
            "UPDATE chunks SET pct = ? WHERE id = ? AND device_id = ? AND status = 'assigned'",
            pct,
            chunk_id,
            device_id,
        )

    def device_gone(self, device_id: str, why: str) -> None:
        """Offline (closed, or silent past the timeout): its chunks go back to the queue."""
        self.store.update_device(device_id, self.bump(self.doc), status="offline")
        back = self.release_held(device_id, why)
        self.store.log(self.now, "info", f"device {device_id} offline: {why}; {back} chunks back")

    def release_held(self, device_id: str, why: str) -> int:
        """Its chunks back to the queue, without counting the attempt against them."""
        held = self.store.exec(
            "SELECT * FROM chunks WHERE status = 'assigned' AND device_id = ?", device_id
        )
        for chunk in held:
            self._release(chunk, f"device {why}", count_attempt=False)
        return len(held)

    def expire_deadlines(self) -> None:
        late = self.store.exec(
            "SELECT * FROM chunks WHERE status = 'assigned' AND deadline_ms <= ?", self.now
        )
        for chunk in late:
            self._release(chunk, "deadline missed")
            device = self.store.device(chunk["device_id"])
            if device is not None:
                self._judge(device, False, ms_per_chunk=device["ms_per_chunk"])

    def _release(self, chunk: dict[str, Any], why: str, *, count_attempt: bool = True) -> None:
        attempts = chunk["attempts"] if count_attempt else chunk["attempts"] - 1
        if attempts >= MAX_CHUNK_ATTEMPTS:
            self.store.exec(
                "UPDATE chunks SET status = 'failed', error = ?, device_id = NULL,"
                " deadline_ms = NULL, completed_ms = ? WHERE id = ?",
                why,
                self.now,
                chunk["id"],
            )
            self._count(chunk["job_id"], "failed")
        else:
            self.store.exec(
                "UPDATE chunks SET status = 'pending', error = ?, device_id = NULL,"
                " deadline_ms = NULL, attempts = ? WHERE id = ?",
                why,
                attempts,
                chunk["id"],
            )

    def _judge(
        self, device: dict[str, Any], succeeded: bool, *, ms_per_chunk: float | None
    ) -> None:
        quota = next_quota(device["quota"], succeeded)
        fields = {
            "ms_per_chunk": ms_per_chunk,
            "reliability": next_reliability(device["reliability"], succeeded),
        }
        if quota != device["quota"]:  # what devices see: bump the version
            self.store.update_device(device["id"], self.bump(self.doc), quota=quota, **fields)
        else:
            self.store.update_device(device["id"], device["version"], **fields)

    def _count(self, job_id: str, column: str) -> None:
        self.store.exec(
            f"UPDATE jobs SET {column} = {column} + 1, version = ? WHERE id = ?",
            self.bump(self.doc),
            job_id,
        )
        self.store.exec(
            "UPDATE jobs SET completed_ms = ? WHERE id = ? AND completed_ms IS NULL"
            " AND done + failed >= total",
            self.now,
            job_id,
        )

    def _timeout_ms(self, job_id: str) -> int:
        job = self.store.job(job_id)
        return int(job["chunk_timeout_s"] * 1000) if job else 0
