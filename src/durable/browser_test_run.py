"""BrowserTestRun: one per run of a browser check; it runs from its alarm, not the request.

`start` records the run as `pending` and sets the alarm. The alarm asks BrowserLimits for a
browser (waiting its turn when the plan is full, or paused by a 429), marks the run `running`,
executes the check, gives the browser back (waking the run next in line), then stores the
screenshot in the ARTIFACTS bucket and the result. Every change
is projected to D1 through the outbox. A run found still `running` when its alarm fires again
had its process die mid-check: it is tried once more, then ends as `error` (a 429 that sent it
back to wait is not a try). A run cancelled while its check is in flight keeps its `cancelled`:
the check's outcome, when it comes, is dropped.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import correlation
from browser.clients import Busy
from browser.execute import Outcome, execute
from browser.settings import ARTIFACTS, RUNS
from clock import rfc3339_ms
from durable import document, outbox
from durable.base import AlarmInfo, DurableObjectLogic, rpc
from durable.browser_limits import BrowserLimitsClient
from durable.document import Doc, Document
from durable.outbox import Effect, Outbox
from durable.rpc import ObjectClient
from errors import Conflict, NotFound
from logs import event, get_logger
from ports import Statement
from services import Services

log = get_logger("browser")
CRASH_RETRIES = 1  # a run whose process died mid-check is tried this many more times
# Browser requests a run spends from the plan's per-minute budget: a smoke check is one page
# load (two REST calls when there is no step runner and it has required_selectors).
COST = {"smoke": 1, "auth": 1, "user_journey": 1, "security_session": 3}
FINISHED = ("passed", "failed", "error", "cancelled")
PROJECT = "project"

type RunView = dict[str, Any]


def view(doc: Doc) -> RunView:
    return {
        "id": doc["id"],
        "test_type": doc["test_type"],
        "target_url": doc["target_url"],
        "worker": doc.get("worker"),
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


def projection(doc: Doc) -> Statement:
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
    SCHEMA = (document.SCHEMA, outbox.SCHEMA)

    def on_start(self) -> None:
        super().on_start()
        self.doc = Document(self.ctx.storage)
        self.outbox = Outbox(self.ctx.storage, now_ms=self.now_ms, deliver={PROJECT: self._project})

    def _load(self) -> Doc:
        doc = self.doc.load()
        if doc is None:
            raise NotFound("no such test run")
        return doc

    async def _save(self, doc: Doc, *, alarm_ms: int | None = None) -> None:
        """Persist with its projection queued (one transaction), then deliver it."""

        def write() -> None:
            self.doc.save(doc)
            self.outbox.put(Effect(PROJECT, PROJECT))

        self.ctx.storage.transaction(write)
        if alarm_ms is not None:
            await self.ctx.storage.set_alarm(alarm_ms)
        await self.outbox.drain()
        due = self.outbox.next_due_ms()
        if due is not None:
            current = await self.ctx.storage.get_alarm()
            if current is None or current > due:
                await self.ctx.storage.set_alarm(due)

    async def _project(self, _: str) -> None:
        await self.services.database.batch([projection(self._load())])

    @rpc
    async def start(self, spec: dict[str, Any]) -> RunView:
        existing = self.doc.load()
        if existing is not None:
            return view(existing)
        now = self.now_ms()
        doc = {**spec, "status": "pending", "assertions": [], "duration_ms": None,
               "error": None, "screenshot_key": None, "created_ms": now, "started_ms": None,
               "completed_ms": None, "crashes": 0, "version": 0}  # fmt: skip
        await self._save(doc, alarm_ms=now)
        return view(doc)

    @rpc
    async def get(self) -> RunView:
        return view(self._load())

    @rpc
    async def cancel(self) -> RunView:
        """End a run that has not finished; a check in flight is not waited for."""
        doc = self._load()
        if doc["status"] in FINISHED:
            raise Conflict(f"the run has already ended ({doc['status']})", code="finished")
        now = self.now_ms()
        doc.update(status="cancelled", completed_ms=now,
                   duration_ms=now - (doc["started_ms"] or now))  # fmt: skip
        await self._save(doc)
        await self._free(BrowserLimitsClient.of(self.services), doc["id"])
        return view(doc)

    @rpc
    async def wake(self) -> None:
        """A browser freed up: a run waiting for one asks again now."""
        doc = self.doc.load()
        if doc is not None and doc["status"] == "pending":
            await self.ctx.storage.set_alarm(self.now_ms())

    async def _free(self, limits: BrowserLimitsClient, run_id: str) -> None:
        """Give the browser back; the run BrowserLimits hands over is woken to take it.

        Never raises: a lease left behind expires, a lost wake is covered by the waiting run's
        own retry, and this run's outcome must not be lost to either.
        """
        try:
            waiting = await limits.release(run_id)
            if waiting is not None:
                await BrowserTestRunClient.for_run(self.services, waiting).wake()
        except Exception as exc:
            event(log, logging.WARNING, "browser not given back", run_id=run_id, error=str(exc))

    async def on_alarm(self, info: AlarmInfo) -> None:
        doc = self.doc.load()
        if doc is None:
            return
        if doc["status"] in FINISHED:
            await self.outbox.drain()  # only here to redo a failed projection
            return
        limits = BrowserLimitsClient.of(self.services)
        grant = await limits.acquire(doc["id"], COST[doc["test_type"]])
        doc = self._load()  # re-read: a cancel may have landed while we asked
        if doc["status"] in FINISHED:
            await self._free(limits, doc["id"])
            return
        if not grant["granted"]:
            # A wake may have landed while we asked (the input gate opens at the await): the
            # alarm it set is sooner, and must stand. The running alarm itself is not reported.
            woken = await self.ctx.storage.get_alarm()
            retry = self.now_ms() + grant["retry_after_ms"]
            if woken is None or woken > retry:
                await self.ctx.storage.set_alarm(retry)
            return
        with correlation.bound(doc["id"]):
            await self._run(doc, limits)

    async def _run(self, doc: Doc, limits: BrowserLimitsClient) -> None:
        if doc["status"] == "running":  # the last execution's process died
            doc["crashes"] += 1
            if doc["crashes"] > CRASH_RETRIES:
                await self._free(limits, doc["id"])
                await self._finish(
                    doc, Outcome("error", error="interrupted: the runtime restarted")
                )
                return
        doc.update(status="running", started_ms=self.now_ms())
        await self._save(doc)
        try:
            outcome = await execute(
                self.services, doc["test_type"], doc["target_url"], doc["options"]
            )
        except Busy as busy:  # not a try: the run waits for the plan to have room
            await limits.pause(busy.retry_after_ms)
            await self._free(limits, doc["id"])  # the woken run waits out the pause
            latest = self._load()
            if latest["status"] == "running":
                latest["status"] = "pending"
                await self._save(latest, alarm_ms=self.now_ms() + busy.retry_after_ms)
            return
        except Exception as exc:  # a bug must end the run, not leave it running
            log.exception("browser check crashed")
            outcome = Outcome("error", error=f"{type(exc).__name__}: {exc}")
        # The browser is done: the next run may have it while this one stores its result.
        await self._free(limits, doc["id"])
        latest = self._load()  # re-read: a cancel may have landed during the check
        if latest["status"] == "running":
            await self._finish(latest, outcome)

    async def _finish(self, doc: Doc, outcome: Outcome) -> None:
        if outcome.screenshot:
            key = f"screenshots/{doc['id']}.png"
            await self.services.bucket(ARTIFACTS).put(key, outcome.screenshot, "image/png")
            doc["screenshot_key"] = key
            latest = self._load()  # the upload was an await too
            if latest["status"] != "running":
                return
        now = self.now_ms()
        doc.update(status=outcome.status, assertions=outcome.assertions, error=outcome.error,
                   completed_ms=now, duration_ms=now - (doc["started_ms"] or now))  # fmt: skip
        await self._save(doc)
        event(log, logging.INFO, "browser check", run_id=doc["id"], status=outcome.status,
              test_type=doc["test_type"], duration_ms=doc["duration_ms"])  # fmt: skip


class BrowserTestRunClient(ObjectClient):
    @classmethod
    def for_run(cls, services: Services, run_id: str) -> BrowserTestRunClient:
        return cls(services.namespace(RUNS).get(run_id))

    async def start(self, spec: dict[str, Any]) -> RunView:
        return await self.invoke(BrowserTestRun.start, spec)

    async def get(self) -> RunView:
        return await self.invoke(BrowserTestRun.get)

    async def cancel(self) -> RunView:
        return await self.invoke(BrowserTestRun.cancel)

    async def wake(self) -> None:
        await self.invoke(BrowserTestRun.wake)
