"""Who runs which chunk, and how much a device is trusted with: pure functions (BOINC-like).

- Weight: a device's speed in chunks per second, measured from its chunk durations (an EWMA of
  milliseconds per chunk). Until a device has measurements, its benchmark score stands in,
  converted to the same unit by the score-to-speed ratio of the devices that have both.
- Quota: chunks in flight a device may hold. Additive increase on success, multiplicative
  decrease on failure or a missed deadline (AIMD), so a flaky device soon holds one chunk.
- Assignment: each chunk goes to the eligible device with free quota whose load after taking
  it, relative to its weight, is lowest: a weighted fair share, so a device twice as fast gets
  twice the chunks.
"""

import heapq
import statistics
from dataclasses import dataclass
from typing import Literal

INITIAL_QUOTA = 2
MAX_QUOTA = 16
EWMA_ALPHA = 0.3
RELIABILITY_ALPHA = 0.2

type Presence = Literal["online", "stale", "offline"]


@dataclass(frozen=True, slots=True)
class Requirements:
    gpu: bool = False
    min_memory_gb: float = 0.0


@dataclass(frozen=True, slots=True)
class DeviceLoad:
    id: str
    weight: float
    quota: int
    in_flight: int
    gpu: bool = False
    memory_gb: float = 0.0

    def meets(self, requirements: Requirements) -> bool:
        return (self.gpu or not requirements.gpu) and self.memory_gb >= requirements.min_memory_gb


@dataclass(frozen=True, slots=True)
class Speed:
    """What is known of a device's speed."""

    score: float | None = None  # its benchmark result
    ms_per_chunk: float | None = None  # EWMA of measured chunk durations


def weights(speeds: dict[str, Speed]) -> dict[str, float]:
    """Each device's weight in chunks per second (see the module docstring)."""
    measured = {d: 1000 / s.ms_per_chunk for d, s in speeds.items() if s.ms_per_chunk}
    ratios = [measured[d] / s.score for d, s in speeds.items() if d in measured and s.score]
    per_score = statistics.median(ratios) if ratios else None
    fallback = statistics.median(measured.values()) if measured else 1.0
    result = {}
    for device, speed in speeds.items():
        if device in measured:
            result[device] = measured[device]
        elif speed.score and per_score is not None:
            result[device] = speed.score * per_score
        elif speed.score and not measured:
            result[device] = speed.score
        else:
            result[device] = fallback
    return result


def ewma(previous: float | None, sample: float, alpha: float = EWMA_ALPHA) -> float:
    return sample if previous is None else previous + alpha * (sample - previous)


def next_quota(quota: int, succeeded: bool) -> int:
    return min(MAX_QUOTA, quota + 1) if succeeded else max(1, quota // 2)


def next_reliability(reliability: float, succeeded: bool) -> float:
    return ewma(reliability, 1.0 if succeeded else 0.0, RELIABILITY_ALPHA)


def assign(
    chunks: list[str], devices: list[DeviceLoad], requirements: Requirements
) -> list[tuple[str, str]]:
    """Pairs (chunk, device) for as many of `chunks`, in order, as free quota allows."""
    heap = [
        ((d.in_flight + 1) / d.weight, d.id, d.in_flight, d)
        for d in devices
        if d.in_flight < d.quota and d.weight > 0 and d.meets(requirements)
    ]
    heapq.heapify(heap)
    pairs = []
    for chunk in chunks:
        if not heap:
            break
        _, device_id, in_flight, device = heapq.heappop(heap)
        pairs.append((chunk, device_id))
        in_flight += 1
        if in_flight < device.quota:
            heapq.heappush(heap, ((in_flight + 1) / device.weight, device_id, in_flight, device))
    return pairs


def presence(now_ms: int, last_seen_ms: int | None, connected: bool, timeout_s: float) -> Presence:
    """online while heard from within half the timeout, stale up to it, then offline."""
    if not connected or last_seen_ms is None:
        return "offline"
    age = now_ms - last_seen_ms
    if age <= timeout_s * 500:
        return "online"
    return "stale" if age <= timeout_s * 1000 else "offline"


def sweep_due(now_ms: int, swept_ms: int | None, timeout_s: float) -> bool:
    """Is it time to sweep presence again? Four sweeps per heartbeat timeout; never yet, now."""
    return swept_ms is None or now_ms >= next_sweep_ms(swept_ms, timeout_s)


def next_sweep_ms(swept_ms: int, timeout_s: float) -> int:
    return swept_ms + int(timeout_s * 250)
