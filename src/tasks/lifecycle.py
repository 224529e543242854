"""A task's decisions as pure functions: `(document, event, now) -> Step`.

The TaskManager reads its document, asks one of these what follows from an event, and applies
the `Step` in one transaction: the new document (with `wake_ms`, when its alarm must fire next),
the attempt opened or closed, the effects queued in its outbox. None of them does I/O, so each
is a table test, and an event that arrives while an outbound call is in flight (Cloudflare
interleaves there) is judged against the document as it is then, not as it was when the call
went out. The alarm is always derived from what is stored (`wake_ms` and the outbox), so no
event can leave behind an alarm another event's decision made stale.

Attempts: a server is chosen (the registry), the attempt opens with a lease and a deadline
(`timeout_s`), the task is dispatched (`POST {url}/tasks`). Network errors, timeouts, 5xx, 408
and 429 retry the dispatch with capped, jittered backoff (Retry-After honoured); other 4xx fail
the task; an address the egress policy refuses ends the attempt at once. An attempt with no
outcome by its deadline, whose server went down or lost it (absent from its heartbeats), ends
and the task moves to another server while attempts remain. Only the holder of the current
lease may report an outcome; an operator may cancel, and the holder is told.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from errors import Conflict
from tasks.retry import Backoff, next_delay_ms, should_retry
from tasks.states import IN_FLIGHT, TERMINAL, TaskStatus, can_transition

type Doc = dict[str, Any]
BACKOFF = Backoff(base_ms=500, cap_ms=30_000)
# Effects (outbox kinds): free the server slot, project to D1, tell the server to stop.
RELEASE, PROJECT, CANCEL = "release", "project", "cancel"


@dataclass(frozen=True, slots=True)
class Opened:
    n: int
    server_id: str
    lease_id: str
    started_ms: int


@dataclass(frozen=True, slots=True)
class Closed:
    n: int
    outcome: str
    error: str | None
    ended_ms: int


@dataclass(frozen=True, slots=True)
class Step:
    doc: Doc  # its `wake_ms`: when the alarm must fire next (None: no alarm)
    effects: tuple[str, ...] = ()
    opened: Opened | None = None
    closed: Closed | None = None
    changed: bool = True  # False: nothing to write (the event changed nothing)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a dispatch got: an HTTP status, or why there was none."""

    status: int | None = None
    retry_after: str | None = None
    failure: str | None = None  # "timeout", "network" or "refused" when status is None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Settings:
    wait_recheck_ms: int = 30_000  # a queued task asks again, in case its offer was lost
    dispatch_tries: int = 4
    # A heartbeat sent just before the server accepted a task may arrive after the acceptance
    # did: only once this long has passed does a heartbeat that leaves it out mean it is lost.
    listing_grace_ms: int = 5_000
    backoff: Backoff = field(default_factory=lambda: BACKOFF)


def new_task(spec: dict[str, Any], now: int) -> Step:
    doc = {
        "id": spec["id"],
        "type": spec["type"],
        "payload": spec["payload"],
        "priority": spec["priority"],
        "required": spec["required_capabilities"],
        "timeout_s": spec["timeout_s"],
        "max_attempts": spec["max_attempts"],
        "correlation_id": spec.get("correlation_id") or spec["id"],
        "status": TaskStatus.PENDING.value,
        "attempt": 0,
        "server_id": None,
        "server_url": None,
        "lease_id": None,
        "phase": None,
        "acked_ms": None,
        "dispatch_tries": 0,
        "deadline_ms": None,
        "exclude": [],
        "result": None,
        "error": None,
        "progress": None,
        "created_ms": now,
        "updated_ms": now,
        "wake_ms": now,
        "version": 0,
    }
    return Step(doc, effects=(PROJECT,))


def _nothing(doc: Doc) -> Step:
    """The event changes nothing, not even when the alarm fires."""
    return Step(doc, changed=False)


