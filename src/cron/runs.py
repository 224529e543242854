"""A job's runs as pure decisions: `(rows, event, now) -> Change`.

The JobRunner reads its rows (the job's state, the runs), asks one of these what follows from
an event (a run handed over, an attempt started, answered or cut off, the missed-run watch
firing) and writes the `Change` in one transaction, with its D1 projections and alerts in the
outbox. Nothing here does I/O, so every rule is a table test, and an attempt's answer is judged
against the run as it is when the answer arrives (a `replace` may have cancelled it meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from clock import rfc3339_ms
from cron.jobs import Job
from cron.policy import ACTIVE, Alert, RunStatus, Verdict, admit, alert_for, judge, problem
from cron.policy import missed_deadline_ms as deadline_after
from cron.schedule import CronExpression
from tasks.retry import Backoff, next_delay_ms

type Run = dict[str, Any]
type State = dict[str, Any]  # {job, failing, last_ok_ms, watch_ms}
INTERRUPTED_AFTER_MS = 5_000  # past an attempt's timeout, it is taken as lost
LOST = "interrupted: no outcome recorded (the runtime restarted mid-attempt?)"


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str  # failed | missed | recovered
    detail: str
    run: Run | None


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    run_id: str
    n: int
    duration_ms: int | None
    http_status: int | None
    outcome: str
    error: str | None


@dataclass(frozen=True, slots=True)
class AttemptStart:
    run_id: str
    n: int
    started_ms: int


@dataclass(frozen=True, slots=True)
class Change:
    runs: tuple[Run, ...] = ()  # each written as a new version, and projected
    state: State | None = None  # written when not None
    notices: tuple[Notice, ...] = ()
    attempt: AttemptEnd | None = None
    projections: tuple[str, ...] = ()  # runs to project again though unchanged here
    started: AttemptStart | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's answer: an HTTP status, or why there was none."""

    status: int | None
    retry_after: str | None = None
    error: str = ""  # the reason there was no answer
    retryable: bool = True  # False when no attempt could ever be answered (egress refusal)


def first_state(job: Job) -> State:
    return {"job": job.name, "failing": 0, "last_ok_ms": None, "watch_ms": None}


def _alert(state: State, job: Job, outcome: Alert, run: Run | None, detail: str) -> Change:
    kind, failing = alert_for(outcome, bool(state["failing"]))
    state = {**state, "failing": int(failing)}
    notices: tuple[Notice, ...] = ()
    if kind is not None and job.alert_on_failure:
        notices = (Notice(kind.value, detail, run),)
    return Change(state=state, notices=notices)


def admitted(
    job: Job,
    *,
    run_id: str,
    source: str,
    scheduled_ms: int,
    now: int,
    active: list[Run],
    state: State | None,
    schedule: CronExpression | None,
) -> Change:
    """A run handed over: queued or skipped by the concurrency policy; a `replace` cancels the
    active runs. The job's first run arms the missed-run watch."""
    admission = admit(job.concurrency, [r["id"] for r in active])
    run = {
        "id": run_id,
        "job": job.name,
        "source": source,
        "scheduled_ms": scheduled_ms,
        "status": RunStatus.QUEUED.value if admission.start else RunStatus.SKIPPED.value,
        "attempt": 0,
        "next_at_ms": now if admission.start else None,
        "correlation_id": run_id,
        "created_ms": now,
        "ended_ms": None if admission.start else now,
        "error": None if admission.start else f"run {active[0]['id']} was still active",
        "version": 0,
    }
    cancelled = tuple(
        {**old, "status": RunStatus.CANCELLED.value, "next_at_ms": None, "ended_ms": now,
         "error": f"replaced by run {run_id}"}
        for old in active
        if old["id"] in admission.cancel
    )  # fmt: skip
    known = state or first_state(job)
    watch = known["watch_ms"] is None and schedule is not None and not known["failing"]
    if watch and schedule is not None:
        known = {**known, "watch_ms": deadline_after(schedule, now, job.grace_s)}
    written = known if (state is None or watch) else None
    return Change(runs=(*cancelled, run), state=written)


