"""WorkerHealth: one per managed Worker; `GET {url}/health` on its own alarm, every
`FLEET_HEALTH_INTERVAL_S` (300) seconds.

Checks run on a grid (`fleet.health.Grid`: origin + k * interval). A check that confirms the
status writes nothing but its next alarm; a change is one document write with its effects in
the outbox (a D1 event row, the inventory's status, one alert when a Worker goes unhealthy or
recovers), delivered at once or, failing that, at the next check. At the first check of each
hour the object writes that hour's checks and failures to D1 (`worker_health_hours`), derived
from the grid and the changes, so a day of checks costs about 288 alarms and their 288 rows,
24 hour rows, and a few rows per change.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypedDict

import alerts
import correlation
from clock import from_ms, rfc3339, rfc3339_ms
from durable import document, outbox
from durable.base import AlarmInfo, DurableObjectLogic, rpc
from durable.document import Doc, Document
from durable.outbox import Effect, Outbox
from durable.rpc import ObjectClient
from errors import NotFound
from fleet import health
from fleet.health import Change, Grid, Probe, Status
from fleet.settings import HEALTH, FleetSettings
from ids import new_id
from logs import event, get_logger
from ports import HttpError, Statement
from services import Services

log = get_logger("fleet.health")
CHANGE = "change"  # the outbox kind of a status change


class Checked(TypedDict):
    worker: str
    status: str
    checked_at: str | None


def _changes(doc: Doc) -> list[Change]:
    return [Change(c["at_ms"], Status(c["status"]), c["reason"]) for c in doc["changes"]]


def _alert(name: str, environment: str, change: Change, before: Status) -> dict[str, Any] | None:
    """Going unhealthy and recovering alert; a new Worker's first `healthy` does not."""
    if change.status == Status.UNHEALTHY:
        text = f":red_circle: Worker `{name}` is unhealthy ({environment}): {change.reason}"
    elif before == Status.UNHEALTHY:
        text = f":large_green_circle: Worker `{name}` recovered ({environment}): {change.reason}"
    else:
        return None
    return alerts.slack_body(
        text,
        {"kind": f"worker_{change.status.value}", "worker": name, "environment": environment,
         "from": before.value, "to": change.status.value, "reason": change.reason},
    )  # fmt: skip


