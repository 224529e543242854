"""A job run as the API shows it and as D1 stores it: pure functions of its rows."""

from typing import Any

from alerts import slack_body
from clock import rfc3339_ms
from ports import Statement

ERROR_EXCERPT = 500


def attempt_view(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "attempt": a["n"],
        "started_at": rfc3339_ms(a["started_ms"]),
        "duration_ms": a["duration_ms"],
        "http_status": a["http_status"],
        "outcome": a["outcome"],
        "error": a["error"],
    }


def run_view(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": run["id"],
        "job": run["job"],
        "source": run["source"],
        "status": run["status"],
        "scheduled_time": rfc3339_ms(run["scheduled_ms"]),
        "attempts_made": run["attempt"],
        "correlation_id": run["correlation_id"],
        "error": run["error"],
        "created_at": rfc3339_ms(run["created_ms"]),
        "ended_at": rfc3339_ms(run["ended_ms"]),
    }


def projection(run: dict[str, Any], attempts: list[dict[str, Any]]) -> list[Statement]:
    """Upserts of the run (newer versions only) and its attempts: replaying them is harmless."""
    view = run_view(run)
    statements = [
        Statement(
            "INSERT INTO cron_runs (id, job, source, status, scheduled_time, attempts,"
            " correlation_id, error, created_at, ended_at, version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " status = excluded.status, attempts = excluded.attempts, error = excluded.error,"
            " ended_at = excluded.ended_at, version = excluded.version"
            " WHERE excluded.version > cron_runs.version",
            (
                view["id"],
                view["job"],
                view["source"],
                view["status"],
                view["scheduled_time"],
                view["attempts_made"],
                view["correlation_id"],
                view["error"],
                view["created_at"],
                view["ended_at"],
                run["version"],
            ),
        )
    ]
    for a in attempts:
        statements.append(
            Statement(
                "INSERT INTO cron_attempts (run_id, attempt, started_at, duration_ms,"
                " http_status, outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, attempt) DO UPDATE SET duration_ms = excluded.duration_ms,"
                " http_status = excluded.http_status, outcome = excluded.outcome,"
                " error = excluded.error",
                (
                    run["id"],
                    a["n"],
                    rfc3339_ms(a["started_ms"]),
                    a["duration_ms"],
                    a["http_status"],
                    a["outcome"],
                    a["error"],
                ),
            )
        )
    return statements


def alert_message(
    kind: str, job: str, environment: str, run: dict[str, Any] | None, detail: str
) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook body (`text`, plus fields for other receivers)."""
    icon = {"failed": ":x:", "missed": ":warning:", "recovered": ":white_check_mark:"}[kind]
    headline = {
        "failed": f"cron job `{job}` failed",
        "missed": f"cron job `{job}` has not succeeded on schedule",
        "recovered": f"cron job `{job}` recovered",
    }[kind]
    lines = [f"{icon} {headline} ({environment})"]
    if detail:
        lines.append(detail)
    if run is not None:
        lines.append(
            f"run {run['id']}, attempt {run['attempt']}, correlation id {run['correlation_id']}"
        )
    return slack_body(
        "\n".join(lines),
        {
            "kind": kind,
            "job": job,
            "environment": environment,
            "run_id": None if run is None else run["id"],
            "correlation_id": None if run is None else run["correlation_id"],
        },
    )
