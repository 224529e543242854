"""JobRunner: one per cron job; its runs, their attempts, its alerts.

`start` records a run (or skips, or replaces, by the job's concurrency policy) together with its
first attempt, and makes that attempt's call as work after its answer (`ctx.wait_until`): the
scheduled handler never waits for a backend, and no alarm stands between the hand-over and the
call. The output gate holds the call until the record is durable, and the alarm is set at the
attempt's deadline, so a restart in between loses nothing: the alarm finds the attempt without
an outcome, closes it as `interrupted` and makes the next one. Retries are the alarm's too: a
backoff is an alarm, not a sleep. What follows from each event is decided by `cron.runs`
(pure); effects outside the object (the D1 projection, Slack alerts) go through the outbox,
written with the change that causes them. The object also keeps the dead man's switch: when the
job has not succeeded by the next scheduled time after its last success plus the grace period,
it alerts `missed`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict

import alerts
import correlation
from clock import rfc3339_ms
from cron import records, runs
from cron.jobs import JOBS, RUNNERS, Job, JobTable
from cron.policy import RunStatus, attempt_at_handover
from cron.runs import Change, Outcome, Run, State
from durable import outbox
from durable.base import AlarmInfo, DurableObjectLogic, rpc
from durable.outbox import Effect, Outbox
from durable.rpc import ObjectClient
from errors import NotFound
from ids import new_id
from logs import event, get_logger, redact
from ports import HttpError
from services import Services

log = get_logger("cron")
KEEP_FINISHED = 100  # runs kept in the object; D1 keeps the whole history
PROJECT, ALERT = "project", alerts.KIND
_ACTIVE = runs.active_statuses()


class Started(TypedDict):
    run: dict[str, Any]
    created: bool


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt recorded as started, its call not yet made."""

    run: Run
    started_ms: int


