"""Recent invocations of a Worker from Workers Observability's telemetry query
(`POST /accounts/{id}/workers/observability/telemetry/query`, view `invocations`): each
invocation's events (its request, console lines, exceptions) grouped by request id.
https://developers.cloudflare.com/api/resources/workers/subresources/observability/subresources/telemetry/
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cfapi.client import CloudflareApi


@dataclass(frozen=True, slots=True)
class LogLine:
    level: str
    message: str
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Invocation:
    request_id: str
    timestamp_ms: int
    outcome: str  # Cloudflare's: ok, exception, exceededCpu, ...
    status_code: int | None
    version_id: str | None
    wall_time_ms: float | None
    logs: list[LogLine] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)


def query_body(script: str, since_ms: int, until_ms: int, limit: int) -> dict[str, Any]:
    return {
        "queryId": "apiary-logs",
        "view": "invocations",
        "limit": limit,
        "timeframe": {"from": since_ms, "to": until_ms},
        "parameters": {
            "datasets": ["cloudflare-workers"],
            "filters": [
                {
                    "key": "$workers.scriptName",
                    "operation": "eq",
                    "type": "string",
                    "value": script,
                }
            ],
        },
    }


def _invocation(request_id: str, events: list[dict[str, Any]]) -> Invocation:
    logs: list[LogLine] = []
    exceptions: list[str] = []
    outcome, status, version, wall, started = "unknown", None, None, None, None
    for event in sorted(events, key=lambda e: int(e.get("timestamp") or 0)):
        meta = event.get("$metadata") or {}
        workers = event.get("$workers") or {}
        timestamp = int(event.get("timestamp") or 0)
        started = timestamp if started is None else min(started, timestamp)
        if workers.get("outcome"):
            outcome = str(workers["outcome"])
            wall = workers.get("wallTimeMs", wall)
            version = (workers.get("scriptVersion") or {}).get("id") or version
        if meta.get("statusCode") is not None:
            status = int(meta["statusCode"])
        if meta.get("type") == "cf-worker-event":
            continue  # the invocation's own record, read above
        if meta.get("error"):
            exceptions.append(str(meta["error"]))
        elif meta.get("message") is not None:
            level = str(meta.get("level") or "log")
            logs.append(LogLine(level, str(meta["message"]), timestamp))
    return Invocation(
        request_id, started or 0, outcome, status, version,
        None if wall is None else float(wall), logs, exceptions,
    )  # fmt: skip


async def recent(
    api: CloudflareApi, script: str, *, since_ms: int, until_ms: int, limit: int
) -> list[Invocation]:
    """The newest `limit` invocations of `script` in the window, newest first."""
    answer = await api.call(
        "POST",
        f"{api.account_path}/workers/observability/telemetry/query",
        json_body=query_body(script, since_ms, until_ms, limit),
    )
    grouped = (answer.result or {}).get("invocations") or {}
    found = [_invocation(str(rid), list(events or [])) for rid, events in grouped.items()]
    return sorted(found, key=lambda i: i.timestamp_ms, reverse=True)[:limit]
