"""BrowserLimits: one per Worker; the browser plan's limits, enforced for every run.

A run holds a lease (one browser) while it executes and spends its browser requests when it
starts; past the per-minute budget it is told when to try again, and a 429 from the browser
pauses everyone until its Retry-After. Past the concurrency cap it joins the waiting list:
`release` hands back the longest waiting run, for the releasing run to wake, so a freed browser
is taken at once and a full plan costs no polling (the long retry only covers a lost wake).
Leases expire, so a run that died holding one cannot block the queue for long.
"""

from __future__ import annotations

from typing import Any, TypedDict

from browser.settings import LIMITS
from durable.base import DurableObjectLogic, rpc
from durable.rpc import ObjectClient
from services import Services

NAME = "global"
LEASE_MS = 5 * 60_000
WINDOW_MS = 60_000
WAKE_FALLBACK_MS = 30_000  # a waiting run is woken by a release; this covers a wake that is lost


class Grant(TypedDict):
    granted: bool
    retry_after_ms: int


class Usage(TypedDict):
    browsers_in_use: int
    max_concurrency: int
    requests_this_minute: int
    requests_per_minute: int
    warning: bool


def plan(config: Any) -> dict[str, int]:
    return {
        "max_concurrency": int(config.get("BROWSER_MAX_CONCURRENCY") or 2),
        "requests_per_minute": int(config.get("BROWSER_REQUESTS_PER_MINUTE") or 60),
    }


class BrowserLimits(DurableObjectLogic):
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS leases (run_id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS hits (at_ms INTEGER NOT NULL, cost INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pause (id INTEGER PRIMARY KEY CHECK (id = 1), until_ms INT)",
        "CREATE TABLE IF NOT EXISTS waiting (run_id TEXT PRIMARY KEY, since_ms INTEGER NOT NULL)",
    )

    def _expire(self, now: int) -> None:
        self.ctx.storage.exec("DELETE FROM leases WHERE expires_ms <= ?", now)
        self.ctx.storage.exec("DELETE FROM hits WHERE at_ms <= ?", now - WINDOW_MS)

    @rpc
    async def acquire(self, run_id: str, cost: int) -> Grant:
        """A browser for `run_id` (idempotent), or how long to wait before asking again."""
        now, storage, limits = self.now_ms(), self.ctx.storage, plan(self.ctx.services.config)
        self._expire(now)
        if storage.exec("SELECT 1 FROM leases WHERE run_id = ?", run_id):
            return Grant(granted=True, retry_after_ms=0)
        paused = storage.exec("SELECT until_ms FROM pause WHERE id = 1 AND until_ms > ?", now)
        if paused:
            return Grant(granted=False, retry_after_ms=paused[0]["until_ms"] - now)
        if len(storage.exec("SELECT run_id FROM leases")) >= limits["max_concurrency"]:
            storage.exec(
                "INSERT OR IGNORE INTO waiting (run_id, since_ms) VALUES (?, ?)", run_id, now
            )
            return Grant(granted=False, retry_after_ms=WAKE_FALLBACK_MS)
        spent = storage.exec("SELECT coalesce(sum(cost), 0) AS n FROM hits")[0]["n"]
        if spent + cost > limits["requests_per_minute"]:
            oldest = storage.exec("SELECT min(at_ms) AS at FROM hits")[0]["at"] or now
            return Grant(granted=False, retry_after_ms=max(100, oldest + WINDOW_MS - now))

        def take() -> None:
            storage.exec(
                "INSERT INTO leases (run_id, expires_ms) VALUES (?, ?)", run_id, now + LEASE_MS
            )
            storage.exec("INSERT INTO hits (at_ms, cost) VALUES (?, ?)", now, cost)
            storage.exec("DELETE FROM waiting WHERE run_id = ?", run_id)

        storage.transaction(take)
        return Grant(granted=True, retry_after_ms=0)

    @rpc
    async def release(self, run_id: str) -> str | None:
        """Frees `run_id`'s browser (and its place in line); returns the run to wake, the
        longest waiting, when a browser is free for it."""
        storage, limits = self.ctx.storage, plan(self.ctx.services.config)

        def free() -> str | None:
            storage.exec("DELETE FROM leases WHERE run_id = ?", run_id)
            storage.exec("DELETE FROM waiting WHERE run_id = ?", run_id)
            if len(storage.exec("SELECT run_id FROM leases")) >= limits["max_concurrency"]:
                return None
            rows = storage.exec("SELECT run_id FROM waiting ORDER BY since_ms, run_id LIMIT 1")
            if not rows:
                return None
            storage.exec("DELETE FROM waiting WHERE run_id = ?", rows[0]["run_id"])
            return str(rows[0]["run_id"])

        return storage.transaction(free)

    @rpc
    async def pause(self, retry_after_ms: int) -> None:
        until = self.now_ms() + retry_after_ms
        self.ctx.storage.exec(
            "INSERT INTO pause (id, until_ms) VALUES (1, ?) ON CONFLICT (id)"
            " DO UPDATE SET until_ms = max(until_ms, excluded.until_ms)",
            until,
        )

    @rpc
    async def usage(self) -> Usage:
        now = self.now_ms()
        self._expire(now)
        limits = plan(self.ctx.services.config)
        in_use = len(self.ctx.storage.exec("SELECT run_id FROM leases"))
        spent = self.ctx.storage.exec("SELECT coalesce(sum(cost), 0) AS n FROM hits")[0]["n"]
        ratio = max(in_use / limits["max_concurrency"], spent / limits["requests_per_minute"])
        return Usage(
            browsers_in_use=in_use,
            max_concurrency=limits["max_concurrency"],
            requests_this_minute=spent,
            requests_per_minute=limits["requests_per_minute"],
            warning=ratio >= 0.85,
        )


class BrowserLimitsClient(ObjectClient):
    @classmethod
    def of(cls, services: Services) -> BrowserLimitsClient:
        return cls(services.namespace(LIMITS).get(NAME))

    async def acquire(self, run_id: str, cost: int) -> Grant:
        return await self.invoke(BrowserLimits.acquire, run_id, cost)

    async def release(self, run_id: str) -> str | None:
        return await self.invoke(BrowserLimits.release, run_id)

    async def pause(self, retry_after_ms: int) -> None:
        await self.invoke(BrowserLimits.pause, retry_after_ms)

    async def usage(self) -> Usage:
        return await self.invoke(BrowserLimits.usage)
