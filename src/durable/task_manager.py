"""TaskManager: one per task; its lifecycle, driven by RPC and its alarm.

The task lives in this object's storage as one document plus its attempts. Anything that must
happen elsewhere (releasing the server slot, the D1 projection) is written to the outbox in the
same event and done after: an alarm retries what failed, so a crash loses nothing, and each
effect is idempotent, so a retry duplicates nothing.

Attempts: choose a server (the registry), record the attempt and its lease, `POST {url}/tasks`.
Network errors, timeouts, 5xx, 408 and 429 retry the dispatch with capped, jittered backoff
(honouring Retry-After); other 4xx fail the task. An attempt with no outcome by its deadline
(`timeout_s`), or whose server goes down, ends and the task moves to another server while
attempts remain. Only the holder of the current lease may report an outcome.

RPC results are envelopes (`{"task": ...}` or `{"error": {...}}`): exceptions do not cross
Workers RPC as Python exceptions.
"""

import json
import logging
from typing import Any

import correlation
from durable.base import AlarmInfo, DurableObjectLogic, rpc
from ids import new_id
from logs import event, get_logger
from ports import HttpError
from tasks import records
from tasks import settings as names
from tasks.retry import Backoff, next_delay_ms, should_retry
from tasks.settings import TaskSettings
from tasks.states import IN_FLIGHT, TERMINAL, TaskStatus, can_transition

