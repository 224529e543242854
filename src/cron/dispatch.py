"""The scheduled handler: what a Cron Trigger does when it fires.

Each event is recorded in D1 (`cron_events`) so an operator can see triggers fire. Job dispatch
builds on this (see the cron jobs table when it lands); a cron with no job is logged, not lost.
"""

import logging
from dataclasses import dataclass

from clock import from_ms, rfc3339
from ids import new_id
from logs import event, get_logger
from services import Services

log = get_logger("cron")


@dataclass(frozen=True, slots=True)
class ScheduledEvent:
    cron: str
    scheduled_time_ms: int


async def on_scheduled(scheduled: ScheduledEvent, services: Services) -> None:
    now = services.clock.now()
    event_id = new_id(services.clock.now_ms(), prefix="cev_")
    await services.database.execute(
        "INSERT INTO cron_events (id, cron, scheduled_time, handled_at, jobs)"
        " VALUES (?, ?, ?, ?, ?)",
        event_id,
        scheduled.cron,
        rfc3339(from_ms(scheduled.scheduled_time_ms)),
        rfc3339(now),
        0,
    )
    event(log, logging.INFO, "scheduled event handled", cron=scheduled.cron, id=event_id, jobs=0)
