"""Scaling a Worker, as far as Workers scale: its CPU limit and placement (pure).

Workers scale out by themselves and every isolate has 128 MB, so `instances` and
`memory_limit` are answered with the reason instead of a setting. What can be set is the CPU
time an invocation may use (`limits.cpu_ms`, 10 ms to 5 minutes on the Paid plan) and Smart
Placement. `recommend` sets the limit from the observed p99 CPU time with headroom, and raises
it for a Worker whose invocations ended `exceededResources`.
https://developers.cloudflare.com/workers/platform/limits/#cpu-time
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_CPU_MS = 10
MAX_CPU_MS = 300_000
HEADROOM = 3.0  # the limit is this many times the p99
EXCEEDED_FACTOR = 2.0  # a Worker that hit its limit gets at least this many times more
ROUND_TO_MS = 5

UNSCALABLE = {
    "instances": "Workers scale out by themselves: there is no instance count to set",
    "memory_limit": "every Worker isolate has 128 MB of memory: it cannot be changed",
}


def clamp(ms: float) -> int:
    rounded = math.ceil(ms / ROUND_TO_MS) * ROUND_TO_MS
    return max(MIN_CPU_MS, min(MAX_CPU_MS, rounded))


@dataclass(frozen=True, slots=True)
class Recommendation:
    worker: str
    current_cpu_ms: int | None
    p99_cpu_ms: float
    exceeded: int
    cpu_limit_ms: int
    reason: str

    @property
    def changes(self) -> bool:
        return self.cpu_limit_ms != self.current_cpu_ms


def recommend(worker: str, p99_ms: float, current: int | None, exceeded: int) -> Recommendation:
    target = clamp(p99_ms * HEADROOM)
    reason = f"p99 CPU {p99_ms:.1f} ms x {HEADROOM:g} headroom"
    if exceeded:
        floor = clamp((current or MIN_CPU_MS) * EXCEEDED_FACTOR)
        if floor > target:
            target = floor
        reason += f"; {exceeded} invocations exceeded their limit"
    return Recommendation(worker, current, round(p99_ms, 3), exceeded, target, reason)
