"""RateLimiter: a sliding window of admitted hits, on real object storage and a test clock."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from apiary_local.meter import Meter
from apiary_local.storage import LocalObjectStorage
from durable.base import ObjectContext
from durable.rate_limiter import RateLimiter
from errors import InvalidInput
from ports import Config
from services import Services


class StepClock:
    def __init__(self, ms: int = 1_000_000) -> None:
        self.ms = ms

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, UTC)

    def now_ms(self) -> int:
        return self.ms


@pytest.fixture
def limiter(tmp_path: Path) -> tuple[RateLimiter, StepClock]:
    clock = StepClock()
    storage = LocalObjectStorage(tmp_path / "rl.sqlite", Meter(), "RateLimiter")
    services = Services(None, {}, None, clock, Config())  # type: ignore[arg-type]
    limiter = RateLimiter(ObjectContext("id", "invites:s1", storage, None, services))  # type: ignore[arg-type]
    limiter.on_start()
    yield limiter, clock
    storage.close()


@pytest.mark.anyio
async def test_sliding_window(limiter: tuple[RateLimiter, StepClock]) -> None:
    rl, clock = limiter
    results = []
    for _ in range(5):
        results.append(await rl.acquire(5, 60))
        clock.ms += 1000
    assert [r["allowed"] for r in results] == [True] * 5
    assert [r["remaining"] for r in results] == [4, 3, 2, 1, 0]
    refused = await rl.acquire(5, 60)
    # the oldest hit (at t0) leaves the window at t0 + 60 s; now is t0 + 5 s
    assert refused == {"allowed": False, "remaining": 0, "retry_after_s": 55}
    clock.ms += 55_000
    assert (await rl.acquire(5, 60))["allowed"] is True
    assert (await rl.acquire(5, 60))["allowed"] is False


@pytest.mark.anyio
async def test_boundary_burst_cannot_double_the_limit(
    limiter: tuple[RateLimiter, StepClock],
) -> None:
    rl, clock = limiter
    clock.ms = 59_000
    assert all([(await rl.acquire(3, 60))["allowed"] for _ in range(3)])
    clock.ms = 61_000  # a fixed window would have reset here
    assert (await rl.acquire(3, 60))["allowed"] is False


@pytest.mark.anyio
async def test_cost_and_validation(limiter: tuple[RateLimiter, StepClock]) -> None:
    rl, _ = limiter
    assert (await rl.acquire(10, 1, cost=7))["remaining"] == 3
    assert (await rl.acquire(10, 1, cost=4))["allowed"] is False
    with pytest.raises(InvalidInput, match="cost <= limit"):
        await rl.acquire(2, 1, cost=3)
    with pytest.raises(InvalidInput, match="limit >= 1"):
        await rl.acquire(0, 60)