def begun(run: Run, job: Job, now: int) -> Change:
    """An attempt starts; if it is never answered (the process died), the run is taken up
    again `INTERRUPTED_AFTER_MS` after its timeout."""
    running = {
        **run,
        "status": RunStatus.RUNNING.value,
        "attempt": run["attempt"] + 1,
        "next_at_ms": now + int(job.timeout_s * 1000) + INTERRUPTED_AFTER_MS,
    }
    return Change(runs=(running,), started=AttemptStart(run["id"], running["attempt"], now))


def interrupted(run: Run, job: Job, state: State, now: int) -> tuple[Change, bool]:
    """The alarm found a run still `running`: its attempt's process died. Close that attempt;
    (the change, whether another attempt may follow)."""
    closed = AttemptEnd(run["id"], run["attempt"], None, None, "interrupted", LOST)
    if run["attempt"] < job.max_attempts:
        return Change(attempt=closed), True
    return replace(_failed(run, job, state, LOST, now), attempt=closed), False


def _failed(run: Run, job: Job, state: State, error: str, now: int) -> Change:
    failed = {**run, "status": RunStatus.FAILED.value, "next_at_ms": None, "ended_ms": now,
              "error": error}  # fmt: skip
    alerted = _alert(state, job, Alert.FAILED, failed, error)
    return replace(alerted, runs=(failed,))


def answered(
    latest: Run,
    *,
    n: int,
    started_ms: int,
    ended_ms: int,
    result: Outcome,
    job: Job,
    state: State,
    schedule: CronExpression | None,
) -> Change:
    """Attempt `n` was answered (or failed to be). `latest` is the run as it is now: if it is no
    longer running attempt `n` (a replace cancelled it), only the attempt is recorded."""
    verdict = judge(result.status, n, job.max_attempts, retryable=result.retryable)
    why = problem(result.status, result.error) if verdict != Verdict.SUCCEEDED else None
    attempt = AttemptEnd(latest["id"], n, ended_ms - started_ms, result.status, verdict.value,
                         why)  # fmt: skip
    if latest["status"] != RunStatus.RUNNING.value or latest["attempt"] != n:
        return Change(attempt=attempt, projections=(latest["id"],))
    if verdict == Verdict.FAILED:
        return replace(_failed(latest, job, state, why or "failed", ended_ms), attempt=attempt)
    if verdict == Verdict.RETRY:
        backoff = Backoff(base_ms=job.initial_delay_ms, cap_ms=job.max_delay_ms)
        delay = next_delay_ms(n - 1, result.status, result.retry_after, ended_ms, backoff)
        retrying = {**latest, "status": RunStatus.RETRYING.value,
                    "next_at_ms": ended_ms + delay, "error": why}  # fmt: skip
        return Change(runs=(retrying,), attempt=attempt)
    done = {**latest, "status": RunStatus.SUCCEEDED.value, "next_at_ms": None,
            "ended_ms": ended_ms, "error": None}  # fmt: skip
    watched = {**state, "last_ok_ms": ended_ms}
    if schedule is not None:
        watched["watch_ms"] = deadline_after(schedule, ended_ms, job.grace_s)
    recovered = _alert(watched, job, Alert.RECOVERED, done, "")
    return replace(recovered, runs=(done,), attempt=attempt)


def missed(state: State, job: Job, now: int) -> Change | None:
    """The dead man's switch: no success by the next fire after the last one, plus grace."""
    if state["watch_ms"] is None or now < state["watch_ms"]:
        return None
    last = rfc3339_ms(state["last_ok_ms"]) or "it started being watched"
    detail = f"no successful run since {last}; expected by {rfc3339_ms(state['watch_ms'])}"
    return _alert({**state, "watch_ms": None}, job, Alert.MISSED, None, detail)


def active_statuses() -> tuple[str, ...]:
    return tuple(s.value for s in ACTIVE)
