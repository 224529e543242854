"""Scheduling decisions for swarms: table-driven, no I/O."""

from collections import Counter

import pytest

from swarms.scheduling import (
    MAX_QUOTA,
    DeviceLoad,
    Requirements,
    Speed,
    assign,
    next_quota,
    next_reliability,
    presence,
    sweep_due,
    weights,
)

NONE = Requirements()


def chunks(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


def test_chunks_go_in_proportion_to_weight() -> None:
    devices = [
        DeviceLoad("fast", weight=3.0, quota=100, in_flight=0),
        DeviceLoad("slow", weight=1.0, quota=100, in_flight=0),
    ]
    counts = Counter(device for _, device in assign(chunks(40), devices, NONE))
    assert counts == {"fast": 30, "slow": 10}


def test_quota_caps_what_a_device_holds() -> None:
    devices = [
        DeviceLoad("fast", weight=10.0, quota=2, in_flight=1),
        DeviceLoad("slow", weight=1.0, quota=3, in_flight=0),
    ]
    pairs = assign(chunks(10), devices, NONE)
    assert Counter(d for _, d in pairs) == {"fast": 1, "slow": 3}
    assert [c for c, _ in pairs] == chunks(4)  # in order, and no more than the free quota


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        (Requirements(gpu=True), {"gpu"}),
        (Requirements(min_memory_gb=16), {"big"}),
        (Requirements(gpu=True, min_memory_gb=16), set()),
        (NONE, {"gpu", "big", "small"}),
    ],
)
def test_requirements_filter_devices(requirements: Requirements, expected: set[str]) -> None:
    devices = [
        DeviceLoad("gpu", 1.0, 10, 0, gpu=True, memory_gb=8),
        DeviceLoad("big", 1.0, 10, 0, gpu=False, memory_gb=32),
        DeviceLoad("small", 1.0, 10, 0, gpu=False, memory_gb=2),
    ]
    assert {d for _, d in assign(chunks(30), devices, requirements)} == expected


def test_no_devices_or_no_quota_assigns_nothing() -> None:
    assert assign(chunks(3), [], NONE) == []
    assert assign(chunks(3), [DeviceLoad("d", 1.0, quota=1, in_flight=1)], NONE) == []


@pytest.mark.parametrize(
    ("speeds", "expected"),
    [
        # measured: chunks per second from ms per chunk
        ({"a": Speed(ms_per_chunk=100)}, {"a": 10.0}),
        # nothing measured yet: benchmark scores stand in, as they are
        ({"a": Speed(score=300), "b": Speed(score=100)}, {"a": 300, "b": 100}),
        # a score converts by the ratio of devices with both
        (
            {"a": Speed(score=100, ms_per_chunk=100), "b": Speed(score=50)},
            {"a": 10.0, "b": 5.0},
        ),
        # nothing known: the median measured speed, or 1
        ({"a": Speed(ms_per_chunk=250), "b": Speed()}, {"a": 4.0, "b": 4.0}),
        ({"a": Speed()}, {"a": 1.0}),
    ],
)
def test_weights(speeds: dict[str, Speed], expected: dict[str, float]) -> None:
    assert weights(speeds) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("quota", "succeeded", "expected"),
    [(2, True, 3), (MAX_QUOTA, True, MAX_QUOTA), (8, False, 4), (1, False, 1), (3, False, 1)],
)
def test_quota_is_aimd(quota: int, succeeded: bool, expected: int) -> None:
    assert next_quota(quota, succeeded) == expected


def test_reliability_moves_towards_outcomes() -> None:
    assert next_reliability(1.0, False) == pytest.approx(0.8)
    assert next_reliability(0.8, True) == pytest.approx(0.84)


@pytest.mark.parametrize(
    ("age_ms", "connected", "expected"),
    [
        (0, True, "online"),
        (30_000, True, "online"),
        (30_001, True, "stale"),
        (60_000, True, "stale"),
        (60_001, True, "offline"),
        (0, False, "offline"),
    ],
)
def test_presence(age_ms: int, connected: bool, expected: str) -> None:
    now = 1_000_000
    assert presence(now, now - age_ms, connected, timeout_s=60) == expected
    assert presence(now, None, connected, timeout_s=60) == "offline"


@pytest.mark.parametrize(
    ("now_ms", "swept_ms", "expected"),
    [(0, None, True), (14_999, 0, False), (15_000, 0, True)],
)
def test_presence_is_swept_four_times_per_timeout(
    now_ms: int, swept_ms: int | None, expected: bool
) -> None:
    assert sweep_due(now_ms, swept_ms, timeout_s=60) is expected