class JobRunner(DurableObjectLogic):
    jobs: ClassVar[JobTable] = JOBS
    SCHEMA = (
        """CREATE TABLE IF NOT EXISTS runs (
            id TEXT PRIMARY KEY, job TEXT NOT NULL, source TEXT NOT NULL,
            scheduled_ms INTEGER NOT NULL, status TEXT NOT NULL, attempt INTEGER NOT NULL,
            next_at_ms INTEGER, correlation_id TEXT NOT NULL, created_ms INTEGER NOT NULL,
            ended_ms INTEGER, error TEXT, version INTEGER NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS attempts (
            run_id TEXT NOT NULL, n INTEGER NOT NULL, started_ms INTEGER NOT NULL,
            duration_ms INTEGER, http_status INTEGER, outcome TEXT, error TEXT,
            PRIMARY KEY (run_id, n))""",
        """CREATE TABLE IF NOT EXISTS state (
            id INTEGER PRIMARY KEY CHECK (id = 1), job TEXT NOT NULL, failing INTEGER NOT NULL,
            last_ok_ms INTEGER, watch_ms INTEGER)""",
        outbox.SCHEMA,
    )

    @classmethod
    def for_jobs(cls, jobs: JobTable) -> type[JobRunner]:
        return type(cls.__name__, (cls,), {"jobs": jobs})

    def on_start(self) -> None:
        super().on_start()
        self.outbox = Outbox(
            self.ctx.storage,
            now_ms=self.now_ms,
            deliver={PROJECT: self._project, ALERT: alerts.sender(self.services)},
            max_tries={ALERT: alerts.TRIES},
        )

    # --- storage ---

    def _state(self) -> State | None:
        rows = self.ctx.storage.exec("SELECT job, failing, last_ok_ms, watch_ms FROM state")
        return rows[0] if rows else None

    def _run(self, run_id: str) -> Run | None:
        rows = self.ctx.storage.exec("SELECT * FROM runs WHERE id = ?", run_id)
        return rows[0] if rows else None

    def _runs(self, *statuses: str) -> list[Run]:
        marks = ",".join("?" * len(statuses))
        return self.ctx.storage.exec(
            f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY id", *statuses
        )

    def _attempts(self, run_id: str) -> list[dict[str, Any]]:
        return self.ctx.storage.exec("SELECT * FROM attempts WHERE run_id = ? ORDER BY n", run_id)

    def _schedule(self, job: Job) -> Any:
        return job.schedule(self.services.config.environment)

    def _apply(self, change: Change) -> None:
        """Write `change` in one transaction, its projections and alerts into the outbox."""
        storage = self.ctx.storage

        def write() -> None:
            if change.started is not None:
                b = change.started
                storage.exec(
                    "INSERT INTO attempts (run_id, n, started_ms) VALUES (?, ?, ?)",
                    b.run_id, b.n, b.started_ms,
                )  # fmt: skip
            if change.attempt is not None:
                a = change.attempt
                storage.exec(
                    "UPDATE attempts SET duration_ms = ?, http_status = ?, outcome = ?,"
                    " error = ? WHERE run_id = ? AND n = ? AND outcome IS NULL",
                    a.duration_ms, a.http_status, a.outcome,
                    None if a.error is None else a.error[: records.ERROR_EXCERPT], a.run_id, a.n,
                )  # fmt: skip
            for run in change.runs:
                row = {**run, "version": run["version"] + 1}
                columns = list(row)
                storage.exec(
                    f"INSERT OR REPLACE INTO runs ({','.join(columns)})"
                    f" VALUES ({','.join('?' * len(columns))})",
                    *(row[c] for c in columns),
                )
            if change.state is not None:
                s = change.state
                storage.exec(
                    "INSERT OR REPLACE INTO state (id, job, failing, last_ok_ms, watch_ms)"
                    " VALUES (1, ?, ?, ?, ?)",
                    s["job"], s["failing"], s["last_ok_ms"], s["watch_ms"],
                )  # fmt: skip
            projected = {r["id"] for r in change.runs} | set(change.projections)
            self.outbox.put(*(Effect(f"project:{i}", PROJECT, i) for i in sorted(projected)))
            for notice in change.notices:
                self.outbox.put(alerts.effect(self.now_ms(), self._message(notice)))

        storage.transaction(write)

    def _message(self, notice: runs.Notice) -> dict[str, Any]:
        state = self._state()
        job = state["job"] if state else "?"
        event(log, logging.WARNING, "cron alert", job=job, kind=notice.kind)
        return records.alert_message(
            notice.kind, job, self.services.config.environment, notice.run, notice.detail
        )

    # --- RPC ---

    @rpc
    async def start(self, job_name: str, source: str, scheduled_ms: int) -> Started:
        """Start a run of `job_name` (or skip it, by the concurrency policy).

        A scheduled run is started once per scheduled time, however often it is handed over.
        """
        if job_name not in self.jobs:
            raise NotFound(f"no job named {job_name!r}")
        job = self.jobs[job_name]
        if source == "cron":
            rows = self.ctx.storage.exec(
                "SELECT * FROM runs WHERE source = 'cron' AND scheduled_ms = ?", scheduled_ms
            )
            if rows:
                return Started(run=records.run_view(rows[0]), created=False)
        now = self.now_ms()
        change = runs.admitted(
            job,
            run_id=new_id(now, prefix="crn_"),
            source=source,
            scheduled_ms=scheduled_ms,
            now=now,
            active=self._runs(*_ACTIVE),
            state=self._state(),
            schedule=self._schedule(job),
        )
        self._apply(change)
        run_id = change.runs[-1]["id"]
        queued = change.runs[-1]["status"] == RunStatus.QUEUED.value
        inline = queued and attempt_at_handover(job.timeout_s)
        attempt = self._begin(run_id, job) if inline else None
        run = self._run(run_id)
        assert run is not None
        event(log, logging.INFO, "cron run", job=job.name, run_id=run_id, status=run["status"])
        if attempt is None:  # skipped, or its attempt is the alarm's (due now)
            await self._drain()
            await self._arm()
            return Started(run=records.run_view(run), created=True)
        # The alarm at the attempt's deadline is written with the record, so a restart before
        # the answer loses nothing. Not yet for the projection about to be drained: the call
        # goes out while it is (each waits only for the record to be durable).
        await self._arm(outbox=False)
        self.ctx.wait_until(self._first_attempt(attempt, job))
        await self._drain()  # the run is in D1 when its hand-over is answered
        await self._arm()
        return Started(run=records.run_view(run), created=True)

    async def _first_attempt(self, attempt: Attempt, job: Job) -> None:
        await self._answer(attempt, job)
        await self._drain()
        await self._arm()

    # --- the alarm: attempts, the missed-run watch, the outbox ---

    async def on_alarm(self, info: AlarmInfo) -> None:
        state = self._state()
        if state is None:
            return
        if state["job"] not in self.jobs:  # removed from the table since: nothing to do
            event(log, logging.WARNING, "job no longer defined", job=state["job"])
            await self.ctx.storage.delete_alarm()
            return
        job, now = self.jobs[state["job"]], self.now_ms()
        due = [r for r in self._runs(*_ACTIVE) if r["next_at_ms"] <= now]
        attempts = [a for a in (self._begin(r["id"], job) for r in due) if a is not None]
        await asyncio.gather(*(self._answer(attempt, job) for attempt in attempts))
        state = self._state()
        assert state is not None
        watched = runs.missed(state, job, self.now_ms())
        if watched is not None:
            self._apply(watched)
        await self._drain()
        await self._arm()

    async def _arm(self, *, outbox: bool = True) -> None:
        """The alarm at the next thing to do, or none (then the object can sleep for good).
        `outbox=False` leaves out the outbox's rows, for a caller about to drain it."""
        times = [r["next_at_ms"] for r in self._runs(*_ACTIVE) if r["next_at_ms"] is not None]
        state = self._state()
        if state is not None and state["watch_ms"] is not None:
            times.append(state["watch_ms"])
        due = self.outbox.next_due_ms() if outbox else None
        if due is not None:
            times.append(due)
        at = min(times) if times else None
        if at == await self.ctx.storage.get_alarm():
            return  # unchanged: setting it again would be a row written for nothing
        if at is not None:
            await self.ctx.storage.set_alarm(at)
        else:
            await self.ctx.storage.delete_alarm()

    def _begin(self, run_id: str, job: Job) -> Attempt | None:
        """Record the next attempt of a due run (closing one whose process died first), or
        None when the run may not go on. Synchronous: the attempt is recorded in the same turn
        as whatever made the run due, before anything leaves."""
        run, state, now = self._run(run_id), self._state(), self.now_ms()
        assert run is not None
        assert state is not None
        if run["status"] == RunStatus.RUNNING.value:  # the last attempt's process died
            change, again = runs.interrupted(run, job, state, now)
            self._apply(change)
            if not again:
                return None
            run = self._run(run_id)
            assert run is not None
        started = runs.begun(run, job, now)
        self._apply(started)
        return Attempt(started.runs[0], now)

    async def _answer(self, attempt: Attempt, job: Job) -> None:
        """Make the recorded attempt's call and record what it came to."""
        run, run_id, n = attempt.run, attempt.run["id"], attempt.run["attempt"]
        with correlation.bound(run["correlation_id"]):
            result = await self._call(job, run)
        latest, state = self._run(run_id), self._state()  # re-read: a replace may have run
        assert latest is not None
        assert state is not None
        change = runs.answered(
            latest, n=n, started_ms=attempt.started_ms, ended_ms=self.now_ms(), result=result,
            job=job, state=state, schedule=self._schedule(job),
        )  # fmt: skip
        self._apply(change)
        verdict = change.attempt.outcome if change.attempt else "?"
        level = logging.INFO if verdict == "succeeded" else logging.WARNING
        event(log, level, "cron attempt", job=job.name, run_id=run_id, attempt=n,
              http_status=result.status, verdict=verdict,
              error=change.attempt.error if change.attempt else None)  # fmt: skip

    async def _call(self, job: Job, run: Run) -> Outcome:
        """One HTTP attempt. A missing BACKEND_BASE is a configuration error: no retry."""
        config = self.services.config
        base = (config.get("BACKEND_BASE") or "").rstrip("/")
        if not base:
            return Outcome(None, error="BACKEND_BASE is not set", retryable=False)
        headers = {"X-Correlation-ID": run["correlation_id"]}
        token = config.get("CRON_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = {
            **job.body,
            "job": job.name,
            "source": run["source"],
            "scheduled_time": rfc3339_ms(run["scheduled_ms"]),
            "attempt": run["attempt"],
        }
        try:
            response = await self.services.http.request(
                job.method,
                base + job.path,
                json=None if job.method == "GET" else body,
                headers=headers,
                timeout_s=job.timeout_s,
            )
        except HttpError as exc:
            return Outcome(None, error=f"{exc.kind}: {exc}", retryable=exc.kind != "refused")
        if not 200 <= response.status < 300:
            # The body goes to the log (operators only, redacted), never into the run's record.
            excerpt = redact(response.text()[: records.ERROR_EXCERPT])
            event(log, logging.WARNING, "backend answer", job=job.name, status=response.status,
                  body=excerpt)  # fmt: skip
        return Outcome(response.status, response.headers.get("retry-after"))

    # --- the outbox ---

    async def _drain(self) -> None:
        await self.outbox.drain()
        self._prune()

    async def _project(self, run_id: str) -> None:
        run = self._run(run_id)
        if run is not None:
            await self.services.database.batch(records.projection(run, self._attempts(run_id)))

    def _prune(self) -> None:
        """Keep the newest finished runs here; D1 has them all."""
        active = ",".join("?" * len(_ACTIVE))
        old = self.ctx.storage.exec(
            f"SELECT id FROM runs WHERE status NOT IN ({active})"
            " AND 'project:' || id NOT IN (SELECT key FROM outbox)"
            " ORDER BY id DESC LIMIT -1 OFFSET ?",
            *_ACTIVE,
            KEEP_FINISHED,
        )
        for row in old:
            self.ctx.storage.exec("DELETE FROM attempts WHERE run_id = ?", row["id"])
            self.ctx.storage.exec("DELETE FROM runs WHERE id = ?", row["id"])


class JobRunnerClient(ObjectClient):
    @classmethod
    def for_job(cls, services: Services, job: str) -> JobRunnerClient:
        return cls(services.namespace(RUNNERS).get(job))

    async def start(self, job: str, source: str, scheduled_ms: int) -> Started:
        return await self.invoke(JobRunner.start, job, source, scheduled_ms)
