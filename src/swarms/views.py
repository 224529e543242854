"""A swarm, its devices and jobs as the API and the STATE frames show them: pure functions."""

import json
from typing import Any

from clock import rfc3339_ms

FULL_AFTER = 5_000  # versions behind: past this a client gets a full snapshot, not a delta


def swarm_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["id"],
        "name": doc["name"],
        "settings": doc["settings"],
        "created_at": rfc3339_ms(doc["created_ms"]),
        "version": doc["version"],
    }


def device_view(
    row: dict[str, Any], *, status: str, last_seen_ms: int | None, weight: float, in_flight: int
) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "status": status,
        "last_seen": rfc3339_ms(last_seen_ms),
        "capabilities": json.loads(row["capabilities"]) if row["capabilities"] else None,
        "benchmark_score": row["score"],
        "weight": round(weight, 4),
        "quota": row["quota"],
        "reliability": round(row["reliability"], 4),
        "chunks_in_flight": in_flight,
    }


def job_view(row: dict[str, Any]) -> dict[str, Any]:
    finished = row["done"] + row["failed"]
    if finished < row["total"]:
        status = "running"
    else:
        status = "completed" if row["failed"] == 0 else "completed_with_failures"
    return {
        "id": row["id"],
        "name": row["name"],
        "status": status,
        "total_chunks": row["total"],
        "done": row["done"],
        "failed": row["failed"],
        "progress": round(row["done"] / row["total"], 4) if row["total"] else 1.0,
        "requirements": json.loads(row["requirements"]),
        "chunk_timeout_s": row["chunk_timeout_s"],
        "created_at": rfc3339_ms(row["created_ms"]),
        "completed_at": rfc3339_ms(row["completed_ms"]),
    }


def chunk_view(row: dict[str, Any], holder: str | None = None) -> dict[str, Any]:
    """A chunk; `holder` is the device it is in flight on (its row still says pending, and
    counts only the failed attempts)."""
    if holder is not None:
        row = {**row, "status": "assigned", "device_id": holder, "attempts": row["attempts"] + 1}
    return {
        "id": row["id"],
        "status": row["status"],
        "device_id": row["device_id"],
        "attempts": row["attempts"],
        "duration_ms": row["duration_ms"],
        "error": row["error"],
        "result": None if row["result"] is None else json.loads(row["result"]),
    }


def state_frame(
    version: int,
    since: int | None,
    devices: list[dict[str, Any]],
    jobs: list[dict[str, Any]],
) -> dict[str, Any]:
    """STATE data: `devices` and `jobs` are the rows newer than `since` (all rows when full)."""
    return {
        "version": version,
        "full": since is None,
        "since": since,
        "devices": [
            {"id": d["id"], "name": d["name"], "status": d["status"], "quota": d["quota"]}
            for d in devices
        ],
        "jobs": [
            {
                "id": j["id"],
                "name": j["name"],
                "done": j["done"],
                "failed": j["failed"],
                "total": j["total"],
            }
            for j in jobs
        ],
    }


def wants_full(client_version: int | None, version: int) -> bool:
    return client_version is None or client_version <= 0 or version - client_version > FULL_AFTER


def since(socket_version: int | None, broadcast_version: int, version: int) -> int | None:
    """What a broadcast at `version` sends a socket: the delta since the version it has, or
    the full state (None). Every socket joined at a broadcast was sent that broadcast, so a
    socket has the last broadcast's version unless it was sent a newer one itself (joining,
    SYNC): nothing per socket need be written when broadcasting."""
    known = None if socket_version is None else max(socket_version, broadcast_version)
    return None if wants_full(known, version) else known
