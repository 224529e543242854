"""Fires Cron Triggers on schedule (UTC), like Cloudflare, while `apiary dev` runs.

Missed fire times while the process was down are not replayed, as with Cloudflare's own
scheduler after an outage; the jobs' own missed-run alerts cover that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from cron.schedule import CronExpression
from logs import get_logger
from ports import Clock

log = get_logger("scheduler")


def next_fire(crons: Sequence[CronExpression], after: datetime) -> tuple[datetime, list[str]]:
    """The next fire time after `after` and every cron that fires then."""
    times = [(expression.next_after(after), expression.text) for expression in crons]
    soonest = min(t for t, _ in times)
    return soonest, [text for t, text in times if t == soonest]


class CronScheduler:
    def __init__(
        self,
        crons: Sequence[str],
        clock: Clock,
        fire: Callable[[str, int], Awaitable[None]],
    ) -> None:
        self.crons = [CronExpression.parse(text) for text in crons]
        self.clock = clock
        self.fire = fire

    async def run(self) -> None:
        if not self.crons:
            return
        after = self.clock.now()
        while True:
            when, due = next_fire(self.crons, after)
            delay = (when - self.clock.now()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            for cron in due:
                try:
                    await self.fire(cron, int(when.timestamp() * 1000))
                except Exception:
                    log.exception("scheduled event failed", extra={"fields": {"cron": cron}})
            after = when
