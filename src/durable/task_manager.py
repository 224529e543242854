"""TaskManager: one per task; its lifecycle, driven by RPC and its alarm.

The task lives in this object's storage as one document plus its attempts. What follows from
each event is decided by `tasks.lifecycle` (pure) and applied here in one transaction, with its
effects in the outbox: freeing the server slot, the D1 projection, telling a server its task
was cancelled. After every outbound call (the registry, the dispatch) the document is read
again before anything is decided: on Cloudflare other events (a callback, a cancel) may have
run meanwhile.

A task is dispatched in the event that gives it a server (its creation, an offer, its alarm),
not on an alarm after it; the alarm is for deadlines, retries and the outbox. A task no server
can take is queued by the registry and offered the next slot that frees; its alarm asks again
only every `TASK_WAIT_RECHECK_S`, in case an offer was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any, TypedDict

import correlation
from durable import document, outbox
from durable.base import AlarmInfo, DurableObjectLogic, rpc
from durable.document import Doc, Document
from durable.outbox import Effect, Outbox
from durable.registry_shards import ServerRegistries
from durable.rpc import ObjectClient
from durable.server_registry import Offer, Slot
from errors import NotFound
from ids import new_id
from logs import event, get_logger
from ports import HttpError
from services import Services
from tasks import lifecycle, records
from tasks import settings as names
from tasks.lifecycle import CANCEL, PROJECT, RELEASE, Answer, Step
from tasks.settings import TaskSettings
from tasks.states import IN_FLIGHT, TERMINAL, TaskStatus

log = get_logger("tasks")
CANCEL_TRIES = 3  # telling a server is best effort
ATTEMPTS = """CREATE TABLE IF NOT EXISTS attempts (
    n INTEGER PRIMARY KEY, server_id TEXT NOT NULL, lease_id TEXT NOT NULL,
    started_ms INTEGER NOT NULL, ended_ms INTEGER, outcome TEXT, error TEXT)"""

type TaskView = dict[str, Any]


class Created(TypedDict):
    task: TaskView
    created: bool


class TaskManager(DurableObjectLogic):
    SCHEMA = (document.SCHEMA, ATTEMPTS, outbox.SCHEMA)

    def on_start(self) -> None:
        super().on_start()
        self.settings = TaskSettings.from_config(self.services.config)
        self.rules = lifecycle.Settings(
            wait_recheck_ms=self.settings.wait_recheck_ms,
            dispatch_tries=self.settings.dispatch_tries,
            listing_grace_ms=int(self.settings.dispatch_timeout_s * 1000),
        )
        self.doc = Document(self.ctx.storage)
        self.registries = ServerRegistries(self.services)
        self._moving = 0
        self.outbox = Outbox(
            self.ctx.storage,
            now_ms=self.now_ms,
            deliver={RELEASE: self._release, PROJECT: self._project, CANCEL: self._tell_cancel},
            max_tries={CANCEL: CANCEL_TRIES},
        )

    # --- storage ---

    def _attempts(self) -> list[dict[str, Any]]:
        return self.ctx.storage.exec(
            "SELECT n, server_id, lease_id, started_ms, ended_ms, outcome, error"
            " FROM attempts ORDER BY n"
        )

    def _view(self, doc: Doc) -> TaskView:
        return records.view(doc, self._attempts())

    def _load(self) -> Doc:
        doc = self.doc.load()
        if doc is None:
            raise NotFound("no such task")
        return doc

    async def _apply(self, step: Step, *, deliver: bool = True) -> Doc:
        """Write what `step` decided (one transaction), then deliver its effects. The alarm is
        set from what is stored before the delivery's awaits (so a crash in them leaves an
        alarm for the outbox) and again after (so a delivered outbox leaves none behind).
        `deliver=False` leaves the delivery to the next step's (a dispatch follows at once)."""
        storage = self.ctx.storage

        def write() -> None:
            if step.opened is not None:
                o = step.opened
                storage.exec(
                    "INSERT INTO attempts (n, server_id, lease_id, started_ms) VALUES (?, ?, ?, ?)",
                    o.n, o.server_id, o.lease_id, o.started_ms,
                )  # fmt: skip
            if step.closed is not None:
                c = step.closed
                storage.exec(
                    "UPDATE attempts SET ended_ms = ?, outcome = ?, error = ?"
                    " WHERE n = ? AND ended_ms IS NULL",
                    c.ended_ms, c.outcome, (c.error or "")[: records.ERROR_EXCERPT] or None, c.n,
                )  # fmt: skip
            if step.changed:
                self.doc.save(step.doc)
            self.outbox.put(*(self._effect(kind, step.doc) for kind in step.effects))

        if step.changed or step.effects or step.opened or step.closed:
            storage.transaction(write)
        await self._arm(outbox=deliver)
        if deliver:
            await self.outbox.drain()
            await self._arm()
        return step.doc

    def _effect(self, kind: str, doc: Doc) -> Effect:
        if kind == RELEASE:  # the slot, or the place in a queue, is in this registry shard
            queued_at = doc.get("queued_at")
            shard = queued_at if queued_at is not None else doc.get("shard", 0)
            body = json.dumps({"attempt": doc["attempt"], "shard": shard})
            return Effect(f"release:{doc['attempt']}", RELEASE, body)
        if kind == CANCEL:
            body = json.dumps({"url": doc["server_url"], "lease": doc["lease_id"]})
            return Effect(f"cancel:{doc['attempt']}", CANCEL, body)
        return Effect(PROJECT, PROJECT)

    async def _arm(self, *, outbox: bool = True) -> None:
        """The alarm at the stored document's `wake_ms` or the outbox's next retry, whichever
        is first, or none; derived from storage, so whichever event arms last is right.
        `outbox=False` while this event will still deliver the outbox itself."""
        doc = self.doc.load()
        wake = None if doc is None else doc.get("wake_ms")
        due = [t for t in (wake, self.outbox.next_due_ms() if outbox else None) if t is not None]
        target = min(due) if due else None
        if target == await self.ctx.storage.get_alarm():
            return
        if target is None:
            await self.ctx.storage.delete_alarm()
        else:
            await self.ctx.storage.set_alarm(target)

    # --- RPC ---

    @rpc
    async def create(self, spec: dict[str, Any]) -> Created:
        """Create the task once and hand it to a server (or the registry's queue); a repeated
        call returns it as it is."""
        existing = self.doc.load()
        if existing is not None:
            return Created(task=self._view(existing), created=False)
        new = lifecycle.new_task(spec, self.now_ms())
        with correlation.bound(new.doc["correlation_id"]):
            with self._placing():
                slot, shard = await self._acquire(new.doc)
            won = self.doc.load()
            if won is not None:  # the same task created meanwhile: its slot is this one
                return Created(task=self._view(won), created=False)
            doc = await self._settle(new.doc, slot, shard, first=new)
        return Created(task=self._view(doc), created=True)

    @rpc
    async def offer(self, attempt: int, server: Slot) -> None:
        """The registry gave the queued task a slot: take it (dispatching at once), or give it
        back when the task has moved on (cancelled while queued)."""
        doc = self._load()
        if doc["attempt"] == attempt and TaskStatus(doc["status"]) in IN_FLIGHT:
            return  # it asked again before the offer came, and holds this slot already
        if doc["status"] == TaskStatus.PENDING.value and doc["attempt"] + 1 == attempt:
            with correlation.bound(doc["correlation_id"]):
                await self._settle(doc, server, server["shard"])
            return
        registry = self.registries.shard(server["shard"])
        offers = await registry.release(doc["id"], attempt)
        await hand_over(self.services, offers)

    @rpc
    async def get(self) -> TaskView:
        return self._view(self._load())

    @rpc
    async def update(
        self, server_id: str | None, lease_id: str | None, change: dict[str, Any]
    ) -> TaskView:
        """`PUT /api/task/{id}`; `server_id` is set when a server's credential calls."""
        doc = self._load()
        step = lifecycle.reported(doc, server_id, lease_id, change, self.now_ms())
        return self._view(await self._apply(step))

    @rpc
    async def server_lost(self, server_id: str, outcome: str) -> bool:
        """The server holding the task went down (`server_lost`) or stopped listing it
        (`lost`); False when the task is not (or no longer) on that server. The task goes to
        another server in this same event."""
        doc, now = self._load(), self.now_ms()
        step = lifecycle.server_lost(doc, server_id, now, self.rules, outcome=outcome)
        if not step.changed:
            return False
        with correlation.bound(doc["correlation_id"]):
            doc = await self._apply(step)
            if doc["status"] == TaskStatus.PENDING.value:
                await self._assign(doc)
        return True

    # --- the alarm: move the task along ---

    async def on_alarm(self, info: AlarmInfo) -> None:
        doc = self.doc.load()
        if doc is None:
            return
        with correlation.bound(doc["correlation_id"]):
            if TaskStatus(doc["status"]) in TERMINAL or self._moving:
                # Only effects left over, or another event is placing or dispatching the task
                # right now (it arms the alarm again when it is done).
                await self._apply(Step(doc, changed=False))
                return
            timed_out = lifecycle.deadline_passed(doc, self.now_ms())
            if timed_out is not None:
                doc = await self._apply(timed_out)
            if doc["status"] == TaskStatus.PENDING.value:
                await self._assign(doc, inline=True)
            elif doc["phase"] == "dispatching":
                await self._dispatch(doc)
            else:
                await self._arm()

    # --- a server for the task, and the dispatch ---

    async def _acquire(self, doc: Doc) -> tuple[Slot | None, int]:
        """A slot, or the registry shard the task now waits in."""
        return await self.registries.acquire(
            doc["id"], doc["attempt"] + 1, doc["priority"], doc["required"], doc["exclude"],
            at=doc.get("queued_at"),
        )  # fmt: skip

    @contextlib.contextmanager
    def _placing(self) -> Iterator[None]:
        """While an event asks the registry or dispatches, the alarm leaves the task to it."""
        self._moving += 1
        try:
            yield
        finally:
            self._moving -= 1

    async def _assign(self, doc: Doc, *, inline: bool = False) -> Doc:
        """Ask the registry for a server for the stored, pending task."""
        with self._placing():
            return await self._assign_now(doc, inline=inline)

    async def _assign_now(self, doc: Doc, *, inline: bool) -> Doc:
        attempt = doc["attempt"] + 1
        slot, shard = await self._acquire(doc)
        latest = self._load()
        if latest["status"] != TaskStatus.PENDING.value or latest["attempt"] + 1 != attempt:
            if slot is not None:  # the task moved on while we asked (a cancel): free it
                registry = self.registries.shard(shard)
                await hand_over(self.services, await registry.release(doc["id"], attempt))
            return latest
        return await self._settle(latest, slot, shard, inline=inline)

    async def _settle(
        self,
        doc: Doc,
        slot: Slot | None,
        shard: int,
        *,
        first: Step | None = None,
        inline: bool = False,
    ) -> Doc:
        """The registry's answer for a pending task: dispatch to the server it gave, or wait
        in its queue. `first` is a step of this same event not yet written (the creation).
        The dispatch runs after this event answers (a slow backend holds no caller), unless
        `inline` (the alarm's own retries, which must end before the alarm does)."""
        now = self.now_ms()
        if slot is None:
            step = lifecycle.waiting({**doc, "queued_at": shard}, now, self.rules)
            return await self._apply(step if first is None else lifecycle.then(first, step))
        lease = new_id(now, prefix="lse_")
        doc = {**doc, "shard": shard, "queued_at": None}
        step = lifecycle.assigned(doc, {"id": slot["id"], "url": slot["url"]}, lease, now)
        doc = await self._apply(step if first is None else lifecycle.then(first, step),
                                deliver=False)  # fmt: skip
        if inline:
            await self._dispatch(doc)
        else:
            self._dispatch_after(doc)
        return self._load()

    async def _dispatch(self, doc: Doc) -> None:
        with self._placing():
            await self._dispatch_now(doc)

    def _dispatch_after(self, doc: Doc) -> None:
        """Dispatch once this event has answered. The guard is up from now, so an alarm in
        between leaves the task to it; the stored deadline alarm covers a crash before it ends."""
        self._moving += 1

        async def dispatch() -> None:
            try:
                with correlation.bound(doc["correlation_id"]):
                    await self._dispatch_now(doc)
            finally:
                self._moving -= 1

        self.ctx.wait_until(dispatch())

    async def _dispatch_now(self, doc: Doc) -> None:
        remaining_s = (doc["deadline_ms"] - self.now_ms()) / 1000
        body = {
            "id": doc["id"],
            "type": doc["type"],
            "payload": doc["payload"],
            "attempt": doc["attempt"],
            "lease_id": doc["lease_id"],
            "timeout_s": doc["timeout_s"],
            "callback_url": f"{self.settings.public_url}/api/task/{doc['id']}",
        }
        try:
            response = await self.services.http.request(
                "POST",
                f"{doc['server_url']}/tasks",
                json=body,
                headers={"X-Apiary-Lease": doc["lease_id"]},
                timeout_s=max(0.1, min(self.settings.dispatch_timeout_s, remaining_s)),
            )
            # Only the status: a peer's body never lands in a task (readable with tasks:read).
            answer = Answer(response.status, response.headers.get("retry-after"))
        except HttpError as exc:
            answer = Answer(failure=exc.kind, detail=str(exc))
        latest = self._load()  # a callback or a cancel may have landed while we waited
        step = lifecycle.dispatched(latest, doc["lease_id"], answer, self.now_ms(), self.rules)
        if step.changed and step.doc["phase"] == "dispatching":
            event(log, logging.INFO, "dispatch retry", task_id=doc["id"], status=answer.status,
                  failure=answer.failure, at_ms=step.doc["wake_ms"])  # fmt: skip
        await self._apply(step)

    # --- effects (the outbox's deliveries) ---

    async def _release(self, body: str) -> None:
        doc, where = self._load(), json.loads(body)
        if isinstance(where, int):  # written before the registry had shards
            where = {"attempt": where, "shard": 0}
        registry = self.registries.shard(where["shard"])
        offers = await registry.release(doc["id"], where["attempt"])
        await hand_over(self.services, offers)

    async def _project(self, _: str) -> None:
        doc = self._load()
        await self.services.database.batch(records.projection(doc, self._attempts()))

    async def _tell_cancel(self, body: str) -> None:
        """Best effort: the server that holds a cancelled task may stop working on it."""
        where, doc = json.loads(body), self._load()
        response = await self.services.http.request(
            "POST",
            f"{where['url']}/tasks/{doc['id']}/cancel",
            headers={"X-Apiary-Lease": where["lease"]},
            timeout_s=self.settings.dispatch_timeout_s,
        )
        if response.status >= 500:
            raise RuntimeError(f"cancel answered HTTP {response.status}")


