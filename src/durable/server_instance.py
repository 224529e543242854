"""ServerInstance: one per backend server; its health, driven by its own alarm.

Every check is `GET {url}/health` with a short timeout; a lapsed heartbeat TTL (once the server
has sent heartbeats) counts as a failed check. `tasks.health` decides the status and the next
interval. A status change is recorded in D1 and pushed to the registry; when the server goes
down, the tasks it held are told so they can move. Those effects are retried until done
(`pending_status`), so a crash between them loses none.
"""

import json
import logging
from dataclasses import asdict
from typing import Any

import correlation
from clock import from_ms, rfc3339
from durable.base import AlarmInfo, DurableObjectLogic, rpc
from ids import new_id
from logs import event, get_logger
from ports import HttpError, Statement
from tasks import settings as names
from tasks.health import Health, HealthState, observe
from tasks.settings import TaskSettings

log = get_logger("servers")
_SCHEMA = "CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT)"


def _load_health(raw: dict[str, Any]) -> HealthState:
    return HealthState(
        status=Health(raw["status"]),
        passes=raw["passes"],
        failures=raw["failures"],
        interval_ms=raw["interval_ms"],
        changes_ms=tuple(raw["changes_ms"]),
        first=raw["first"],
    )


class ServerInstance(DurableObjectLogic):
    def on_start(self) -> None:
        self.ctx.storage.exec(_SCHEMA)
        self.settings = TaskSettings.from_config(self.ctx.services.config)

    def _doc(self) -> dict[str, Any] | None:
        rows = self.ctx.storage.exec("SELECT doc FROM state WHERE id = 1")
        return json.loads(rows[0]["doc"]) if rows else None

    def _save(self, doc: dict[str, Any]) -> None:
        self.ctx.storage.exec(
            "INSERT INTO state (id, doc) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            json.dumps(doc),
        )

    def _now(self) -> int:
        return self.ctx.services.clock.now_ms()

    @rpc
    async def start(self, server_id: str, url: str) -> str:
        """Begin watching a newly registered server; returns its first status."""
        health = HealthState()
        doc = {
            "id": server_id,
            "url": url,
            "health": asdict(health),
            "last_heartbeat_ms": None,
            "pending_status": None,
        }
        self._save(doc)
        await self._check(doc, reason_prefix="registration")
        return doc["health"]["status"]

    @rpc
    async def stop(self) -> None:
        self.ctx.storage.exec("DELETE FROM state")
        await self.ctx.storage.delete_alarm()

    @rpc
    async def heartbeat(self, fields: dict[str, Any]) -> dict[str, Any]:
        doc = self._doc()
        if doc is None:
            return {"known": False}
        doc["last_heartbeat_ms"] = self._now()
        self._save(doc)
        registry = self.ctx.services.namespace(names.REGISTRY).get("global")
        known = await registry.call("report", doc["id"], fields)
        return {"known": known, "status": doc["health"]["status"]}

    @rpc
    async def state(self) -> dict[str, Any] | None:
        return self._doc()

    async def on_alarm(self, info: AlarmInfo) -> None:
        doc = self._doc()
        if doc is None:
            return  # deregistered
        token = correlation.bind(f"health-{doc['id']}")
        try:
            await self._check(doc, reason_prefix="check")
        finally:
            correlation.reset(token)

    async def _probe(self, doc: dict[str, Any]) -> tuple[bool, bool, str]:
        """(passed, degraded, reason) of one active check plus the heartbeat TTL."""
        now = self._now()
        last = doc["last_heartbeat_ms"]
        if last is not None and now - last > self.settings.heartbeat_ttl_ms:
            return False, False, "heartbeat TTL expired"
        try:
            response = await self.ctx.services.http.request(
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

    async def _check(self, doc: dict[str, Any], *, reason_prefix: str) -> None:
        passed, degraded, reason = await self._probe(doc)
        now = self._now()
        before = _load_health(doc["health"])
        after = observe(
            before, passed=passed, degraded=degraded, now_ms=now, policy=self.settings.health
        )
        doc["health"] = asdict(after)
        if after.status != before.status:
            doc["pending_status"] = {
                "id": new_id(now, prefix="sev_"),
                "from": before.status.value,
                "to": after.status.value,
                "reason": f"{reason_prefix}: {reason}",
                "at_ms": now,
            }
        self._save(doc)
        await self.ctx.storage.set_alarm(now + after.interval_ms)
        await self._publish(doc)

    async def _publish(self, doc: dict[str, Any]) -> None:
        """Record the pending status change in D1, the registry and the affected tasks."""
        change = doc["pending_status"]
        if change is None:
            return
        await self.ctx.services.database.batch(
            [
                Statement(
                    "INSERT INTO server_status_events (id, server_id, from_status, to_status,"
                    " reason, at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    (
                        change["id"],
                        doc["id"],
                        change["from"],
                        change["to"],
                        change["reason"],
                        rfc3339(from_ms(change["at_ms"])),
                    ),
                )
            ]
        )
        registry = self.ctx.services.namespace(names.REGISTRY).get("global")
        lost = await registry.call("set_status", doc["id"], change["to"])
        tasks = self.ctx.services.namespace(names.TASKS)
        for task_id in lost:
            await tasks.get(task_id).call("server_lost", doc["id"])
        event(
            log,
            logging.INFO,
            "server status changed",
            server_id=doc["id"],
            status=change["to"],
            previous=change["from"],
            reason=change["reason"],
            tasks_moved=len(lost),
        )
        doc["pending_status"] = None
        self._save(doc)
