"""`POST /accounts/{id}/workers/observability/telemetry/query`: Workers Observability's query,
answered from the invocation log (what workerd's Workers printed and threw, per invocation).

The `events` view lists events newest first: per invocation, its own event (`$metadata.type`
`cf-worker-event`, with the outcome, status and timing in `$workers`), one per console line and
one per exception. The `invocations` view groups the same events by request id (the `cf-ray`).
Filters are leaves on the invocation's fields (`$workers.scriptName`, `$metadata.service`,
`$workers.outcome`, `$workers.dispatchNamespace`, `$metadata.statusCode`...), combined with
`and`/`or`; any other view, operation or group is a 400 saying so, never a partial answer.
The CPU time reported is wall time (workerd gives no CPU time per invocation).
https://developers.cloudflare.com/api/resources/workers/subresources/observability/subresources/telemetry/
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from apiary_local.account.context import AccountContext, api, json_body
from apiary_local.account.envelope import VALIDATION, ApiError, success
from apiary_local.account.invocations import EXCEEDED, SUCCESS, InvocationRow

DATASET = "cloudflare-workers"
MAX_LIMIT = 2000
OUTCOMES = {SUCCESS: "ok", EXCEEDED: "exceededCpu"}  # anything else: "exception"
_OPERATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, v: a == v,
    "=": lambda a, v: a == v,
    "neq": lambda a, v: a != v,
    "!=": lambda a, v: a != v,
    "in": lambda a, v: a in (v if isinstance(v, list) else str(v).split(",")),
    "not_in": lambda a, v: a not in (v if isinstance(v, list) else str(v).split(",")),
    "includes": lambda a, v: isinstance(a, str) and str(v) in a,
    "not_includes": lambda a, v: not (isinstance(a, str) and str(v) in a),
    "starts_with": lambda a, v: isinstance(a, str) and a.startswith(str(v)),
    "exists": lambda a, v: a is not None,
    "is_null": lambda a, v: a is None,
}


def _invalid(message: str) -> ApiError:
    return ApiError(400, VALIDATION, message)


def _events(row: InvocationRow) -> list[dict[str, Any]]:
    outcome = OUTCOMES.get(row.status, "exception")
    workers = {"requestId": row.ray, "scriptName": row.script, "eventType": "fetch"}
    error = None
    if row.exception:
        error = f"{row.exception.get('name', 'Error')}: {row.exception.get('message', '')}"
    invocation: dict[str, Any] = {
        "$metadata": {
            "id": f"{row.ray}-0", "requestId": row.ray, "type": "cf-worker-event",
            "service": row.script, "statusCode": row.http_status,
            "level": "info" if outcome == "ok" else "error", "message": row.status,
            "startTime": row.started_ms, "endTime": round(row.started_ms + row.duration_ms),
            "duration": round(row.duration_ms),
            **({"error": error} if error else {}),
        },
        "$workers": {
            **workers, "outcome": outcome, "wallTimeMs": round(row.duration_ms, 3),
            "cpuTimeMs": round(row.duration_ms, 3), "executionModel": "stateless",
            "scriptVersion": {"id": row.version_id},
            **({"dispatchNamespace": row.namespace} if row.namespace else {}),
        },
        "dataset": DATASET,
        "source": {"outcome": outcome},
        "timestamp": row.started_ms,
    }  # fmt: skip
    found = [invocation]
    for index, line in enumerate(row.logs, start=1):
        parts = line.get("message") or []
        text = " ".join(str(p) for p in parts) if isinstance(parts, list) else str(parts)
        found.append({
            "$metadata": {"id": f"{row.ray}-{index}", "requestId": row.ray, "type": "cf-worker",
                          "service": row.script, "level": str(line.get("level") or "log"),
                          "message": text},
            "$workers": workers, "dataset": DATASET, "source": {"message": text},
            "timestamp": int(line.get("timestamp") or row.started_ms),
        })  # fmt: skip
    if error:
        found.append({
            "$metadata": {"id": f"{row.ray}-x", "requestId": row.ray, "type": "cf-worker",
                          "service": row.script, "level": "error", "error": error,
                          "message": error},
            "$workers": workers, "dataset": DATASET, "source": {"exception": row.exception},
            "timestamp": round(row.started_ms + row.duration_ms),
        })  # fmt: skip
    return found


def _field(event: dict[str, Any], key: str) -> Any:
    value: Any = event
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matcher(parameters: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    filters = parameters.get("filters") or []
    combination = str(parameters.get("filterCombination") or "and").lower()
    if combination not in ("and", "or") or not isinstance(filters, list):
        raise _invalid("filterCombination is and or or; filters is a list")
    leaves = []
    for leaf in filters:
        if not isinstance(leaf, dict) or leaf.get("kind") == "group" or "key" not in leaf:
            raise _invalid("only filter leaves {key, operation, type, value} are served locally")
        operation = _OPERATIONS.get(str(leaf.get("operation")).lower())
        if operation is None:
            raise _invalid(f"operation {leaf.get('operation')!r} is not served locally")
        leaves.append((str(leaf["key"]), operation, leaf.get("value")))

    def matches(event: dict[str, Any]) -> bool:
        results = (op(_field(event, key), value) for key, op, value in leaves)
        return all(results) if combination == "and" else any(results) if leaves else True

    return matches


def _run(ctx: AccountContext, body: dict[str, Any], started: float) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "id": secrets.token_hex(8), "accountId": ctx.account_id, "dry": bool(body.get("dry")),
        "granularity": 0, "status": "COMPLETED", "userId": "local", "created": now,
        "updated": now, "timeframe": body["timeframe"],
        "query": {"id": str(body["queryId"]), "adhoc": True, "created": now,
                  "createdBy": "local", "name": str(body["queryId"]),
                  "parameters": body.get("parameters") or {}, "updated": now,
                  "updatedBy": "local"},
        "statistics": {"bytes_read": 0, "elapsed": round(time.perf_counter() - started, 6),
                       "rows_read": 0},
    }  # fmt: skip


def routes(ctx: AccountContext, prefix: str) -> list[Route]:
    @api
    async def query(request: Request) -> Response:
        started = time.perf_counter()
        body = await json_body(request)
        frame = body.get("timeframe")
        if not isinstance(body.get("queryId"), str) or not isinstance(frame, dict):
            raise _invalid("queryId and timeframe {from, to} are required")
        since, until = frame.get("from"), frame.get("to")
        if not isinstance(since, int | float) or not isinstance(until, int | float):
            raise _invalid("timeframe.from and timeframe.to are epoch milliseconds")
        view = body.get("view", "events")
        if view not in ("events", "invocations"):
            raise _invalid(f"view {view!r} is not served locally (events, invocations)")
        limit = body.get("limit", 50)
        if type(limit) not in (int, float) or not 0 < limit <= MAX_LIMIT:
            raise _invalid(f"limit is from 1 to {MAX_LIMIT}")
        matches = _matcher(body.get("parameters") or {})
        await ctx.service.runner.collect()  # console lines come with the Workers' reports
        rows = ctx.invocations.select(since_ms=int(since), until_ms=int(until))
        chosen = [events for events in map(_events, reversed(rows)) if matches(events[0])]
        run = _run(ctx, body, started)
        answer: dict[str, Any] = {"run": run, "statistics": run["statistics"]}
        if view == "invocations":
            answer["invocations"] = {events[0]["$metadata"]["requestId"]: events
                                     for events in chosen[: int(limit)]}  # fmt: skip
        else:
            flat = sorted((e for events in chosen for e in events),
                          key=lambda e: e["timestamp"], reverse=True)[: int(limit)]  # fmt: skip
            answer["events"] = {"events": flat, "count": len(flat), "fields": [], "series": []}
        return success(answer)

    return [Route(f"{prefix}/telemetry/query", query, methods=["POST"])]
