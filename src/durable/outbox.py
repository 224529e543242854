"""The outbox: what must happen outside an object after its state changed, and will.

An effect (a D1 projection, a registry release, an alert, a notice to a server) is a row
written in the same transaction as the change that causes it, so a crash between the two
loses nothing. `drain` delivers the due rows after the commit (the output gate holds any call
until the writes before it are durable); a delivery that fails stays, with capped exponential
backoff, and the object's alarm comes back for it (`next_due_ms`). Receivers are idempotent, so
a row delivered twice (a crash after the call, before the delete) changes nothing more.

Rows of one stream (by default, one kind) are delivered in the order they were written, and a
row that fails holds its stream back: two status events of a server land in D1 in order or not
at all. A key names a row: putting a key already waiting keeps the first (a projection reads
the current state when it is delivered, so one row stands for any number of changes); putting
it while that row is being delivered keeps the row for one more delivery, since the one under
way may have read the state before the change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from logs import event, get_logger
from ports import ObjectStorage, Row

log = get_logger("outbox")
SCHEMA = """CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    stream TEXT NOT NULL, body TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0,
    next_ms INTEGER NOT NULL)"""
FIRST_RETRY_MS = 1_000
MAX_RETRY_MS = 60_000

type Deliver = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Effect:
    key: str
    kind: str
    body: str = ""
    stream: str | None = None  # rows of one stream are delivered in order (default: the kind)


def retry_delay_ms(tries: int) -> int:
    """The wait after failed delivery number `tries` (1, 2, ...)."""
    factor: int = 2 ** (tries - 1)  # tries >= 1: an int (typeshed's int ** int is Any)
    return min(MAX_RETRY_MS, FIRST_RETRY_MS * factor)


class Outbox:
    def __init__(
        self,
        storage: ObjectStorage,
        *,
        now_ms: Callable[[], int],
        deliver: Mapping[str, Deliver],
        max_tries: Mapping[str, int] | None = None,
    ) -> None:
        """`deliver[kind](body)` performs an effect; raising means try again later.
        `max_tries[kind]`: after that many failures the row is dropped (and logged); kinds not
        named are retried until they succeed."""
        self.storage = storage
        self.now_ms = now_ms
        self.deliver = deliver
        self.max_tries = max_tries or {}
        self._draining = False
        self._delivering: str | None = None  # the key whose delivery is under way
        self._put_again = False  # whether it was put again meanwhile

    def put(self, *effects: Effect) -> None:
        """Queue effects; call it inside the transaction of the change that causes them."""
        now = self.now_ms()
        for effect in effects:
            if effect.kind not in self.deliver:
                raise ValueError(f"no delivery for outbox kind {effect.kind!r}")
            self._put_again |= effect.key == self._delivering
            self.storage.exec(
                "INSERT INTO outbox (key, kind, stream, body, next_ms) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (key) DO NOTHING",
                effect.key,
                effect.kind,
                effect.stream or effect.kind,
                effect.body,
                now,
            )

    def next_due_ms(self) -> int | None:
        """When the alarm must come back for the outbox (None: nothing waits): the earliest
        retry of a stream's first row (the rows behind it wait for it, whatever their time).
        While a drain is under way here, its rows are its own: the alarm is only for this
        instance dying first, so not sooner than `FIRST_RETRY_MS` (an alarm due now would
        fire, find the drain running, and be set again, over and over)."""
        rows = self.storage.exec(
            "SELECT min(next_ms) AS at FROM outbox AS o"
            " WHERE seq = (SELECT min(seq) FROM outbox WHERE stream = o.stream)"
        )
        at: int | None = rows[0]["at"] if rows else None
        if at is not None and self._draining:
            at = max(at, self.now_ms() + FIRST_RETRY_MS)
        return at

    async def drain(self) -> None:
        """Deliver what is due, stream by stream in order, until nothing due is left. One
        drain at a time per object: a second caller leaves it to the one running."""
        if self._draining:
            return
        self._draining = True
        try:
            while await self._pass():
                pass
        finally:
            self._draining = False

    async def _pass(self) -> bool:
        """One pass over the rows; True when something was delivered (look again)."""
        now, held, delivered = self.now_ms(), set[str](), False
        for row in self.storage.exec("SELECT * FROM outbox ORDER BY seq"):
            if row["stream"] in held:
                continue
            if row["next_ms"] > now:
                held.add(row["stream"])
                continue
            self._delivering, self._put_again = row["key"], False
            try:
                await self.deliver[row["kind"]](row["body"])
            except Exception as exc:
                held.add(row["stream"])
                self._failed(row, exc)
                continue
            finally:
                self._delivering = None
            if not self._put_again:
                self.storage.exec("DELETE FROM outbox WHERE seq = ?", row["seq"])
            delivered = True
        return delivered

    def _failed(self, row: Row, exc: Exception) -> None:
        tries = int(str(row["tries"])) + 1
        limit = self.max_tries.get(str(row["kind"]))
        if limit is not None and tries >= limit:
            event(log, logging.ERROR, "outbox effect dropped", key=row["key"], tries=tries,
                  error=str(exc))  # fmt: skip
            self.storage.exec("DELETE FROM outbox WHERE seq = ?", row["seq"])
            return
        delay = retry_delay_ms(tries)
        event(log, logging.WARNING, "outbox delivery failed; retrying", key=row["key"],
              tries=tries, in_ms=delay, error=str(exc))  # fmt: skip
        self.storage.exec(
            "UPDATE outbox SET tries = ?, next_ms = ? WHERE seq = ?",
            tries,
            self.now_ms() + delay,
            row["seq"],
        )
