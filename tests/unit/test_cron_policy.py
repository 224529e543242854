"""The decisions of a job run: admission, judging attempts, alert streaks, the missed watch."""

from datetime import UTC, datetime

import pytest

from cron.jobs import Concurrency
from cron.policy import (
    Admission,
    Alert,
    Verdict,
    admit,
    alert_for,
    attempt_at_handover,
    judge,
    missed_deadline_ms,
    problem,
)
from cron.schedule import CronExpression


@pytest.mark.parametrize(
    ("policy", "active", "expected"),
    [
        (Concurrency.FORBID, [], Admission(start=True)),
        (Concurrency.FORBID, ["a"], Admission(start=False)),
        (Concurrency.REPLACE, [], Admission(start=True)),
        (Concurrency.REPLACE, ["a", "b"], Admission(start=True, cancel=("a", "b"))),
        (Concurrency.ALLOW, [], Admission(start=True)),
        (Concurrency.ALLOW, ["a"], Admission(start=True)),
    ],
)
def test_admit(policy: Concurrency, active: list[str], expected: Admission) -> None:
    assert admit(policy, active) == expected


@pytest.mark.parametrize(
    ("timeout_s", "at_handover"), [(1, True), (30, True), (60, True), (60.5, False), (300, False)]
)
def test_a_first_attempt_that_may_outlive_the_object_goes_to_the_alarm(
    timeout_s: float, at_handover: bool
) -> None:
    assert attempt_at_handover(timeout_s) is at_handover


@pytest.mark.parametrize(
    ("status", "attempt", "max_attempts", "verdict"),
    [
        (200, 1, 3, Verdict.SUCCEEDED),
        (204, 3, 3, Verdict.SUCCEEDED),
        (500, 1, 3, Verdict.RETRY),
        (503, 2, 3, Verdict.RETRY),
        (503, 3, 3, Verdict.FAILED),
        (None, 1, 3, Verdict.RETRY),  # network error or timeout
        (None, 3, 3, Verdict.FAILED),
        (408, 1, 3, Verdict.RETRY),
        (429, 1, 3, Verdict.RETRY),
        (401, 1, 3, Verdict.FAILED),  # an auth problem: retrying changes nothing
        (404, 1, 3, Verdict.FAILED),
        (422, 1, 3, Verdict.FAILED),
        (302, 1, 3, Verdict.FAILED),
    ],
)
def test_judge(status: int | None, attempt: int, max_attempts: int, verdict: Verdict) -> None:
    assert judge(status, attempt, max_attempts) == verdict


def test_problem_names_auth_failures() -> None:
    assert problem(401, "nope").startswith("auth:")
    assert problem(500, "boom") == "HTTP 500: boom"
    assert problem(None, "timeout: read timed out") == "timeout: read timed out"


@pytest.mark.parametrize(
    ("events", "alerts"),
    [
        # One alert opens a streak, one closes it; nothing in between.
        ([Alert.FAILED, Alert.FAILED, Alert.FAILED], [Alert.FAILED, None, None]),
        ([Alert.FAILED, Alert.RECOVERED, Alert.RECOVERED], [Alert.FAILED, Alert.RECOVERED, None]),
        ([Alert.MISSED, Alert.FAILED, Alert.RECOVERED], [Alert.MISSED, None, Alert.RECOVERED]),
        ([Alert.RECOVERED, Alert.FAILED], [None, Alert.FAILED]),
    ],
)
def test_one_alert_per_failure_streak(events: list[Alert], alerts: list[Alert | None]) -> None:
    failing = False
    sent = []
    for outcome in events:
        alert, failing = alert_for(outcome, failing)
        sent.append(alert)
    assert sent == alerts


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("cron", "last_ok", "grace_s", "deadline"),
    [
        ("*/5 * * * *", "2026-11-25T10:00:03", 600, "2026-11-25T10:15:00"),
        ("6 2 * * *", "2026-11-25T02:07:00", 3600, "2026-11-26T03:06:00"),
        ("33 23 * * *", "2026-12-31T23:40:00", 0, "2027-01-01T23:33:00"),
    ],
)
def test_missed_deadline(cron: str, last_ok: str, grace_s: int, deadline: str) -> None:
    assert missed_deadline_ms(CronExpression.parse(cron), ms(last_ok), grace_s) == ms(deadline)