def assigned(doc: Doc, server: dict[str, str], lease_id: str, now: int) -> Step:
    """The registry gave the task a slot on `server`: open the attempt, dispatch next."""
    n = doc["attempt"] + 1
    new = {
        **doc,
        "attempt": n,
        "status": TaskStatus.ASSIGNED.value,
        "server_id": server["id"],
        "server_url": server["url"],
        "lease_id": lease_id,
        "phase": "dispatching",
        "acked_ms": None,
        "dispatch_tries": 0,
        "deadline_ms": now + int(doc["timeout_s"] * 1000),
        "updated_ms": now,
    }
    # Dispatched in this same event; should that never finish, the deadline ends the attempt.
    new["wake_ms"] = new["deadline_ms"]
    opened = Opened(n, server["id"], lease_id, now)
    return Step(new, effects=(PROJECT,), opened=opened)


def waiting(doc: Doc, now: int, settings: Settings) -> Step:
    """No server can take it now: the registry queues it and will offer it a slot."""
    return Step({**doc, "wake_ms": now + settings.wait_recheck_ms})


def then(first: Step, second: Step) -> Step:
    """Two steps decided in one event (`second` from `first.doc`), written as one."""
    return Step(
        second.doc,
        effects=tuple(dict.fromkeys(first.effects + second.effects)),
        opened=second.opened or first.opened,
        closed=second.closed or first.closed,
        changed=first.changed or second.changed,
    )


def dispatched(doc: Doc, lease_id: str, answer: Answer, now: int, settings: Settings) -> Step:
    """The dispatch under `lease_id` was answered. `doc` is the document as it is now: if the
    attempt moved on meanwhile (a callback, a cancel, a timeout), the answer changes nothing."""
    if doc["lease_id"] != lease_id or doc["phase"] != "dispatching":
        return _nothing(doc)
    if answer.status is not None and 200 <= answer.status < 300:
        acked = {**doc, "phase": "acked", "acked_ms": doc.get("acked_ms") or now,
                 "updated_ms": now, "wake_ms": doc["deadline_ms"]}  # fmt: skip
        return Step(acked)
    where = f"dispatch to {doc['server_id']}"
    if answer.failure is None and not should_retry(answer.status):
        error = f"{where} refused: HTTP {answer.status}"
        return finish(doc, TaskStatus.FAILED, now, outcome="rejected", error=error)
    tries = doc["dispatch_tries"] + 1
    reason = (
        f"{where}: HTTP {answer.status}" if answer.failure is None else f"{where}: {answer.detail}"
    )
    if answer.failure == "refused" or tries >= settings.dispatch_tries:
        return end_attempt({**doc, "dispatch_tries": tries}, "dispatch_failed", reason, now)
    delay = next_delay_ms(tries - 1, answer.status, answer.retry_after, now, settings.backoff)
    wake = min(now + delay, doc["deadline_ms"])
    return Step({**doc, "dispatch_tries": tries, "updated_ms": now, "wake_ms": wake})


def end_attempt(doc: Doc, outcome: str, error: str, now: int) -> Step:
    """The attempt ended without an outcome: move on, or give up when none remain."""
    exclude = list(doc["exclude"])
    if doc["server_id"] not in exclude:
        exclude.append(doc["server_id"])
    new = {
        **doc,
        "exclude": exclude,
        "server_id": None,
        "server_url": None,
        "lease_id": None,
        "phase": None,
        "deadline_ms": None,
        "updated_ms": now,
    }
    if doc["attempt"] < doc["max_attempts"]:
        new.update(status=TaskStatus.PENDING.value, wake_ms=now)
    else:
        final = TaskStatus.TIMED_OUT if outcome == "timed_out" else TaskStatus.FAILED
        new.update(status=final.value, error=f"gave up after {doc['attempt']} attempts: {error}",
                   wake_ms=None)  # fmt: skip
    closed = Closed(doc["attempt"], outcome, error, now)
    return Step(new, effects=(RELEASE, PROJECT), closed=closed)


