"""JobRunner: one per cron job; its runs, their attempts, its alerts, driven by its alarm.

`start` records a run (or skips, or replaces, by the job's concurrency policy) and sets the
alarm; the alarm makes the attempts. So the scheduled handler returns at once and a backoff is
an alarm, not a sleep: a restart in the middle loses nothing and repeats nothing. An attempt
whose process died is closed as `interrupted` when the alarm runs again.

Effects outside the object (the D1 projection, Slack alerts) go through an outbox written in
the same transaction as the change that caused them and flushed after it; failures retry on
the alarm. The object also keeps the dead man's switch: when the job has not succeeded by the
next scheduled time after its last success plus the grace period, it alerts `missed`.
"""

import asyncio
import json
import logging
from typing import Any, ClassVar

import correlation
from clock import rfc3339_ms
from cron import outbox, records
from cron.jobs import JOBS, Job, JobTable
from cron.policy import (
    ACTIVE,
    Alert,
    RunStatus,
    Verdict,
    admit,
    alert_for,
    judge,
    missed_deadline_ms,
    problem,
)
from durable.base import AlarmInfo, DurableObjectLogic, rpc
from ids import new_id
from logs import event, get_logger, redact
from ports import HttpError, Statement
from tasks.retry import Backoff, next_delay_ms

