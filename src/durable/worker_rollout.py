"""WorkerRollout: one per managed Worker; its health-gated gradual rollout, step by step on
its alarm.

A rollout is a document with a phase: `deploying` (put the step's split in place through the
API), `observing` (wait out the step's interval), then judge it (`fleet.rollout.decide` on
each version's errors from analytics and its `/health` probed through the version-override
header), and `rolling_back` (the stable version at 100%). Every phase is one alarm's work and
idempotent, so a crash anywhere resumes where it was: the alarm is persisted and the document
says what is left to do. Only the alarm talks to Cloudflare; `abort` only records the wish and
wakes the alarm, so a deployment in flight can never overtake the rollback.

Effects go through the outbox: the D1 projection (`fleet_rollouts` and the inventory's
deployment and status), an audit row per step, and one alert when a rollout rolls back.
A second rollout of the same Worker while one runs is a 409.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import alerts
import correlation
from cfapi.analytics import Analytics
from cfapi.client import CloudflareApi
from cfapi.workers import WorkersApi
from clock import from_ms, rfc3339_ms
from durable import document, outbox
from durable.base import AlarmInfo, DurableObjectLogic, rpc
from durable.document import Doc, Document
from durable.outbox import Effect, Outbox
from durable.rpc import ObjectClient
from errors import Conflict, NotFound, Upstream
from fleet import audit, rollout_records
from fleet.rollout import PROBES_PER_VERSION, Decision, Policy, Sample, Verdict, decide, split
from fleet.settings import ROLLOUTS
from ids import new_id
from logs import event, get_logger
from ports import HttpError
from services import Services

log = get_logger("fleet.rollout")
PROJECT, AUDIT = "project", "audit"
OVERRIDES = "Cloudflare-Workers-Version-Overrides"
API_FAILURES_BEFORE_ROLLBACK = 5
RETRY_MS = 5_000
PROBE_TIMEOUT_S = 10
KEEP_HISTORY = 50


def _policy(doc: Doc) -> Policy:
    p = doc["policy"]
    return Policy(
        steps=tuple(p["steps"]),
        step_interval_ms=p["step_interval_ms"],
        max_error_rate=p["max_error_rate"],
        min_requests=p["min_requests"],
        max_holds=p["max_holds"],
    )


class WorkerRollout(DurableObjectLogic):
    SCHEMA = (document.SCHEMA, outbox.SCHEMA)

    def on_start(self) -> None:
        super().on_start()
        self.doc = Document(self.ctx.storage)
        self.outbox = Outbox(
            self.ctx.storage,
            now_ms=self.now_ms,
            deliver={PROJECT: self._project, AUDIT: self._audit,
                     alerts.KIND: alerts.sender(self.services)},
            max_tries={alerts.KIND: alerts.TRIES},
        )  # fmt: skip

    # --- RPC ---

    @rpc
    async def start(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Begin a rollout (`spec`: worker, url, new_version, stable_version, policy, actor);
        409 while another of this Worker runs."""
        current = self.doc.load()
        if current is not None and current["status"] == "running":
            raise Conflict(
                f"rollout {current['id']} of {current['worker']} is in progress",
                code="rollout_in_progress",
            )
        now = self.now_ms()
        doc: Doc = {
            "id": new_id(now, prefix="rol_"), **spec, "step": 0, "phase": "deploying",
            "status": "running", "holds": 0, "step_started_ms": None, "reason": None,
            "aborted": False, "api_failures": 0, "created_ms": now, "updated_ms": now,
            "ended_ms": None, "history": [], "version": 0,
        }  # fmt: skip
        entry = self._entry(doc, "rollout.start", "ok", doc["stable_version"], doc["new_version"],
                            {"steps": doc["policy"]["steps"]})  # fmt: skip
        await self._save(doc, entry, alarm_ms=now)
        event(log, logging.INFO, "rollout started", worker=doc["worker"], rollout=doc["id"],
              version=doc["new_version"], steps=doc["policy"]["steps"])  # fmt: skip
        return rollout_records.view(doc)

    @rpc
    async def get(self) -> dict[str, Any]:
        doc = self.doc.load()
        if doc is None:
            raise NotFound("this Worker has had no rollout")
        return rollout_records.view(doc)

    @rpc
    async def running(self) -> bool:
        doc = self.doc.load()
        return doc is not None and doc["status"] == "running"

    @rpc
    async def abort(self, actor: str) -> dict[str, Any]:
        """Back to stable: recorded now, done by the alarm (never racing a step's deploy)."""
        doc = self.doc.load()
        if doc is None or doc["status"] != "running":
            raise Conflict("no rollout of this Worker is running", code="no_rollout")
        if doc["phase"] != "rolling_back":
            doc.update(phase="rolling_back", aborted=True, reason=f"aborted by {actor}")
            await self._save(doc, alarm_ms=self.now_ms())
        return rollout_records.view(doc)

    # --- the alarm: one phase at a time ---

    async def on_alarm(self, info: AlarmInfo) -> None:
        doc = self.doc.load()
        if doc is None or doc["status"] != "running":
            await self._drain()
            return
        with correlation.bound(doc["id"]):
            for _ in range(len(doc["policy"]["steps"]) * 2 + 2):  # phases that follow at once
                doc = self.doc.load()
                if doc is None or doc["status"] != "running":
                    break
                if not await self._phase(doc):
                    break
        await self._drain()

    async def _phase(self, doc: Doc) -> bool:
        """Do the current phase's work; True when the next phase is due at once."""
        if doc["phase"] == "deploying":
            return await self._deploy_step(doc)
        if doc["phase"] == "rolling_back":
            await self._roll_back(doc)
            return False
        due = doc["step_started_ms"] + doc["policy"]["step_interval_ms"] * (doc["holds"] + 1)
        if self.now_ms() < due:
            await self.ctx.storage.set_alarm(due)
            return False
        return await self._judge(doc)

    def _api(self) -> WorkersApi:
        return WorkersApi(CloudflareApi.of(self.services))

    async def _deploy(self, doc: Doc, versions: list[dict[str, Any]], message: str) -> bool:
        """One deployment through the API; on failure, try again later (or roll back after too
        many failures). True when it was made."""
        try:
            await self._api().deploy(doc["worker"], versions, message=message)
        except Upstream as exc:
            latest = self.doc.load()
            if latest is None or latest["id"] != doc["id"]:
                return False
            latest["api_failures"] += 1
            event(log, logging.WARNING, "rollout deployment failed", rollout=doc["id"],
                  failures=latest["api_failures"], error=exc.message)  # fmt: skip
            if latest["phase"] == "deploying" and (
                latest["api_failures"] >= API_FAILURES_BEFORE_ROLLBACK
            ):
                latest.update(phase="rolling_back", reason=f"the API failed: {exc.message}")
            await self._save(latest, alarm_ms=self.now_ms() + RETRY_MS * latest["api_failures"])
            return False
        return True

    async def _deploy_step(self, doc: Doc) -> bool:
        percentage = doc["policy"]["steps"][doc["step"]]
        versions = split(doc["new_version"], doc["stable_version"], percentage)
        message = f"apiary rollout {doc['id']}: step {doc['step'] + 1} at {percentage}%"
        if not await self._deploy(doc, versions, message):
            return False
        latest = self.doc.load()  # re-read: an abort may have landed during the call
        if latest is None or latest["id"] != doc["id"] or latest["phase"] != "deploying":
            return True  # its own phase (rolling back) runs next
        now = self.now_ms()
        latest.update(phase="observing", step_started_ms=now, holds=0, api_failures=0)
        entry = self._entry(latest, "rollout.step", "deployed", latest["stable_version"],
                            latest["new_version"], {"step": latest["step"] + 1,
                                                    "percentage": percentage})  # fmt: skip
        await self._save(latest, entry, alarm_ms=now + latest["policy"]["step_interval_ms"])
        return False

    async def _probe(self, url: str, script: str, version: str) -> int:
        """How many of the pinned `/health` probes of `version` passed."""

        async def once() -> bool:
            try:
                answer = await self.services.http.request(
                    "GET", f"{url}/health", headers={OVERRIDES: f'{script}="{version}"'},
                    timeout_s=PROBE_TIMEOUT_S,
                )  # fmt: skip
            except HttpError:
                return False
            return 200 <= answer.status < 300

        return sum(await asyncio.gather(*(once() for _ in range(PROBES_PER_VERSION))))

    async def _measure(self, doc: Doc, percentage: int) -> tuple[Sample, Sample | None]:
        new, stable = doc["new_version"], doc["stable_version"]
        new_passed = await self._probe(doc["url"], doc["worker"], new)
        stable_passed = None
        if percentage < 100:
            stable_passed = await self._probe(doc["url"], doc["worker"], stable)
        since = from_ms(doc["step_started_ms"])
        until = from_ms(self.now_ms()) + timedelta(seconds=1)
        traffic = await Analytics(CloudflareApi.of(self.services)).by_version(
            doc["worker"], since, until
        )
        seen_new = traffic.get(new)
        new_sample = Sample(
            requests=seen_new.requests if seen_new else 0,
            errors=seen_new.errors if seen_new else 0,
            probes=PROBES_PER_VERSION,
            probes_passed=new_passed,
        )
        if stable_passed is None:
            return new_sample, None
        seen_stable = traffic.get(stable)
        return new_sample, Sample(
            requests=seen_stable.requests if seen_stable else 0,
            errors=seen_stable.errors if seen_stable else 0,
            probes=PROBES_PER_VERSION,
            probes_passed=stable_passed,
        )

    async def _judge(self, doc: Doc) -> bool:
        policy = _policy(doc)
        percentage = policy.steps[doc["step"]]
        try:
            new, stable = await self._measure(doc, percentage)
        except Upstream as exc:
            event(log, logging.WARNING, "rollout analytics failed", rollout=doc["id"],
                  error=exc.message)  # fmt: skip
            await self.ctx.storage.set_alarm(self.now_ms() + RETRY_MS)
            return False
        latest = self.doc.load()  # re-read after the probes and the query
        if latest is None or latest["id"] != doc["id"] or latest["phase"] != "observing":
            return True
        decision = decide(policy, latest["step"], latest["holds"], new, stable)
        now = self.now_ms()
        due = latest["step_started_ms"] + policy.step_interval_ms * (latest["holds"] + 1)
        latest["history"] = [*latest["history"], {
            "at_ms": now, "due_ms": due, "step": latest["step"] + 1, "percentage": percentage,
            "verdict": decision.verdict.value, "reason": decision.reason,
            "new": asdict(new), "stable": None if stable is None else asdict(stable),
        }][-KEEP_HISTORY:]  # fmt: skip
        event(log, logging.INFO, "rollout step judged", rollout=latest["id"],
              step=latest["step"] + 1, verdict=decision.verdict.value,
              reason=decision.reason)  # fmt: skip
        return await self._apply(latest, decision, percentage, now)

    async def _apply(self, doc: Doc, decision: Decision, percentage: int, now: int) -> bool:
        outcome = {Verdict.ROLL_BACK: "failed", Verdict.HOLD: "held"}.get(
            decision.verdict, "passed"
        )
        entry = self._entry(doc, "rollout.step", outcome, doc["stable_version"],
                            doc["new_version"], {"step": doc["step"] + 1,
                                                 "percentage": percentage,
                                                 "reason": decision.reason})  # fmt: skip
        if decision.verdict == Verdict.HOLD:
            doc["holds"] += 1
            due = doc["step_started_ms"] + doc["policy"]["step_interval_ms"] * (doc["holds"] + 1)
            await self._save(doc, entry, alarm_ms=due)
            return False
        if decision.verdict == Verdict.ROLL_BACK:
            doc.update(phase="rolling_back", reason=decision.reason)
            await self._save(doc, entry)
            return True
        if decision.verdict == Verdict.ADVANCE:
            doc.update(step=doc["step"] + 1, phase="deploying", holds=0)
            await self._save(doc, entry)
            return True
        doc.update(status="succeeded", phase="done", reason=decision.reason, ended_ms=now)
        promoted = self._entry(doc, "rollout.promote", "promoted", doc["stable_version"],
                               doc["new_version"], {"reason": decision.reason})  # fmt: skip
        await self._save(doc, entry, promoted)
        return False

    async def _roll_back(self, doc: Doc) -> None:
        stable = [{"version_id": doc["stable_version"], "percentage": 100}]
        message = f"apiary rollout {doc['id']} rolled back: {doc['reason']}"
        if not await self._deploy(doc, stable, message):
            return
        latest = self.doc.load()
        if latest is None or latest["id"] != doc["id"] or latest["status"] != "running":
            return
        now = self.now_ms()
        status = "aborted" if latest["aborted"] else "rolled_back"
        latest.update(status=status, phase="done", ended_ms=now)
        entry = self._entry(latest, "rollout.rollback", status, latest["new_version"],
                            latest["stable_version"], {"reason": latest["reason"]})  # fmt: skip
        environment = self.services.config.environment
        text = (
            f":rewind: rollout of `{latest['worker']}` {status.replace('_', ' ')} to"
            f" {latest['stable_version']} ({environment}): {latest['reason']}"
        )
        message_body = alerts.slack_body(text, {
            "kind": f"rollout_{status}", "worker": latest["worker"], "rollout": latest["id"],
            "from_version": latest["new_version"], "to_version": latest["stable_version"],
            "reason": latest["reason"], "environment": environment,
        })  # fmt: skip
        await self._save(latest, entry, alert=message_body)
        event(log, logging.WARNING, "rollout rolled back", worker=latest["worker"],
              rollout=latest["id"], reason=latest["reason"], status=status)  # fmt: skip

    # --- storage and effects ---

    def _entry(
        self,
        doc: Doc,
        action: str,
        outcome: str,
        from_version: str | None,
        to_version: str | None,
        detail: dict[str, Any],
    ) -> dict[str, Any]:
        entry = audit.Entry(doc["actor"], action, doc["worker"], outcome, from_version,
                            to_version, {"rollout": doc["id"], **detail})  # fmt: skip
        return entry.row(self.now_ms())

    async def _save(
        self,
        doc: Doc,
        *entries: dict[str, Any],
        alarm_ms: int | None = None,
        alert: dict[str, Any] | None = None,
    ) -> None:
        doc["updated_ms"] = self.now_ms()

        def write() -> None:
            self.doc.save(doc)
            self.outbox.put(Effect(f"project:{doc['id']}", PROJECT, doc["id"], stream=PROJECT))
            for entry in entries:
                self.outbox.put(Effect(entry["id"], AUDIT, json.dumps(entry)))
            if alert is not None:
                self.outbox.put(alerts.effect(self.now_ms(), alert, key=f"alert:{doc['id']}"))

        self.ctx.storage.transaction(write)
        if alarm_ms is not None:
            await self.ctx.storage.set_alarm(alarm_ms)

    async def _drain(self) -> None:
        await self.outbox.drain()
        due = self.outbox.next_due_ms()
        if due is None:
            return
        current = await self.ctx.storage.get_alarm()
        if current is None or due < current:
            await self.ctx.storage.set_alarm(due)

    async def _project(self, rollout_id: str) -> None:
        doc = self.doc.load()
        if doc is None or doc["id"] != rollout_id:
            return
        now = rfc3339_ms(self.now_ms())
        await self.services.database.batch(rollout_records.projection(doc, now))

    async def _audit(self, body: str) -> None:
        await self.services.database.batch([audit.statement(json.loads(body))])


class WorkerRolloutClient(ObjectClient):
    @classmethod
    def of(cls, services: Services, worker: str) -> WorkerRolloutClient:
        return cls(services.namespace(ROLLOUTS).get(worker))

    async def start(self, spec: dict[str, Any]) -> dict[str, Any]:
        return await self.invoke(WorkerRollout.start, spec)

    async def get(self) -> dict[str, Any]:
        return await self.invoke(WorkerRollout.get)

    async def running(self) -> bool:
        return await self.invoke(WorkerRollout.running)

    async def abort(self, actor: str) -> dict[str, Any]:
        return await self.invoke(WorkerRollout.abort, actor)
