"""ServerInstance: one per backend server; its health, driven by its own alarm.

Every check is `GET {url}/health` with a short timeout; a lapsed heartbeat TTL (once the server
has sent heartbeats) counts as a failed check. `tasks.health` decides the status and the next
interval. A status change is an event in the outbox, written with the new status: delivering it
records it in D1, pushes it to the registry and tells the tasks the server held when it went
down. Events of one server are delivered in order, and one that fails holds the next back, so
none is lost or overtaken (a status that changed twice while D1 was down lands twice, in order).

A heartbeat may list the tasks the server is working on: a task the registry holds for it that
the list leaves out twice (`ServerRegistry.report`) ends its attempt as `lost`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any, TypedDict, cast

import correlation
from clock import from_ms, rfc3339
from durable import document, outbox
from durable.base import AlarmInfo, DurableObjectLogic, rpc
from durable.document import Doc, Document
from durable.outbox import Effect, Outbox
from durable.rpc import ObjectClient
from durable.server_registry import ServerRegistryClient
from durable.task_manager import TaskManagerClient, hand_over
from ids import new_id
from logs import event, get_logger
from ports import HttpError, Statement
from services import Services
from tasks import settings as names
from tasks.health import Health, HealthState, observe
from tasks.settings import TaskSettings

log = get_logger("servers")
STATUS = "status"  # the outbox kind of a status change


class Beat(TypedDict):
    known: bool
    status: str | None


def _health(raw: dict[str, Any]) -> HealthState:
    return HealthState(
        status=Health(raw["status"]),
        passes=raw["passes"],
        failures=raw["failures"],
        interval_ms=raw["interval_ms"],
        changes_ms=tuple(raw["changes_ms"]),
        first=raw["first"],
    )


class ServerInstance(DurableObjectLogic):
    SCHEMA = (document.SCHEMA, outbox.SCHEMA)

    def on_start(self) -> None:
        super().on_start()
        self.settings = TaskSettings.from_config(self.services.config)
        self.doc = Document(self.ctx.storage)
        self.outbox = Outbox(self.ctx.storage, now_ms=self.now_ms, deliver={STATUS: self._publish})

    @rpc
    async def start(self, server_id: str, url: str, shard: int = 0) -> str:
        """Begin watching a newly registered server (in registry shard `shard`); returns its
        first status."""
        doc = {"id": server_id, "url": url, "health": asdict(HealthState()),
               "last_heartbeat_ms": None, "shard": shard}  # fmt: skip
        self.doc.save(doc)
        return await self._check(doc, reason_prefix="registration")

    @rpc
    async def stop(self) -> None:
        self.doc.delete()
        await self.ctx.storage.delete_alarm()

    @rpc
    async def heartbeat(self, fields: dict[str, Any]) -> Beat:
        doc = self.doc.load()
        if doc is None:
            return Beat(known=False, status=None)
        doc["last_heartbeat_ms"] = self.now_ms()
        self.doc.save(doc)
        registry = ServerRegistryClient.of(self.services, doc.get("shard", 0))
        report = await registry.report(doc["id"], fields)
        for task_id in report["lost"]:  # a later heartbeat reports them again if this fails
            await TaskManagerClient.for_task(self.services, task_id).server_lost(doc["id"], "lost")
        latest = self.doc.load()  # re-read: a check may have run while we waited
        status = None if latest is None else latest["health"]["status"]
        return Beat(known=report["known"], status=status)

    @rpc
    async def state(self) -> Doc | None:
        return self.doc.load()

    async def on_alarm(self, info: AlarmInfo) -> None:
        doc = self.doc.load()
        if doc is None:
            return  # deregistered
        with correlation.bound(f"health-{doc['id']}"):
            await self._check(doc, reason_prefix="check")

    async def _probe(self, doc: Doc) -> tuple[bool, bool, str]:
        """(passed, degraded, reason) of one active check plus the heartbeat TTL."""
        last = doc["last_heartbeat_ms"]
        if last is not None and self.now_ms() - last > self.settings.heartbeat_ttl_ms:
            return False, False, "heartbeat TTL expired"
        try:
            response = await self.services.http.request(
                "GET", f"{doc['url']}/health", timeout_s=self.settings.check_timeout_s
            )
        except HttpError as exc:
            return False, False, f"health check {exc.kind}"
        if not 200 <= response.status < 300:
            return False, False, f"health check answered {response.status}"
        try:
            degraded = json.loads(response.body).get("status") == "degraded"
        except (ValueError, AttributeError):
            degraded = False
        return True, degraded, "health check degraded" if degraded else "health check passed"

    async def _check(self, doc: Doc, *, reason_prefix: str) -> str:
        passed, degraded, reason = await self._probe(doc)
        latest = self.doc.load()  # re-read after the probe: a heartbeat may have landed
        if latest is None:
            return cast(str, doc["health"]["status"])  # removed while we checked
        now = self.now_ms()
        before = _health(latest["health"])
        after = observe(
            before, passed=passed, degraded=degraded, now_ms=now, policy=self.settings.health
        )
        latest["health"] = asdict(after)

        def write() -> None:
            self.doc.save(latest)
            if after.status != before.status:
                change = {"id": new_id(now, prefix="sev_"), "server_id": latest["id"],
                          "from": before.status.value, "to": after.status.value,
                          "reason": f"{reason_prefix}: {reason}", "at_ms": now,
                          "shard": latest.get("shard", 0)}  # fmt: skip
                self.outbox.put(Effect(change["id"], STATUS, json.dumps(change)))

        self.ctx.storage.transaction(write)
        await self.ctx.storage.set_alarm(now + after.interval_ms)
        await self.outbox.drain()
        due = self.outbox.next_due_ms()
        if due is not None and due < now + after.interval_ms:
            await self.ctx.storage.set_alarm(due)
        return after.status.value

    async def _publish(self, body: str) -> None:
        """Deliver one status change: D1, the registry, the tasks it held (all idempotent)."""
        change = json.loads(body)
        await self.services.database.batch(
            [
                Statement(
                    "INSERT INTO server_status_events (id, server_id, from_status, to_status,"
                    " reason, at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    (change["id"], change["server_id"], change["from"], change["to"],
                     change["reason"], rfc3339(from_ms(change["at_ms"]))),
                )
            ]
        )  # fmt: skip
        registry = ServerRegistryClient.of(self.services, change.get("shard", 0))
        outcome = await registry.set_status(change["server_id"], change["to"])
        for task_id in outcome["moved"]:
            await TaskManagerClient.for_task(self.services, task_id).server_lost(
                change["server_id"], "server_lost"
            )
        await hand_over(self.services, outcome["offers"])
        event(log, logging.INFO, "server status changed", server_id=change["server_id"],
              status=change["to"], previous=change["from"], reason=change["reason"],
              tasks_moved=len(outcome["moved"]),
              queued_tasks_started=len(outcome["offers"]))  # fmt: skip


class ServerInstanceClient(ObjectClient):
    @classmethod
    def for_server(cls, services: Services, server_id: str) -> ServerInstanceClient:
        return cls(services.namespace(names.INSTANCES).get(server_id))

    async def start(self, server_id: str, url: str, shard: int = 0) -> str:
        return await self.invoke(ServerInstance.start, server_id, url, shard)

    async def stop(self) -> None:
        await self.invoke(ServerInstance.stop)

    async def heartbeat(self, fields: dict[str, Any]) -> Beat:
        return await self.invoke(ServerInstance.heartbeat, fields)

    async def state(self) -> Doc | None:
        return await self.invoke(ServerInstance.state)
