"""The decisions of a job run, as pure functions: admit, judge an attempt, alert, watch."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from clock import from_ms
from cron.jobs import Concurrency
from cron.schedule import CronExpression
from tasks.retry import should_retry


class RunStatus(StrEnum):
    QUEUED = "queued"  # waiting for its first attempt
    RUNNING = "running"  # an attempt is in flight
    RETRYING = "retrying"  # waiting out a backoff
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # replaced by a newer run
    SKIPPED = "skipped"  # not started: an earlier run was active and the policy forbids overlap


ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.RETRYING})


@dataclass(frozen=True, slots=True)
class Admission:
    start: bool
    cancel: tuple[str, ...] = ()


def admit(policy: Concurrency, active: list[str]) -> Admission:
    """Whether a new run starts, given the ids of the job's active runs."""
    if not active or policy == Concurrency.ALLOW:
        return Admission(start=True)
    if policy == Concurrency.REPLACE:
        return Admission(start=True, cancel=tuple(active))
    return Admission(start=False)


# Without a request in progress Cloudflare keeps a Durable Object at least 70 s while work is
# pending (https://developers.cloudflare.com/durable-objects/api/state/), an alarm handler up to
# 15 minutes (https://developers.cloudflare.com/agents/api-reference/durable-execution/).
AT_HANDOVER_MAX_TIMEOUT_S = 60


def attempt_at_handover(timeout_s: float) -> bool:
    """Whether a run's first attempt is made as the run is handed over (work after the
    hand-over's answer, no alarm in between) or by the alarm, for a call that may outlast the
    time the object is kept without a request."""
    return timeout_s <= AT_HANDOVER_MAX_TIMEOUT_S


class Verdict(StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    FAILED = "failed"  # final: no attempts left, or an answer that retrying cannot change


def judge(
    status: int | None, attempt: int, max_attempts: int, *, retryable: bool = True
) -> Verdict:
    """`status` None means no HTTP answer (network error or timeout); `retryable` False when no
    attempt could ever get one (the egress policy refused the address)."""
    if status is not None and 200 <= status < 300:
        return Verdict.SUCCEEDED
    if retryable and should_retry(status) and attempt < max_attempts:
        return Verdict.RETRY
    return Verdict.FAILED


def problem(status: int | None, error: str) -> str:
    """A one-line description of a failed attempt, for the run, the log and the alert."""
    if status == 401:
        return "auth: the backend refused CRON_TOKEN (HTTP 401)"
    if status is None:
        return error
    return f"HTTP {status}: {error}" if error else f"HTTP {status}"


class Alert(StrEnum):
    FAILED = "failed"
    MISSED = "missed"
    RECOVERED = "recovered"


def alert_for(outcome: Alert, failing: bool) -> tuple[Alert | None, bool]:
    """The alert to send for `outcome`, if any, and whether the job is failing after it.

    One alert opens a failure streak (a final failure or a missed period), one closes it (the
    next success); nothing in between, so a job failing every five minutes alerts once.
    """
    if outcome == Alert.RECOVERED:
        return (Alert.RECOVERED if failing else None), False
    return (None if failing else outcome), True


def missed_deadline_ms(schedule: CronExpression, last_ok_ms: int, grace_s: int) -> int:
    """When silence becomes a missed run: the next fire after the last success, plus grace."""
    fire: datetime = schedule.next_after(from_ms(last_ok_ms))
    return int(fire.timestamp() * 1000) + grace_s * 1000