async def hand_over(services: Services, offers: list[Offer]) -> None:
    """Tell queued tasks the slots the registry gave them, all at once. Best effort: a task
    that misses its offer finds the slot when it asks again (`acquire` returns what it holds)."""

    async def tell(offer: Offer) -> None:
        task = TaskManagerClient.for_task(services, offer["task_id"])
        try:
            await task.offer(offer["attempt"], offer["server"])
        except Exception as exc:
            event(log, logging.WARNING, "offer not delivered; the task will ask again",
                  task_id=offer["task_id"], error=str(exc))  # fmt: skip

    await asyncio.gather(*(tell(offer) for offer in offers))


class TaskManagerClient(ObjectClient):
    @classmethod
    def for_task(cls, services: Services, task_id: str) -> TaskManagerClient:
        return cls(services.namespace(names.TASKS).get(task_id))

    async def create(self, spec: dict[str, Any]) -> Created:
        return await self.invoke(TaskManager.create, spec)

    async def get(self) -> TaskView:
        return await self.invoke(TaskManager.get)

    async def update(
        self, server_id: str | None, lease_id: str | None, change: dict[str, Any]
    ) -> TaskView:
        return await self.invoke(TaskManager.update, server_id, lease_id, change)

    async def offer(self, attempt: int, server: Slot) -> None:
        await self.invoke(TaskManager.offer, attempt, server)

    async def server_lost(self, server_id: str, outcome: str) -> bool:
        return await self.invoke(TaskManager.server_lost, server_id, outcome)