log = get_logger("cron")
OUTBOX_RETRY_MS = 2_000
KEEP_FINISHED = 100  # runs kept in the object; D1 keeps the whole history
INTERRUPTED_AFTER_MS = 5_000  # past an attempt's timeout, it is taken as lost
_SCHEMA = (
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
_ACTIVE = tuple(s.value for s in ACTIVE)


class JobRunner(DurableObjectLogic):
    jobs: ClassVar[JobTable] = JOBS

    @classmethod
    def for_jobs(cls, jobs: JobTable) -> type["JobRunner"]:
        return type(cls.__name__, (cls,), {"jobs": jobs})

    def on_start(self) -> None:
        for statement in _SCHEMA:
            self.ctx.storage.exec(statement)

    # --- storage ---

    def _now(self) -> int:
        return self.ctx.services.clock.now_ms()

    def _state(self) -> dict[str, Any] | None:
        rows = self.ctx.storage.exec("SELECT * FROM state WHERE id = 1")
        return rows[0] if rows else None

    def _run(self, run_id: str) -> dict[str, Any] | None:
        rows = self.ctx.storage.exec("SELECT * FROM runs WHERE id = ?", run_id)
        return rows[0] if rows else None

    def _runs(self, *statuses: str) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(statuses))
        return self.ctx.storage.exec(
            f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY id", *statuses
        )

    def _attempts(self, run_id: str) -> list[dict[str, Any]]:
        return self.ctx.storage.exec("SELECT * FROM attempts WHERE run_id = ? ORDER BY n", run_id)

    def _save(self, run: dict[str, Any]) -> None:
        """Write the run (new version) and queue its D1 projection; call inside a transaction."""
        run["version"] += 1
        columns = list(run)
        self.ctx.storage.exec(
            f"INSERT OR REPLACE INTO runs ({','.join(columns)})"
            f" VALUES ({','.join('?' * len(columns))})",
            *(run[c] for c in columns),
        )
        outbox.queue(self.ctx.storage, f"project:{run['id']}", "project", run["id"])

    def _alert(
        self, state: dict[str, Any], outcome: Alert, run: dict[str, Any] | None, detail: str = ""
    ) -> None:
        """Queue the alert `outcome` calls for, if any, and update the failure streak."""
        job = self.jobs[state["job"]]
        kind, failing = alert_for(outcome, bool(state["failing"]))
        state["failing"] = int(failing)
        if kind is None or not job.alert_on_failure:
            return
        if run is not None and outcome == Alert.FAILED:
            detail = run["error"] or ""
        message = records.alert_message(
            kind.value, job.name, self.ctx.services.config.environment, run, detail
        )
        body = redact(json.dumps(message))
        outbox.queue(self.ctx.storage, f"alert:{new_id(self._now())}", "alert", body)
        event(log, logging.WARNING, "cron alert", job=job.name, kind=kind.value)

    def _write_state(self, state: dict[str, Any]) -> None:
        self.ctx.storage.exec(
            "INSERT OR REPLACE INTO state (id, job, failing, last_ok_ms, watch_ms)"
            " VALUES (1, ?, ?, ?, ?)",
            state["job"],
            state["failing"],
            state["last_ok_ms"],
            state["watch_ms"],
        )

    # --- RPC ---

    @rpc
    async def start(self, job_name: str, source: str, scheduled_ms: int) -> dict[str, Any]:
        """Start a run of `job_name` (or skip it, by the concurrency policy).

        A scheduled run is started once per scheduled time, however often it is handed over.
        """
        if job_name not in self.jobs:
            return {"error": {"code": "not_found", "message": "no such job", "status": 404}}
        job = self.jobs[job_name]
        if source == "cron":
            rows = self.ctx.storage.exec(
                "SELECT * FROM runs WHERE source = 'cron' AND scheduled_ms = ?", scheduled_ms
            )
            if rows:
                return {"run": records.run_view(rows[0]), "created": False}
        now = self._now()
        run_id = new_id(now, prefix="crn_")
        active = self._runs(*_ACTIVE)
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

        def write() -> None:
            known = self._state()
            state = known or {"job": job.name, "failing": 0, "last_ok_ms": None, "watch_ms": None}
            schedule = job.schedule(self.ctx.services.config.environment)
            watch = state["watch_ms"] is None and schedule is not None and not state["failing"]
            if watch:
                state["watch_ms"] = missed_deadline_ms(schedule, now, job.grace_s)
            if known is None or watch:
                self._write_state(state)
            for old in active:
                if old["id"] in admission.cancel:
                    old.update(status=RunStatus.CANCELLED.value, next_at_ms=None, ended_ms=now)
                    old["error"] = f"replaced by run {run_id}"
                    self._save(old)
            self._save(run)

        self.ctx.storage.transaction(write)
        event(log, logging.INFO, "cron run", job=job.name, run_id=run_id, status=run["status"])
        await self._arm()
        await self._flush()
        return {"run": records.run_view(run), "created": True}

    # --- the alarm: attempts, the missed-run watch, the outbox ---

    async def on_alarm(self, info: AlarmInfo) -> None:
        state = self._state()
        if state is None:
            return
        if state["job"] not in self.jobs:  # removed from the table since: nothing to do
            event(log, logging.WARNING, "job no longer defined", job=state["job"])
            await self.ctx.storage.delete_alarm()
            return
        now = self._now()
        due = [r for r in self._runs(*_ACTIVE) if r["next_at_ms"] <= now]
        await asyncio.gather(*(self._attempt(run["id"]) for run in due))
        state = self._state()
        assert state is not None
        if state["watch_ms"] is not None and self._now() >= state["watch_ms"]:

            def missed() -> None:
                last = rfc3339_ms(state["last_ok_ms"]) or "it started being watched"
                detail = (
                    f"no successful run since {last}; expected by {rfc3339_ms(state['watch_ms'])}"
                )
                state["watch_ms"] = None
                self._alert(state, Alert.MISSED, None, detail)
                self._write_state(state)

            self.ctx.storage.transaction(missed)
        await self._flush()
        await self._arm()

    async def _arm(self) -> None:
        """The alarm at the next thing to do, or none (then the object can sleep for good)."""
        times = [r["next_at_ms"] for r in self._runs(*_ACTIVE) if r["next_at_ms"] is not None]
        state = self._state()
        if state is not None and state["watch_ms"] is not None:
            times.append(state["watch_ms"])
        if outbox.pending(self.ctx.storage):
            times.append(self._now() + OUTBOX_RETRY_MS)
        if times:
            await self.ctx.storage.set_alarm(min(times))
        else:
            await self.ctx.storage.delete_alarm()

    async def _attempt(self, run_id: str) -> None:
        run = self._run(run_id)
        assert run is not None
        job = self.jobs[run["job"]]
        now = self._now()
        lost = run["status"] == RunStatus.RUNNING.value  # the last attempt's process died
        if lost and not self._close_lost(run, job, now):
            return
        run.update(
            status=RunStatus.RUNNING.value,
            attempt=run["attempt"] + 1,
            next_at_ms=now + int(job.timeout_s * 1000) + INTERRUPTED_AFTER_MS,
        )
        n = run["attempt"]

        def begin() -> None:
            self.ctx.storage.exec(
                "INSERT INTO attempts (run_id, n, started_ms) VALUES (?, ?, ?)", run_id, n, now
            )
            self._save(run)

        self.ctx.storage.transaction(begin)
        base = (self.ctx.services.config.get("BACKEND_BASE") or "").rstrip("/")
        if base:
            token = correlation.bind(run["correlation_id"])
            try:
                status, retry_after, error = await self._call(job, run, base)
            finally:
                correlation.reset(token)
            verdict = judge(status, n, job.max_attempts, retryable=not error.startswith("refused"))
        else:  # a configuration error: retrying cannot help
            status, retry_after, error = None, None, "BACKEND_BASE is not set"
            verdict = Verdict.FAILED
        ended = self._now()
        latest = self._run(run_id)  # a replace may have cancelled it while we waited
        assert latest is not None
        outcome = problem(status, error) if verdict != Verdict.SUCCEEDED else None

        def finish() -> None:
            self.ctx.storage.exec(
                "UPDATE attempts SET duration_ms = ?, http_status = ?, outcome = ?, error = ?"
                " WHERE run_id = ? AND n = ?",
                ended - now,
                status,
                verdict.value,
                None if outcome is None else outcome[: records.ERROR_EXCERPT],
                run_id,
                n,
            )
            if latest["status"] != RunStatus.RUNNING.value or latest["attempt"] != n:
                outbox.queue(self.ctx.storage, f"project:{run_id}", "project", run_id)
                return
            state = self._state()
            assert state is not None
            if verdict == Verdict.FAILED:
                self._fail(latest, state, outcome or "failed", ended)
                return
            if verdict == Verdict.RETRY:
                backoff = Backoff(base_ms=job.initial_delay_ms, cap_ms=job.max_delay_ms)
                delay = next_delay_ms(n - 1, status, retry_after, ended, backoff)
                latest.update(status=RunStatus.RETRYING.value, next_at_ms=ended + delay)
                latest["error"] = outcome
            else:
                latest.update(status=RunStatus.SUCCEEDED.value, next_at_ms=None, ended_ms=ended)
                latest["error"] = None
                schedule = job.schedule(self.ctx.services.config.environment)
                state["last_ok_ms"] = ended
                if schedule is not None:
                    state["watch_ms"] = missed_deadline_ms(schedule, ended, job.grace_s)
                self._alert(state, Alert.RECOVERED, latest)
            self._write_state(state)
            self._save(latest)

        self.ctx.storage.transaction(finish)
        level = logging.INFO if verdict == Verdict.SUCCEEDED else logging.WARNING
        event(log, level, "cron attempt", job=job.name, run_id=run_id, attempt=n,
              http_status=status, verdict=verdict.value, error=outcome)  # fmt: skip

    def _close_lost(self, run: dict[str, Any], job: Job, now: int) -> bool:
        """Close an attempt that never reported; False when the run has no attempts left."""
        lost = "interrupted: no outcome recorded (the runtime restarted mid-attempt?)"
        last = run["attempt"] >= job.max_attempts

        def close() -> None:
            self.ctx.storage.exec(
                "UPDATE attempts SET outcome = 'interrupted', error = ?"
                " WHERE run_id = ? AND n = ? AND outcome IS NULL",
                lost,
                run["id"],
                run["attempt"],
            )
            if last:
                state = self._state()
                assert state is not None
                self._fail(run, state, lost, now)

        self.ctx.storage.transaction(close)
        return not last

    def _fail(self, run: dict[str, Any], state: dict[str, Any], error: str, now: int) -> None:
        """The run's final failure: record it and alert (once per streak); in a transaction."""
        run.update(status=RunStatus.FAILED.value, next_at_ms=None, ended_ms=now, error=error)
        self._alert(state, Alert.FAILED, run)
        self._write_state(state)
        self._save(run)

    async def _call(
        self, job: Job, run: dict[str, Any], base: str
    ) -> tuple[int | None, str | None, str]:
        """One HTTP attempt: (status or None, Retry-After, why there was no answer)."""
        config = self.ctx.services.config
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
            response = await self.ctx.services.http.request(
                job.method,
                base + job.path,
                json=None if job.method == "GET" else body,
                headers=headers,
                timeout_s=job.timeout_s,
            )
        except HttpError as exc:
            return None, None, f"{exc.kind}: {exc}"
        if not 200 <= response.status < 300:
            # The body goes to the log (operators only, redacted), never into the run's record.
            excerpt = redact(response.text()[: records.ERROR_EXCERPT])
            event(log, logging.WARNING, "backend answer", job=job.name, status=response.status,
                  body=excerpt)  # fmt: skip
        return response.status, response.headers.get("retry-after"), ""

    # --- the outbox ---

    async def _flush(self) -> None:
        state = self._state()
        if state is None:
            return

        def projection(run_id: str) -> list[Statement] | None:
            run = self._run(run_id)
            return None if run is None else records.projection(run, self._attempts(run_id))

        await outbox.flush(self.ctx.storage, self.ctx.services, state["job"], projection)
        self._prune()

    def _prune(self) -> None:
        """Keep the newest finished runs here; D1 has them all."""
        active = ",".join("?" * len(_ACTIVE))
        old = self.ctx.storage.exec(
            f"SELECT id FROM runs WHERE status NOT IN ({active})"
            " AND id NOT IN (SELECT body FROM outbox WHERE kind = 'project')"
            " ORDER BY id DESC LIMIT -1 OFFSET ?",
            *_ACTIVE,
            KEEP_FINISHED,
        )
        for row in old:
            self.ctx.storage.exec("DELETE FROM attempts WHERE run_id = ?", row["id"])
            self.ctx.storage.exec("DELETE FROM runs WHERE id = ?", row["id"])