log = get_logger("tasks")
BACKOFF = Backoff(base_ms=500, cap_ms=30_000)
OUTBOX_RETRY_MS = 2_000
ERROR_EXCERPT = records.ERROR_EXCERPT
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS task (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS attempts (
        n INTEGER PRIMARY KEY, server_id TEXT NOT NULL, lease_id TEXT NOT NULL,
        started_ms INTEGER NOT NULL, ended_ms INTEGER, outcome TEXT, error TEXT)""",
    "CREATE TABLE IF NOT EXISTS outbox (kind TEXT PRIMARY KEY)",
)


def _error(code: str, message: str, status: int) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


class TaskManager(DurableObjectLogic):
    def on_start(self) -> None:
        for statement in _SCHEMA:
            self.ctx.storage.exec(statement)
        self.settings = TaskSettings.from_config(self.ctx.services.config)

    # --- storage ---

    def _load(self) -> dict[str, Any] | None:
        rows = self.ctx.storage.exec("SELECT doc FROM task WHERE id = 1")
        return json.loads(rows[0]["doc"]) if rows else None

    def _save(self, doc: dict[str, Any], *effects: str, project: bool = True) -> None:
        """Persist the task (new version) and queue its effects, atomically.

        `project=False` for changes the D1 projection does not show (dispatch bookkeeping,
        progress), which saves a D1 write.
        """
        doc["version"] += 1
        doc["updated_ms"] = self._now()
        storage = self.ctx.storage

        def write() -> None:
            storage.exec(
                "INSERT INTO task (id, doc) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                json.dumps(doc),
            )
            for kind in (*effects, *(["project"] if project else [])):
                storage.exec("INSERT OR IGNORE INTO outbox (kind) VALUES (?)", kind)

        storage.transaction(write)

    def _attempts(self) -> list[dict[str, Any]]:
        return self.ctx.storage.exec(
            "SELECT n, server_id, lease_id, started_ms, ended_ms, outcome, error"
            " FROM attempts ORDER BY n"
        )

    def _now(self) -> int:
        return self.ctx.services.clock.now_ms()

    def _view(self, doc: dict[str, Any]) -> dict[str, Any]:
        return records.view(doc, self._attempts())

    # --- RPC ---

    @rpc
    async def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Create the task once; a repeated call returns it as it is."""
        existing = self._load()
        if existing is not None:
            return {"task": self._view(existing), "created": False}
        now = self._now()
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
            "dispatch_tries": 0,
            "deadline_ms": None,
            "exclude": [],
            "result": None,
            "error": None,
            "progress": None,
            "created_ms": now,
            "updated_ms": now,
            "version": 0,
        }
        self._save(doc)
        await self.ctx.storage.set_alarm(now)
        await self._flush()
        return {"task": self._view(doc), "created": True}

    @rpc
    async def get(self) -> dict[str, Any] | None:
        doc = self._load()
        return None if doc is None else self._view(doc)

    @rpc
    async def update(
        self, server_id: str | None, lease_id: str | None, change: dict[str, Any]
    ) -> dict[str, Any]:
        """Apply `PUT /api/task/{id}`; `server_id` is set when a server's credential calls."""
        doc = self._load()
        if doc is None:
            return _error("not_found", "no such task", 404)
        new = TaskStatus(change["status"])
        current = TaskStatus(doc["status"])
        if server_id is not None:
            holds = (
                current in IN_FLIGHT
                and doc["server_id"] == server_id
                and (lease_id is None or lease_id == doc["lease_id"])
            )
            repeat = (
                current == new
                and current in TERMINAL
                and doc["server_id"] == server_id
                and lease_id == doc["lease_id"]
            )
            if repeat:
                return {"task": self._view(doc)}
            if not holds:
                return _error("lease_lost", "this server no longer holds the task", 409)
        if not can_transition(current, new):
            return _error(
                "invalid_transition", f"a {current.value} task cannot become {new.value}", 409
            )
        if change.get("progress") is not None:
            doc["progress"] = change["progress"]
        if new == TaskStatus.RUNNING:
            doc["status"] = new.value
            doc["phase"] = "acked"
            self._save(doc, project=current != new)
        else:
            doc["result"] = change.get("result")
            doc["error"] = change.get("error")
            if new == TaskStatus.SUCCEEDED:
                doc["progress"] = 1.0
            self._finish(doc, new, outcome=new.value, error=change.get("error"))
            await self.ctx.storage.delete_alarm()
        await self._flush()
        return {"task": self._view(doc)}

    @rpc
    async def server_lost(self, server_id: str) -> bool:
        doc = self._load()
        if doc is None or doc["status"] not in IN_FLIGHT or doc["server_id"] != server_id:
            return False
        self._end_attempt(doc, "server_lost", f"server {server_id} went down")
        await self.ctx.storage.set_alarm(self._now())
        await self._flush()
        return True

    # --- the alarm: move the task along ---

    async def on_alarm(self, info: AlarmInfo) -> None:
        doc = self._load()
        if doc is None:
            return
        token = correlation.bind(doc["correlation_id"])
        try:
            await self._drive(doc)
            await self._flush()
        finally:
            correlation.reset(token)

    async def _drive(self, doc: dict[str, Any]) -> None:
        status = TaskStatus(doc["status"])
        if status in TERMINAL:
            return
        if status in IN_FLIGHT and self._now() >= doc["deadline_ms"]:
            self._end_attempt(doc, "timed_out", f"no outcome within {doc['timeout_s']}s")
            status = TaskStatus(doc["status"])
        if status == TaskStatus.PENDING and not await self._assign(doc):
            return
        if doc["phase"] == "dispatching":
            await self._dispatch(doc)
        else:
            await self.ctx.storage.set_alarm(doc["deadline_ms"])

    async def _assign(self, doc: dict[str, Any]) -> bool:
        registry = self.ctx.services.namespace(names.REGISTRY).get("global")
        server = await registry.call(
            "acquire", doc["id"], doc["priority"], doc["required"], doc["exclude"]
        )
        now = self._now()
        if server is None:
            await self.ctx.storage.set_alarm(now + self.settings.wait_poll_ms)
            return False
        doc["attempt"] += 1
        doc.update(
            status=TaskStatus.ASSIGNED.value,
            server_id=server["id"],
            server_url=server["url"],
            lease_id=new_id(now, prefix="lse_"),
            phase="dispatching",
            dispatch_tries=0,
            deadline_ms=now + int(doc["timeout_s"] * 1000),
        )
        self.ctx.storage.exec(
            "INSERT INTO attempts (n, server_id, lease_id, started_ms) VALUES (?, ?, ?, ?)",
            doc["attempt"],
            server["id"],
            doc["lease_id"],
            now,
        )
        self._save(doc)
        return True

    async def _dispatch(self, doc: dict[str, Any]) -> None:
        now = self._now()
        remaining_s = (doc["deadline_ms"] - now) / 1000
        body = {
            "id": doc["id"],
            "type": doc["type"],
            "payload": doc["payload"],
            "attempt": doc["attempt"],
            "lease_id": doc["lease_id"],
            "timeout_s": doc["timeout_s"],
            "callback_url": f"{self.settings.public_url}/api/task/{doc['id']}",
        }
        status: int | None = None
        retry_after = None
        failure: HttpError | None = None
        try:
            response = await self.ctx.services.http.request(
                "POST",
                f"{doc['server_url']}/tasks",
                json=body,
                headers={"X-Apiary-Lease": doc["lease_id"]},
                timeout_s=max(0.1, min(self.settings.dispatch_timeout_s, remaining_s)),
            )
            # Only the status: a peer's body never lands in a task (readable with tasks:read).
            status = response.status
            retry_after = response.headers.get("retry-after")
        except HttpError as exc:
            failure = exc
        # The callback may have landed while we waited (Cloudflare interleaves at awaits).
        latest = self._load()
        if (
            latest is None
            or latest["lease_id"] != doc["lease_id"]
            or latest["phase"] != "dispatching"
        ):
            return
        doc.clear()
        doc.update(latest)
        if status is not None and 200 <= status < 300:
            doc["phase"] = "acked"
            self._save(doc, project=False)
            await self.ctx.storage.set_alarm(doc["deadline_ms"])
            return
        where = f"dispatch to {doc['server_id']}"
        if failure is None and not should_retry(status):
            doc["error"] = f"{where} refused: HTTP {status}"
            self._finish(doc, TaskStatus.FAILED, outcome="rejected", error=doc["error"])
            return
        doc["dispatch_tries"] += 1
        reason = f"{where}: HTTP {status}" if failure is None else f"{where}: {failure}"
        refused = failure is not None and failure.kind == "refused"  # retrying cannot help
        if refused or doc["dispatch_tries"] >= self.settings.dispatch_tries:
            self._end_attempt(doc, "dispatch_failed", reason)
            await self.ctx.storage.set_alarm(self._now())
            return
        self._save(doc, project=False)
        delay = next_delay_ms(doc["dispatch_tries"] - 1, status, retry_after, self._now(), BACKOFF)
        event(log, logging.INFO, "dispatch retry", task_id=doc["id"], reason=reason, in_ms=delay)
        await self.ctx.storage.set_alarm(min(self._now() + delay, doc["deadline_ms"]))

    # --- transitions ---

    def _close_attempt(self, doc: dict[str, Any], outcome: str, error: str | None) -> None:
        self.ctx.storage.exec(
            "UPDATE attempts SET ended_ms = ?, outcome = ?, error = ?"
            " WHERE n = ? AND ended_ms IS NULL",
            self._now(),
            outcome,
            (error or "")[:ERROR_EXCERPT] or None,
            doc["attempt"],
        )

    def _end_attempt(self, doc: dict[str, Any], outcome: str, error: str) -> None:
        """The attempt ended without an outcome: move on, or give up when none remain."""
        self._close_attempt(doc, outcome, error)
        if doc["server_id"] not in doc["exclude"]:
            doc["exclude"].append(doc["server_id"])
        doc.update(server_id=None, server_url=None, lease_id=None, phase=None, deadline_ms=None)
        if doc["attempt"] < doc["max_attempts"]:
            doc["status"] = TaskStatus.PENDING.value
        else:
            final = TaskStatus.TIMED_OUT if outcome == "timed_out" else TaskStatus.FAILED
            doc["status"] = final.value
            doc["error"] = f"gave up after {doc['attempt']} attempts: {error}"
        self._save(doc, "release")
        event(
            log, logging.WARNING, "attempt ended", task_id=doc["id"], outcome=outcome, error=error
        )

    def _finish(self, doc: dict[str, Any], status: TaskStatus, *, outcome: str, error: Any) -> None:
        if doc["attempt"]:
            self._close_attempt(doc, outcome, None if error is None else str(error))
        # The lease stays: the server that finished may repeat its final callback safely.
        doc.update(status=status.value, phase=None, deadline_ms=None)
        self._save(doc, "release")

    # --- the outbox ---

    async def _flush(self) -> None:
        pending = [r["kind"] for r in self.ctx.storage.exec("SELECT kind FROM outbox")]
        if not pending:
            return
        doc = self._load()
        try:
            if "release" in pending:
                registry = self.ctx.services.namespace(names.REGISTRY).get("global")
                await registry.call("release", doc["id"])
                self.ctx.storage.exec("DELETE FROM outbox WHERE kind = 'release'")
            if "project" in pending:
                await self._project(doc)
                self.ctx.storage.exec("DELETE FROM outbox WHERE kind = 'project'")
        except Exception:
            log.warning("outbox flush failed; retrying", exc_info=True)
            alarm = await self.ctx.storage.get_alarm()
            retry_at = self._now() + OUTBOX_RETRY_MS
            if alarm is None or alarm > retry_at:
                await self.ctx.storage.set_alarm(retry_at)

    async def _project(self, doc: dict[str, Any]) -> None:
        await self.ctx.services.database.batch(records.projection(doc, self._attempts()))
