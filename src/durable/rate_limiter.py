"""RateLimiter: a sliding-window limit per key, one object per key.

Keys are chosen by the caller (for example `invites:<swarm id>` at 5 per minute). The window is
a log of admitted hits, so a burst at a window boundary cannot double the limit. The log holds
at most `limit` rows and is trimmed on every call.
"""

from __future__ import annotations

import math
from typing import TypedDict

from durable.base import DurableObjectLogic, rpc
from durable.rpc import ObjectClient
from errors import InvalidInput
from services import Services

BINDING = "RATE_LIMITER"


class Verdict(TypedDict):
    allowed: bool
    remaining: int
    retry_after_s: int  # 0 when allowed


class RateLimiter(DurableObjectLogic):
    SCHEMA = ("CREATE TABLE IF NOT EXISTS hits (at_ms INTEGER NOT NULL)",)

    @rpc
    async def acquire(self, limit: int, window_s: float, cost: int = 1) -> Verdict:
        """Admit `cost` hits if the last `window_s` seconds leave room for them under `limit`."""
        if limit < 1 or window_s <= 0 or not 1 <= cost <= limit:
            raise InvalidInput("need limit >= 1, window_s > 0 and 1 <= cost <= limit")
        now = self.now_ms()
        window_ms = int(window_s * 1000)
        storage = self.ctx.storage

        def admit() -> Verdict:
            storage.exec("DELETE FROM hits WHERE at_ms <= ?", now - window_ms)
            rows = storage.exec("SELECT at_ms FROM hits ORDER BY at_ms")
            used = len(rows)
            if used + cost > limit:
                # Room opens when enough of the oldest hits leave the window.
                oldest_needed = rows[used + cost - limit - 1]["at_ms"]
                wait_ms = oldest_needed + window_ms - now
                return Verdict(
                    allowed=False,
                    remaining=max(limit - used, 0),
                    retry_after_s=max(1, math.ceil(wait_ms / 1000)),
                )
            for _ in range(cost):
                storage.exec("INSERT INTO hits (at_ms) VALUES (?)", now)
            return Verdict(allowed=True, remaining=limit - used - cost, retry_after_s=0)

        return storage.transaction(admit)


class RateLimiterClient(ObjectClient):
    @classmethod
    def for_key(cls, services: Services, key: str) -> RateLimiterClient:
        return cls(services.namespace(BINDING).get(key))

    async def acquire(self, limit: int, window_s: float, cost: int = 1) -> Verdict:
        return await self.invoke(RateLimiter.acquire, limit, window_s, cost)