def finish(
    doc: Doc, status: TaskStatus, now: int, *, outcome: str, error: str | None = None
) -> Step:
    """A final outcome. The lease stays: the server that finished may repeat its callback."""
    new = {**doc, "status": status.value, "phase": None, "deadline_ms": None, "updated_ms": now,
           "wake_ms": None}  # fmt: skip
    if error is not None:
        new["error"] = error
    closed = Closed(doc["attempt"], outcome, error, now) if doc["attempt"] else None
    return Step(new, effects=(RELEASE, PROJECT), closed=closed)


def deadline_passed(doc: Doc, now: int) -> Step | None:
    """The alarm fired: an in-flight attempt past its deadline ends."""
    in_flight = TaskStatus(doc["status"]) in IN_FLIGHT
    if in_flight and doc["deadline_ms"] is not None and now >= doc["deadline_ms"]:
        return end_attempt(doc, "timed_out", f"no outcome within {doc['timeout_s']}s", now)
    return None


def server_lost(
    doc: Doc, server_id: str, now: int, settings: Settings, *, outcome: str = "server_lost"
) -> Step:
    """The task's server went down (`server_lost`) or stopped listing it (`lost`).

    A server cannot list a task before it has accepted it, so `lost` counts only for a task the
    server accepted at least `listing_grace_ms` ago.
    """
    if TaskStatus(doc["status"]) not in IN_FLIGHT or doc["server_id"] != server_id:
        return _nothing(doc)
    if outcome == "lost" and (
        doc["phase"] != "acked" or now - (doc.get("acked_ms") or now) < settings.listing_grace_ms
    ):
        return _nothing(doc)
    why = {"lost": f"server {server_id} no longer reports the task"}.get(
        outcome, f"server {server_id} went down"
    )
    return end_attempt(doc, outcome, why, now)


def reported(
    doc: Doc, server_id: str | None, lease_id: str | None, change: dict[str, Any], now: int
) -> Step:
    """`PUT /api/task/{id}`: a server (`server_id`) reporting under its lease, or an operator.

    Raises Conflict when the caller no longer holds the task or the transition is not allowed.
    An operator's `cancelled` tells the server that holds the task (the `cancel` effect).
    """
    new_status, current = TaskStatus(change["status"]), TaskStatus(doc["status"])
    if server_id is not None:
        mine = doc["server_id"] == server_id and lease_id == doc["lease_id"]
        if current in TERMINAL and current == new_status and mine:
            return _nothing(doc)  # a repeated final callback: already recorded
        holds = (
            current in IN_FLIGHT
            and doc["server_id"] == server_id
            and (lease_id is None or lease_id == doc["lease_id"])
        )
        if not holds:
            raise Conflict("this server no longer holds the task", code="lease_lost")
    if not can_transition(current, new_status):
        raise Conflict(
            f"a {current.value} task cannot become {new_status.value}", code="invalid_transition"
        )
    progress = change.get("progress")
    base = {**doc, "progress": progress if progress is not None else doc["progress"]}
    if new_status == TaskStatus.RUNNING:
        moved = current != new_status
        new = {**base, "status": new_status.value, "phase": "acked",
               "acked_ms": doc.get("acked_ms") or now, "updated_ms": now,
               "wake_ms": doc["deadline_ms"]}  # fmt: skip
        return Step(new, effects=(PROJECT,) if moved else ())
    base.update(result=change.get("result"), error=change.get("error"))
    if new_status == TaskStatus.SUCCEEDED:
        base["progress"] = 1.0
    outcome = new_status.value
    step = finish(base, new_status, now, outcome=outcome, error=change.get("error"))
    if server_id is None and new_status == TaskStatus.CANCELLED and current in IN_FLIGHT:
        return replace(step, effects=(*step.effects, CANCEL))
    return step
