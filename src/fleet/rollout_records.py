"""A rollout's document as the API shows it and as D1 records it (pure)."""

from __future__ import annotations

import json
from typing import Any

from clock import rfc3339_ms
from durable.document import Doc
from fleet.rollout import split
from ports import Statement


def view(doc: Doc) -> dict[str, Any]:
    policy = doc["policy"]
    step = doc["step"]
    due = None
    if doc["phase"] == "observing" and doc["step_started_ms"] is not None:
        due = doc["step_started_ms"] + policy["step_interval_ms"] * (doc["holds"] + 1)
    return {
        "id": doc["id"],
        "worker": doc["worker"],
        "status": doc["status"],
        "phase": doc["phase"],
        "new_version": doc["new_version"],
        "stable_version": doc["stable_version"],
        "steps": policy["steps"],
        "step": step,
        "percentage": policy["steps"][step],
        "step_interval_s": policy["step_interval_ms"] / 1000,
        "max_error_rate": policy["max_error_rate"],
        "min_requests": policy["min_requests"],
        "step_started_at": rfc3339_ms(doc["step_started_ms"]),
        "next_decision_at": rfc3339_ms(due),
        "holds": doc["holds"],
        "reason": doc["reason"],
        "actor": doc["actor"],
        "created_at": rfc3339_ms(doc["created_ms"]),
        "updated_at": rfc3339_ms(doc["updated_ms"]),
        "ended_at": rfc3339_ms(doc["ended_ms"]),
        "history": [
            {
                "at": rfc3339_ms(h["at_ms"]),
                "due_at": rfc3339_ms(h.get("due_ms")),
                **{k: v for k, v in h.items() if k not in ("at_ms", "due_ms")},
            }
            for h in doc["history"]
        ],
    }


def projection(doc: Doc, now: str | None) -> list[Statement]:
    """`fleet_rollouts` and the inventory's rollout and deployment columns, at `now`."""
    v = view(doc)
    if doc["status"] in ("rolled_back", "aborted"):
        deployment = [{"version_id": doc["stable_version"], "percentage": 100}]
    elif doc["phase"] == "deploying" and doc["step"] == 0:
        deployment = None  # nothing of the rollout deployed yet
    else:
        at = doc["policy"]["steps"][doc["step"]]
        deployment = split(doc["new_version"], doc["stable_version"], at)
    statements = [
        Statement(
            "INSERT INTO fleet_rollouts (id, worker, status, new_version, stable_version,"
            " steps, step, percentage, reason, actor, created_at, updated_at, ended_at,"
            " version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id)"
            " DO UPDATE SET status = excluded.status, step = excluded.step, percentage ="
            " excluded.percentage, reason = excluded.reason, updated_at ="
            " excluded.updated_at, ended_at = excluded.ended_at, version = excluded.version"
            " WHERE excluded.version > fleet_rollouts.version",
            (v["id"], v["worker"], v["status"], v["new_version"], v["stable_version"],
             json.dumps(v["steps"]), v["step"], v["percentage"], v["reason"], v["actor"],
             v["created_at"], v["updated_at"], v["ended_at"], doc["version"]),
        ),
        Statement(
            "UPDATE workers SET rollout_id = ?, rollout_status = ?, updated_at = ?"
            " WHERE name = ?",
            (doc["id"], doc["status"], now, doc["worker"]),
        ),
    ]  # fmt: skip
    if deployment is not None:
        promoted = doc["status"] == "succeeded"
        statements.append(
            Statement(
                "UPDATE workers SET deployment = ?, last_deployed_at = ?"
                + (", last_version_id = ?" if promoted else "")
                + " WHERE name = ?",
                (json.dumps(deployment), now,
                 *((doc["new_version"],) if promoted else ()), doc["worker"]),
            )
        )  # fmt: skip
    return statements
