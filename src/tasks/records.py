"""A task document as the API shows it and as D1 stores it: pure functions of the document."""

from typing import Any

from clock import rfc3339_ms
from ports import Statement

ERROR_EXCERPT = 500


def view(doc: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": doc["id"],
        "type": doc["type"],
        "status": doc["status"],
        "payload": doc["payload"],
        "priority": doc["priority"],
        "required_capabilities": doc["required"],
        "timeout_s": doc["timeout_s"],
        "max_attempts": doc["max_attempts"],
        "attempts_made": doc["attempt"],
        "server_id": doc["server_id"],
        "result": doc["result"],
        "error": doc["error"],
        "progress": doc["progress"],
        "created_at": rfc3339_ms(doc["created_ms"]),
        "updated_at": rfc3339_ms(doc["updated_ms"]),
        "attempts": [
            {
                "attempt": a["n"],
                "server_id": a["server_id"],
                "started_at": rfc3339_ms(a["started_ms"]),
                "ended_at": rfc3339_ms(a["ended_ms"]),
                "outcome": a["outcome"],
                "error": a["error"],
            }
            for a in attempts
        ],
    }


def projection(doc: dict[str, Any], attempts: list[dict[str, Any]]) -> list[Statement]:
    """Upserts of the task (newer versions only) and its attempts: replaying them is harmless."""
    error = None if doc["error"] is None else str(doc["error"])[:ERROR_EXCERPT]
    statements = [
        Statement(
            "INSERT INTO tasks (id, type, status, priority, server_id, attempts, max_attempts,"
            " error, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
            " server_id = excluded.server_id, attempts = excluded.attempts,"
            " error = excluded.error, updated_at = excluded.updated_at,"
            " version = excluded.version WHERE excluded.version > tasks.version",
            (
                doc["id"],
                doc["type"],
                doc["status"],
                doc["priority"],
                doc["server_id"],
                doc["attempt"],
                doc["max_attempts"],
                error,
                rfc3339_ms(doc["created_ms"]),
                rfc3339_ms(doc["updated_ms"]),
                doc["version"],
            ),
        )
    ]
    for attempt in attempts:
        statements.append(
            Statement(
                "INSERT INTO task_attempts (task_id, attempt, server_id, started_at, ended_at,"
                " outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id, attempt)"
                " DO UPDATE SET ended_at = excluded.ended_at, outcome = excluded.outcome,"
                " error = excluded.error",
                (
                    doc["id"],
                    attempt["n"],
                    attempt["server_id"],
                    rfc3339_ms(attempt["started_ms"]),
                    rfc3339_ms(attempt["ended_ms"]),
                    attempt["outcome"],
                    attempt["error"],
                ),
            )
        )
    return statements
