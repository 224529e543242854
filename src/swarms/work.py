"""The work of one swarm event: hand out chunks, take results, take back what is lost.

Decisions come from `swarms.scheduling` (pure); this applies them and sends JOB_ASSIGN frames
(which leave after the event's writes commit). A chunk in flight is held by its device's
connection (`swarms.connections`), so handing one out writes no row, and neither does taking
chunks back from a device that went; the chunk waits in the backlog again (`swarms.backlog`).
A chunk's row is written when it is done and when an attempt fails (at most 5). A chunk
completes once: only its holder's JOB_COMPLETE counts; a late or repeated one is acknowledged
and ignored. Job counts and device statistics are batched (`swarms.bookkeeping`).
"""

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from clock import rfc3339_ms
from swarms.backlog import Backlog
from swarms.connections import Connections
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
        connections: Connections,
        backlog: Backlog,
    ) -> None:
        self.store = store
        self.doc = doc
        self.now = now_ms
        self.bump = bump
        self.connections = connections
        self.backlog = backlog

    def schedule(self) -> int:
        """Hand pending chunks to online, registered, connected devices; returns how many."""
        sockets = self.connections.joined
        if not sockets:
            return 0
        rows = self.store.devices("status = 'online' AND capabilities IS NOT NULL")
        rows = [r for r in rows if r["id"] in sockets]
        if not rows:
            return 0
        weight = weights({r["id"]: Speed(r["score"], r["ms_per_chunk"]) for r in rows})
        holders = self.connections.holders()
        in_flight = Counter(holders.values())
        loads = {}
        for row in rows:
            caps = json.loads(row["capabilities"])
            loads[row["id"]] = DeviceLoad(
                id=row["id"],
                weight=weight[row["id"]],
                quota=row["quota"],
                in_flight=in_flight[row["id"]],
                gpu=bool(caps.get("gpuAvailable")),
                memory_gb=float(caps.get("memoryGB", 0)),
            )
        assigned = 0
        for job in self.store.jobs("completed_ms IS NULL"):
            req = json.loads(job["requirements"])
            requirements = Requirements(bool(req.get("gpu")), float(req.get("min_memory_gb") or 0))
            eligible = [d for d in loads.values() if d.meets(requirements)]
            free = sum(max(0, d.quota - d.in_flight) for d in eligible)
            if free <= 0:
                continue
            chunks = self.backlog.take(job["id"], free, holders)
            pairs = assign(chunks, eligible, requirements)
            for chunk_id, device_id in pairs:
                self._give(job, chunk_id, device_id)
                load = loads[device_id]
                loads[device_id] = replace(load, in_flight=load.in_flight + 1)
                assigned += 1
            for chunk_id in chunks[len(pairs) :]:
                self.backlog.give_back(chunk_id)
        return assigned

    def _give(self, job: dict[str, Any], chunk_id: str, device_id: str) -> None:
        deadline = self.now + int(job["chunk_timeout_s"] * 1000)
        chunk = self.store.chunk(chunk_id)
        assert chunk is not None
        self.connections.hold(device_id, chunk_id, deadline)
        deliver(
            self.connections.joined[device_id],
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
        """Record a chunk's outcome from its holder; False when it is not theirs (ignored)."""
        deadline = self.connections.held(device_id).get(data.chunkId)
        chunk = None if deadline is None else self.store.chunk(data.chunkId)
        if deadline is None or chunk is None:
            return False
        self.connections.let_go(device_id, data.chunkId)
        if chunk["status"] != "pending":  # handed out twice and finished already: the first
            return True  # outcome stands, and is counted once
        device = self.store.device(device_id)
        assert device is not None
        succeeded = data.error is None
        duration = data.durationMs
        if duration is None:  # the device did not say: time it from the hand-out
            duration = self.now - (deadline - self._timeout_ms(chunk["job_id"]))
        if succeeded:
            self.store.update_chunk(
                chunk["id"],
                status="done",
                device_id=device_id,
                attempts=chunk["attempts"] + 1,  # the failed ones and this one
                result=json.dumps(data.result),
                error=None,
                duration_ms=duration,
                completed_ms=self.now,
            )
            self._count(chunk["job_id"], "done")
        else:
            self._fail(chunk, data.error or "failed")
        speed = ewma(device["ms_per_chunk"], max(1, duration)) if succeeded else None
        self._judge(device, succeeded, ms_per_chunk=speed or device["ms_per_chunk"])
        return True

    def device_gone(self, device_id: str, why: str, held: list[str] | None = None) -> None:
        """Offline (closed, or silent past the timeout): what it held waits for others. `held`
        is what a closed socket held (it is no longer among the connections). Once: a device
        already offline gave its chunks back then (a stale `held` would hand them out twice)."""
        device = self.store.device(device_id)
        if device is not None and device["status"] == "offline":
            return
        self.store.update_device(device_id, self.bump(self.doc), status="offline")
        back = self.release_held(device_id, held)
        self.store.log(self.now, "info", f"device {device_id} offline: {why}; {back} chunks back")

    def release_held(self, device_id: str, held: list[str] | None = None) -> int:
        """Its chunks back to the backlog, without counting an attempt against them."""
        chunks = self.connections.forget(device_id) if held is None else held
        for chunk_id in chunks:
            self.backlog.give_back(chunk_id)
        return len(chunks)

    def expire_deadlines(self) -> None:
        for device_id in list(self.connections.joined):
            for chunk_id, deadline in self.connections.held(device_id).items():
                if deadline > self.now:
                    continue
                self.connections.let_go(device_id, chunk_id)
                chunk = self.store.chunk(chunk_id)
                if chunk is not None:
                    self._fail(chunk, "deadline missed")
                device = self.store.device(device_id)
                if device is not None:
                    self._judge(device, False, ms_per_chunk=device["ms_per_chunk"])

    def _fail(self, chunk: dict[str, Any], why: str) -> None:
        """A failed attempt: the chunk waits for another, or after the last one has failed."""
        attempts = chunk["attempts"] + 1
        if attempts >= MAX_CHUNK_ATTEMPTS:
            self.store.update_chunk(
                chunk["id"], status="failed", error=why, attempts=attempts, completed_ms=self.now
            )
            self._count(chunk["job_id"], "failed")
        else:
            self.store.update_chunk(chunk["id"], error=why, attempts=attempts)
            self.backlog.give_back(chunk["id"])

    def _judge(
        self, device: dict[str, Any], succeeded: bool, *, ms_per_chunk: float | None
    ) -> None:
        self.store.note_outcome(
            device,
            self.now,
            quota=next_quota(device["quota"], succeeded),
            ms_per_chunk=ms_per_chunk,
            reliability=next_reliability(device["reliability"], succeeded),
        )

    def _count(self, job_id: str, column: str) -> None:
        self.store.count(job_id, column)
        self.doc["uncounted"] = True  # until the next broadcast writes the counts
        self.bump(self.doc)  # devices see job counts: a broadcast is due

    def _timeout_ms(self, job_id: str) -> int:
        job = self.store.job(job_id)
        return int(job["chunk_timeout_s"] * 1000) if job else 0
