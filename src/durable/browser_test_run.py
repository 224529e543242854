"""BrowserTestRun: one per run of a browser check; it runs from its alarm, not the request.

`start` records the run as `pending` and sets the alarm. The alarm asks BrowserLimits for a
browser (waiting its turn when the plan is full, or paused by a 429), marks the run `running`,
executes the check, stores the screenshot in the ARTIFACTS bucket and the result, then projects
it to D1. A run whose process died mid-check is tried once more, then ends as `error`: it never
stays `running`.
"""

import json
import logging
from typing import Any

import correlation
from browser.clients import Busy
from browser.execute import Outcome, execute
from browser.settings import ARTIFACTS, LIMITS
from clock import rfc3339_ms
from durable.base import AlarmInfo, DurableObjectLogic, rpc
from logs import event, get_logger
from ports import Statement

log = get_logger("browser")
MAX_TRIES = 2
COST = {"smoke": 3, "auth": 1, "user_journey": 1, "security_session": 3}
_SCHEMA = "CREATE TABLE IF NOT EXISTS run (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT)"


def view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["id"],
        "test_type": doc["test_type"],
        "target_url": doc["target_url"],
        "status": doc["status"],
        "assertions": doc["assertions"],
        "duration_ms": doc["duration_ms"],
        "error": doc["error"],
        "screenshot_key": doc["screenshot_key"],
        "suite_run_id": doc.get("suite_run_id"),
        "suite_name": doc.get("suite_name"),
        "created_at": rfc3339_ms(doc["created_ms"]),
        "started_at": rfc3339_ms(doc["started_ms"]),
        "completed_at": rfc3339_ms(doc["completed_ms"]),
    }


def projection(doc: dict[str, Any]) -> Statement:
    row = view(doc)
    columns = [c for c in row if c != "assertions"] + ["assertions", "version"]
    values = [row[c] for c in columns[:-2]] + [json.dumps(row["assertions"]), doc["version"]]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "id")
    return Statement(
        f"INSERT INTO browser_test_runs ({', '.join(columns)}) VALUES"
        f" ({', '.join('?' * len(columns))}) ON CONFLICT (id) DO UPDATE SET {updates}"
        " WHERE excluded.version > browser_test_runs.version",
        tuple(values),
    )


class BrowserTestRun(DurableObjectLogic):
    def on_start(self) -> None:
        self.ctx.storage.exec(_SCHEMA)

    def _load(self) -> dict[str, Any] | None:
        rows = self.ctx.storage.exec("SELECT doc FROM run WHERE id = 1")
        return json.loads(rows[0]["doc"]) if rows else None

    async def _save(self, doc: dict[str, Any]) -> None:
        """Persist, then project to D1 (a failed projection is redone by the next save)."""
        doc["version"] += 1
        self.ctx.storage.exec(
            "INSERT INTO run (id, doc) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            json.dumps(doc),
        )
        try:
            await self.ctx.services.database.batch([projection(doc)])
        except Exception:
            log.warning("browser run projection failed", exc_info=True)
            await self.ctx.storage.set_alarm(self.ctx.services.clock.now_ms() + 2_000)

    def _now(self) -> int:
        return self.ctx.services.clock.now_ms()

    @rpc
    async def start(self, spec: dict[str, Any]) -> dict[str, Any]:
        doc = self._load()
        if doc is None:
            doc = {
                **spec,
                "status": "pending",
                "assertions": [],
                "duration_ms": None,
                "error": None,
                "screenshot_key": None,
                "created_ms": self._now(),
                "started_ms": None,
                "completed_ms": None,
                "tries": 0,
                "version": 0,
            }
            await self._save(doc)
            await self.ctx.storage.set_alarm(self._now())
        return {"run": view(doc)}

    @rpc
    async def get(self) -> dict[str, Any] | None:
        doc = self._load()
        return None if doc is None else view(doc)

    async def on_alarm(self, info: AlarmInfo) -> None:
        doc = self._load()
        if doc is None:
            return
        if doc["status"] in ("passed", "failed", "error"):
            await self._save(doc)  # only here to redo a failed projection
            return
        limits = self.ctx.services.namespace(LIMITS).get("global")
        grant = await limits.call("acquire", doc["id"], COST[doc["test_type"]])
        if not grant["granted"]:
            await self.ctx.storage.set_alarm(self._now() + grant["retry_after_ms"])
            return
        token = correlation.bind(doc["id"])
        try:
            await self._run(doc, limits)
        finally:
            correlation.reset(token)

    async def _run(self, doc: dict[str, Any], limits: Any) -> None:
        doc["tries"] += 1
        if doc["status"] == "running" and doc["tries"] > MAX_TRIES:
            await self._finish(doc, Outcome("error", error="interrupted: the runtime restarted"))
            await limits.call("release", doc["id"])
            return
        doc.update(status="running", started_ms=self._now())
        await self._save(doc)
        try:
            outcome = await execute(
                self.ctx.services, doc["test_type"], doc["target_url"], doc["options"]
            )
        except Busy as busy:
            await limits.call("pause", busy.retry_after_ms)
            await limits.call("release", doc["id"])
            doc["status"] = "pending"
            await self._save(doc)
            await self.ctx.storage.set_alarm(self._now() + busy.retry_after_ms)
            return
        except Exception as exc:  # a bug must end the run, not leave it running
            log.exception("browser check crashed")
            outcome = Outcome("error", error=f"{type(exc).__name__}: {exc}")
        await self._finish(doc, outcome)
        await limits.call("release", doc["id"])

    async def _finish(self, doc: dict[str, Any], outcome: Outcome) -> None:
        if outcome.screenshot:
            key = f"screenshots/{doc['id']}.png"
            await self.ctx.services.bucket(ARTIFACTS).put(key, outcome.screenshot, "image/png")
            doc["screenshot_key"] = key
        now = self._now()
        doc.update(
            status=outcome.status,
            assertions=outcome.assertions,
            error=outcome.error,
            completed_ms=now,
            duration_ms=now - (doc["started_ms"] or now),
        )
        await self._save(doc)
        event(
            log,
            logging.INFO,
            "browser check",
            run_id=doc["id"],
            status=outcome.status,
            test_type=doc["test_type"],
            duration_ms=doc["duration_ms"],
        )
