"""FleetWatch: one per account; which limits are in warning, and their alerts.

The hourly poll computes the readings and calls `observe` only when the set in warning
differs from what D1 last recorded (`fleet_limits`, this object's projection), so a steady
hour costs no request here. The object is the source of truth: it compares with its own
record (`fleet.limits.crossings`), so a crossing is alerted once however often it is
reported, and a limit that falls back below is recorded (and said) once too.
"""

from __future__ import annotations

import logging
from typing import Any

import alerts
from clock import rfc3339_ms
from durable import document, outbox
from durable.base import AlarmInfo, DurableObjectLogic, rpc
from durable.document import Document
from durable.outbox import Effect, Outbox
from durable.rpc import ObjectClient
from fleet import limits
from fleet.limits import Reading
from fleet.settings import WATCH
from logs import event, get_logger
from ports import Statement
from services import Services

log = get_logger("fleet.limits")
PROJECT = "project"
NAME = "account"


def _message(crossing: limits.Crossing, environment: str) -> dict[str, Any]:
    r = crossing.reading
    pct = f"{100 * r.ratio:.0f}%"
    if crossing.up:
        text = f":warning: fleet limit `{r.name}` at {pct}: {r.used} of {r.limit} ({environment})"
    else:
        text = f":white_check_mark: fleet limit `{r.name}` back to {pct} ({environment})"
    return alerts.slack_body(
        text,
        {"kind": "limit_warning" if crossing.up else "limit_cleared", "limit": r.name,
         "used": r.used, "max": r.limit, "environment": environment},
    )  # fmt: skip


class FleetWatch(DurableObjectLogic):
    SCHEMA = (document.SCHEMA, outbox.SCHEMA)

    def on_start(self) -> None:
        super().on_start()
        self.doc = Document(self.ctx.storage)
        self.outbox = Outbox(
            self.ctx.storage,
            now_ms=self.now_ms,
            deliver={PROJECT: self._project, alerts.KIND: alerts.sender(self.services)},
            max_tries={alerts.KIND: alerts.TRIES},
        )

    @rpc
    async def observe(self, readings: list[dict[str, Any]]) -> dict[str, Any]:
        found = [Reading(str(r["name"]), int(r["used"]), int(r["limit"])) for r in readings]
        doc = self.doc.load() or {"warned": [], "readings": []}
        due = limits.crossings(doc["warned"], found)
        now = self.now_ms()
        doc.update(warned=limits.in_warning(found), readings=readings, at_ms=now)
        environment = self.services.config.environment

        def write() -> None:
            self.doc.save(doc)
            self.outbox.put(Effect(f"project:{doc['version']}", PROJECT))
            for crossing in due:
                self.outbox.put(alerts.effect(now, _message(crossing, environment)))

        self.ctx.storage.transaction(write)
        for crossing in due:
            event(log, logging.WARNING, "fleet limit crossed", limit=crossing.name,
                  up=crossing.up, used=crossing.reading.used,
                  max=crossing.reading.limit)  # fmt: skip
        await self._drain()
        return {"warned": doc["warned"], "alerts": len(due)}

    async def on_alarm(self, info: AlarmInfo) -> None:
        await self._drain()

    async def _drain(self) -> None:
        await self.outbox.drain()
        due = self.outbox.next_due_ms()
        if due is not None:
            await self.ctx.storage.set_alarm(due)

    async def _project(self, _: str) -> None:
        doc = self.doc.load()
        if doc is None:
            return
        at = rfc3339_ms(doc["at_ms"])
        statements = []
        for r in doc["readings"]:
            reading = Reading(str(r["name"]), int(r["used"]), int(r["limit"]))
            statements.append(
                Statement(
                    "INSERT INTO fleet_limits (name, warning, used, max, changed_at) VALUES"
                    " (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET warning ="
                    " excluded.warning, used = excluded.used, max = excluded.max,"
                    " changed_at = excluded.changed_at",
                    (reading.name, int(reading.warning), reading.used, reading.limit, at),
                )
            )
        if statements:
            await self.services.database.batch(statements)


class FleetWatchClient(ObjectClient):
    @classmethod
    def of(cls, services: Services) -> FleetWatchClient:
        return cls(services.namespace(WATCH).get(NAME))

    async def observe(self, readings: list[dict[str, Any]]) -> dict[str, Any]:
        return await self.invoke(FleetWatch.observe, readings)
