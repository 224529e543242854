"""A server's health: consecutive-result thresholds, flap damping, adaptive check interval.

Consul-like: a status changes only after `rise` passes or `fall` failures in a row. A server
that flaps (several changes in a short window) needs twice the passes to come back. Checks run
often while a change is in progress and back off while the status is stable. The heartbeat TTL
(only once a server has sent a heartbeat) counts as a failure when it lapses.
"""

from dataclasses import dataclass, field, replace
from enum import StrEnum


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Policy:
    rise: int = 2
    fall: int = 2
    offline_after: int = 4  # consecutive failures
    min_interval_ms: int = 5_000
    max_interval_ms: int = 60_000
    flap_window_ms: int = 300_000
    flap_changes: int = 4


@dataclass(frozen=True, slots=True)
class HealthState:
    status: Health = Health.UNHEALTHY
    passes: int = 0
    failures: int = 0
    interval_ms: int = 0
    changes_ms: tuple[int, ...] = field(default_factory=tuple)  # recent status changes
    first: bool = True  # no result yet: the first pass makes the server usable


def _flapping(state: HealthState, now_ms: int, policy: Policy) -> bool:
    recent = [t for t in state.changes_ms if now_ms - t <= policy.flap_window_ms]
    return len(recent) >= policy.flap_changes


def observe(
    state: HealthState, *, passed: bool, degraded: bool, now_ms: int, policy: Policy
) -> HealthState:
    """Fold one check result into the state (the status may or may not change)."""
    if passed:
        passes, failures = state.passes + 1, 0
        rise = 1 if state.first else policy.rise * (2 if _flapping(state, now_ms, policy) else 1)
        target = Health.DEGRADED if degraded else Health.HEALTHY
        status = state.status
        if status != target and (passes >= rise or status in (Health.HEALTHY, Health.DEGRADED)):
            status = target  # healthy <-> degraded needs no streak: both are up
    else:
        passes, failures = 0, state.failures + 1
        if failures >= policy.offline_after:
            status = Health.OFFLINE
        elif (failures >= policy.fall or state.first) and state.status != Health.OFFLINE:
            status = Health.UNHEALTHY
        else:
            status = state.status
    changes = state.changes_ms
    if status != state.status:
        changes = (*[t for t in changes if now_ms - t <= policy.flap_window_ms], now_ms)
    settled = (passed and status in (Health.HEALTHY, Health.DEGRADED)) or (
        not passed and status == Health.OFFLINE
    )
    if status != state.status or not settled:
        interval = policy.min_interval_ms
    else:
        interval = min(policy.max_interval_ms, max(policy.min_interval_ms, state.interval_ms * 2))
    return replace(
        state,
        status=status,
        passes=passes,
        failures=failures,
        interval_ms=interval,
        changes_ms=changes,
        first=False,
    )
