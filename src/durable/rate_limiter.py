"""RateLimiter: a sliding-window limit per key, one object per key.

Keys are chosen by the caller (for example `invites:<swarm id>` at 5 per minute). The window is
a log of admitted hits, so a burst at a window boundary cannot double the limit. The log holds
at most `limit` rows and is trimmed on every call.
"""

import math

from durable.base import DurableObjectLogic, rpc

_SCHEMA = "CREATE TABLE IF NOT EXISTS hits (at_ms INTEGER NOT NULL)"


class RateLimiter(DurableObjectLogic):
    def on_start(self) -> None:
        self.ctx.storage.exec(_SCHEMA)

    @rpc
    async def acquire(self, limit: int, window_s: float, cost: int = 1) -> dict[str, object]:
        """Admit `cost` hits if the last `window_s` seconds leave room for them under `limit`.

        Returns `{allowed, remaining, retry_after_s}`; `retry_after_s` is 0 when allowed.
        """
        if limit < 1 or window_s <= 0 or not 1 <= cost <= limit:
            raise ValueError("need limit >= 1, window_s > 0 and 1 <= cost <= limit")
        now = self.ctx.services.clock.now_ms()
        window_ms = int(window_s * 1000)
        storage = self.ctx.storage

        def admit() -> dict[str, object]:
            storage.exec("DELETE FROM hits WHERE at_ms <= ?", now - window_ms)
            rows = storage.exec("SELECT at_ms FROM hits ORDER BY at_ms")
            used = len(rows)
            if used + cost > limit:
                # Room opens when enough of the oldest hits leave the window.
                oldest_needed = rows[used + cost - limit - 1]["at_ms"]
                wait_ms = oldest_needed + window_ms - now
                return {
                    "allowed": False,
                    "remaining": max(limit - used, 0),
                    "retry_after_s": max(1, math.ceil(wait_ms / 1000)),
                }
            for _ in range(cost):
                storage.exec("INSERT INTO hits (at_ms) VALUES (?)", now)
            return {"allowed": True, "remaining": limit - used - cost, "retry_after_s": 0}

        return storage.transaction(admit)