class WorkerHealth(DurableObjectLogic):
    SCHEMA = (document.SCHEMA, outbox.SCHEMA)

    def on_start(self) -> None:
        super().on_start()
        self.settings = FleetSettings.of(self.services.config)
        self.doc = Document(self.ctx.storage)
        self.outbox = Outbox(
            self.ctx.storage,
            now_ms=self.now_ms,
            deliver={CHANGE: self._publish, alerts.KIND: alerts.sender(self.services)},
            max_tries={alerts.KIND: alerts.TRIES},
        )
        self._last_on_demand_ms: int | None = None  # a cache: the grid says the rest

    def _grid(self, doc: Doc) -> Grid:
        return Grid(doc["origin_ms"], doc["interval_ms"])

    @rpc
    async def start(self, name: str, url: str) -> dict[str, int]:
        """Watch `url` from now on: the first check runs at once (from the alarm)."""
        now = self.now_ms()
        interval = self.settings.health_interval_ms
        doc: Doc = {"name": name, "url": url.rstrip("/"), "origin_ms": now,
                    "interval_ms": interval, "status": Status.UNKNOWN.value,
                    "changes": []}  # fmt: skip
        self.doc.save(doc)
        await self.ctx.storage.set_alarm(now)
        return {"origin_ms": now, "interval_ms": interval}

    @rpc
    async def stop(self) -> None:
        self.doc.delete()
        await self.ctx.storage.delete_alarm()

    @rpc
    async def check_now(self) -> Checked:
        doc = self.doc.load()
        if doc is None:
            raise NotFound("this Worker's health is not watched")
        probe = await self._probe(doc["url"])
        now = self.now_ms()
        self._last_on_demand_ms = now
        await self._apply(probe, now)
        latest = self.doc.load()
        status = latest["status"] if latest else doc["status"]
        return Checked(worker=doc["name"], status=status, checked_at=rfc3339_ms(now))

    @rpc
    async def state(self) -> dict[str, Any] | None:
        doc = self.doc.load()
        if doc is None:
            return None
        alarm = await self.ctx.storage.get_alarm()
        scheduled = None if alarm is None else alarm - doc["interval_ms"]
        if scheduled is not None and scheduled < doc["origin_ms"]:
            scheduled = None  # the first check has not run yet
        last = max((t for t in (scheduled, self._last_on_demand_ms) if t is not None),
                   default=None)  # fmt: skip
        return {
            "status": doc["status"],
            "url": doc["url"],
            "interval_s": doc["interval_ms"] / 1000,
            "last_check_at": rfc3339_ms(last),
            "next_check_at": rfc3339_ms(alarm),
            "changes": [
                {"at": rfc3339_ms(c["at_ms"]), "status": c["status"], "reason": c["reason"]}
                for c in doc["changes"][-20:]
            ],
        }

    async def on_alarm(self, info: AlarmInfo) -> None:
        doc = self.doc.load()
        if doc is None:
            return  # no longer managed
        grid = self._grid(doc)
        slot_ms = grid.at(max(0, grid.slot(self.now_ms())))
        with correlation.bound(f"health-{doc['name']}"):
            probe = await self._probe(doc["url"])
            await self._apply(probe, slot_ms)
            latest = self.doc.load()  # re-read: stop() may have run during the probe
            if latest is None:
                return
            # The next check is the next alarm; a delivery that failed waits for it (at most
            # one interval), so retries cost no extra alarms.
            await self.ctx.storage.set_alarm(grid.next_after(self.now_ms()))
            await self.outbox.drain()
            await self._write_hours(latest, grid, slot_ms)

    async def _probe(self, url: str) -> Probe:
        try:
            response = await self.services.http.request(
                "GET", f"{url}/health", timeout_s=self.settings.health_timeout_s
            )
        except HttpError as exc:
            return health.verdict(None, "timed out" if exc.kind == "timeout" else exc.kind)
        return health.verdict(response.status)

    async def _apply(self, probe: Probe, at_ms: int) -> None:
        """Fold one check into the state; a change is written with its effects, then sent."""
        doc = self.doc.load()  # re-read after the probe's await
        if doc is None:
            return
        before = Status(doc["status"])
        change = health.observe(before, probe, at_ms)
        if change is None:
            return
        kept = health.prune([*_changes(doc), change], at_ms - 3 * self.settings.health_bucket_ms)
        doc.update(status=change.status.value, changes=[
            {"at_ms": c.at_ms, "status": c.status.value, "reason": c.reason} for c in kept
        ])  # fmt: skip
        body = {"id": new_id(at_ms, prefix="whe_"), "worker": doc["name"],
                "from": before.value, "to": change.status.value, "reason": change.reason,
                "at_ms": at_ms}  # fmt: skip
        message = _alert(doc["name"], self.services.config.environment, change, before)

        def write() -> None:
            self.doc.save(doc)
            self.outbox.put(Effect(body["id"], CHANGE, json.dumps(body)))
            if message is not None:
                self.outbox.put(alerts.effect(at_ms, message))

        self.ctx.storage.transaction(write)
        event(log, logging.INFO, "worker health changed", worker=doc["name"],
              status=change.status.value, previous=before.value, reason=change.reason)  # fmt: skip
        await self.outbox.drain()

    async def _publish(self, body: str) -> None:
        change = json.loads(body)
        at = rfc3339(from_ms(change["at_ms"]))
        await self.services.database.batch(
            [
                Statement(
                    "INSERT INTO worker_health_events (id, worker, from_status, to_status,"
                    " reason, at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    (change["id"], change["worker"], change["from"], change["to"],
                     change["reason"], at),
                ),
                Statement(
                    "UPDATE workers SET health_status = ?, health_changed_at = ? WHERE name = ?"
                    " AND (health_changed_at IS NULL OR health_changed_at <= ?)",
                    (change["to"], at, change["worker"], at),
                ),
            ]
        )  # fmt: skip

    async def _write_hours(self, doc: Doc, grid: Grid, slot_ms: int) -> None:
        """At the first check of an hour: the hours just closed, to D1 (an unchanged row
        writes nothing; a failed write is made again an hour later)."""
        length = self.settings.health_bucket_ms
        starts = health.closed_buckets(grid, slot_ms, length)
        if not starts:
            return
        changes = _changes(doc)
        statements = []
        for start in starts:
            bucket = health.bucket(grid, changes, start, length, slot_ms - 1)
            statements.append(
                Statement(
                    "INSERT INTO worker_health_hours (worker, hour, checks, failures)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (worker, hour) DO UPDATE SET"
                    " checks = excluded.checks, failures = excluded.failures"
                    " WHERE checks != excluded.checks OR failures != excluded.failures",
                    (doc["name"], rfc3339_ms(start), bucket.checks, bucket.failures),
                )
            )
        try:
            await self.services.database.batch(statements)
        except Exception as exc:  # the next hour writes it again
            event(log, logging.WARNING, "health hours not written", worker=doc["name"],
                  error=str(exc))  # fmt: skip


class WorkerHealthClient(ObjectClient):
    @classmethod
    def of(cls, services: Services, worker: str) -> WorkerHealthClient:
        return cls(services.namespace(HEALTH).get(worker))

    async def start(self, name: str, url: str) -> dict[str, int]:
        return await self.invoke(WorkerHealth.start, name, url)

    async def stop(self) -> None:
        await self.invoke(WorkerHealth.stop)

    async def check_now(self) -> Checked:
        return await self.invoke(WorkerHealth.check_now)

    async def state(self) -> dict[str, Any] | None:
        return await self.invoke(WorkerHealth.state)
