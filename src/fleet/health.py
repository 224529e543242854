"""A managed Worker's health, decided from `GET {url}/health` on a fixed grid of checks.

A check passes on a 2xx within the timeout; the status follows each check at once (`healthy`,
`unhealthy`; `unknown` until the first), so a change is one event and one alert.

Checks run at `origin + k * interval` (the object's alarm). That grid is what keeps a
Worker's health cheap: a check that changes nothing writes nothing but its next alarm, because
what every check found is known from the grid and the status changes alone. The checks and
failures of an hour (`bucket`), the uptime, the time of the last check are all derived here,
purely, from `(grid, changes)`; only a change (and one row per hour, in D1) is ever written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

KEEP_CHANGES = 100


class Status(StrEnum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class Probe:
    ok: bool
    reason: str
    http_status: int | None = None


def verdict(http_status: int | None, error: str | None = None) -> Probe:
    """One check's result from its answer (or the reason there was none)."""
    if http_status is None:
        return Probe(False, f"/health {error or 'did not answer'}")
    if 200 <= http_status < 300:
        return Probe(True, f"/health answered {http_status}", http_status)
    return Probe(False, f"/health answered {http_status}", http_status)


@dataclass(frozen=True, slots=True)
class Change:
    at_ms: int
    status: Status
    reason: str


def observe(current: Status, probe: Probe, at_ms: int) -> Change | None:
    """The change a check makes (None: it confirms the status)."""
    status = Status.HEALTHY if probe.ok else Status.UNHEALTHY
    return None if status == current else Change(at_ms, status, probe.reason)


@dataclass(frozen=True, slots=True)
class Grid:
    origin_ms: int
    interval_ms: int

    def slot(self, t_ms: int) -> int:
        """The index of the last check due at or before `t_ms` (-1 before the first)."""
        return (t_ms - self.origin_ms) // self.interval_ms

    def at(self, slot: int) -> int:
        return self.origin_ms + slot * self.interval_ms

    def next_after(self, t_ms: int) -> int:
        """The first check time strictly after `t_ms` (a late alarm skips the missed ones)."""
        return self.at(max(0, self.slot(t_ms) + 1))

    def last_check(self, t_ms: int) -> int | None:
        slot = self.slot(t_ms)
        return None if slot < 0 else self.at(slot)


def status_at(changes: Sequence[Change], t_ms: int) -> Status:
    """The status in effect at `t_ms`: that of the last change at or before it."""
    found = Status.UNKNOWN
    for change in changes:
        if change.at_ms > t_ms:
            break
        found = change.status
    return found


@dataclass(frozen=True, slots=True)
class Bucket:
    start_ms: int
    checks: int
    failures: int


def bucket(
    grid: Grid, changes: Sequence[Change], start_ms: int, length_ms: int, until_ms: int
) -> Bucket:
    """The scheduled checks due in `[start_ms, start_ms + length_ms)` (and not after
    `until_ms`), and how many of them failed: a check's result is the status right after it."""
    end = min(start_ms + length_ms, until_ms + 1)
    first = max(0, -((grid.origin_ms - start_ms) // grid.interval_ms))  # ceil
    checks = failures = 0
    slot = first
    while grid.at(slot) < end:
        status = status_at(changes, grid.at(slot))
        if status != Status.UNKNOWN:
            checks += 1
            failures += status == Status.UNHEALTHY
        slot += 1
    return Bucket(start_ms, checks, failures)


def bucket_start(t_ms: int, length_ms: int) -> int:
    return t_ms - t_ms % length_ms


def closed_buckets(grid: Grid, slot_ms: int, length_ms: int) -> list[int]:
    """The buckets whose rows the check at `slot_ms` writes: when it is the first check of a
    bucket, the one that just closed and the one before (a row whose write failed an hour ago
    is written again; an unchanged row costs nothing)."""
    previous = slot_ms - grid.interval_ms
    if previous < grid.origin_ms or bucket_start(previous, length_ms) == bucket_start(
        slot_ms, length_ms
    ):
        return []
    closed = bucket_start(previous, length_ms)
    return [b for b in (closed - length_ms, closed) if b + length_ms > grid.origin_ms]


def uptime(buckets: Sequence[Bucket]) -> float | None:
    """Percent of scheduled checks that passed; None with no checks."""
    checks = sum(b.checks for b in buckets)
    failures = sum(b.failures for b in buckets)
    return None if checks == 0 else round(100 * (checks - failures) / checks, 3)


def prune(changes: Sequence[Change], keep_since_ms: int) -> list[Change]:
    """The changes still needed: those since `keep_since_ms`, and the one in effect then."""
    kept = [c for c in changes if c.at_ms >= keep_since_ms]
    before = [c for c in changes if c.at_ms < keep_since_ms]
    return ([before[-1]] if before else []) + kept[-KEEP_CHANGES:]
