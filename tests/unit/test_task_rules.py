"""Pure decisions for tasks: lifecycle, retries, server choice, health."""

import pytest

from tasks.choice import Candidate, choose_server
from tasks.health import Health, HealthState, Policy, observe
from tasks.retry import Backoff, next_delay_ms, retry_after_ms, should_retry
from tasks.states import TERMINAL, TaskStatus, can_transition

S = TaskStatus


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (S.PENDING, S.ASSIGNED, True),
        (S.PENDING, S.RUNNING, False),
        (S.PENDING, S.SUCCEEDED, False),
        (S.PENDING, S.CANCELLED, True),
        (S.ASSIGNED, S.RUNNING, True),
        (S.ASSIGNED, S.SUCCEEDED, True),
        (S.ASSIGNED, S.PENDING, True),
        (S.RUNNING, S.RUNNING, True),
        (S.RUNNING, S.SUCCEEDED, True),
        (S.RUNNING, S.FAILED, True),
        (S.RUNNING, S.ASSIGNED, False),
        (S.RUNNING, S.TIMED_OUT, True),
        *[(t, n, False) for t in sorted(TERMINAL) for n in S],  # sorted: xdist workers agree
    ],
)
def test_transitions(current: TaskStatus, new: TaskStatus, allowed: bool) -> None:
    assert can_transition(current, new) is allowed


@pytest.mark.parametrize(
    ("status", "retry"),
    [(None, True), (500, True), (503, True), (408, True), (429, True), (400, False),
     (401, False), (404, False), (409, False), (422, False)],
)  # fmt: skip
def test_should_retry(status: int | None, retry: bool) -> None:
    assert should_retry(status) is retry


@pytest.mark.parametrize(
    ("tries", "rand", "delay"),
    [(0, 0.0, 125), (0, 1.0, 500), (1, 1.0, 1000), (3, 0.5, 2000), (10, 1.0, 30_000),
     (10, 0.0, 7_500)],
)  # fmt: skip
def test_backoff_is_capped_full_jitter_with_a_floor(tries: int, rand: float, delay: int) -> None:
    assert Backoff(base_ms=500, cap_ms=30_000).delay_ms(tries, rand=rand) == delay


def test_retry_after() -> None:
    assert retry_after_ms("7", 0) == 7000
    assert retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470000) == 10_000
    assert retry_after_ms("soon", 0) is None
    assert retry_after_ms(None, 0) is None
    policy = Backoff(base_ms=100, cap_ms=1000)
    assert next_delay_ms(0, 503, "3", 0, policy) == 3000
    assert next_delay_ms(0, 503, "99999", 0, policy) == 4000  # capped
    assert 25 <= next_delay_ms(0, 503, None, 0, policy) <= 100


def c(id: str, assigned: int = 0, capacity: int = 10, status: str = "healthy",
      caps: tuple[str, ...] = (), last: int = 0) -> Candidate:  # fmt: skip
    return Candidate(id, status, frozenset(caps), capacity, assigned, last)


@pytest.mark.parametrize(
    ("candidates", "required", "exclude", "chosen"),
    [
        ([], (), (), None),
        ([c("a"), c("b", assigned=1)], (), (), "a"),
        ([c("a", assigned=5, capacity=10), c("b", assigned=3, capacity=4)], (), (), "a"),
        ([c("a", status="unhealthy"), c("b", assigned=9)], (), (), "b"),
        ([c("a", status="degraded"), c("b", status="offline")], (), (), None),
        ([c("a", caps=("cpu",)), c("b", assigned=2, caps=("gpu", "cpu"))], ("gpu",), (), "b"),
        ([c("a", caps=("gpu",))], ("gpu", "tpu"), (), None),
        ([c("a", assigned=10, capacity=10), c("b", assigned=9, capacity=10)], (), (), "b"),
        ([c("a", assigned=10, capacity=10)], (), (), None),
        ([c("a", last=50), c("b", last=10)], (), (), "b"),  # fair: least recently assigned
        ([c("a"), c("b", assigned=3)], (), ("a",), "b"),
        ([c("a")], (), ("a",), "a"),  # the only one left: retry there rather than wait
    ],
)
def test_choose_server(
    candidates: list[Candidate],
    required: tuple[str, ...],
    exclude: tuple[str, ...],
    chosen: str | None,
) -> None:
    result = choose_server(candidates, required, exclude)
    assert (result.id if result else None) == chosen


P = Policy(rise=2, fall=2, offline_after=4, min_interval_ms=1000, max_interval_ms=8000,
           flap_window_ms=60_000, flap_changes=3)  # fmt: skip


def run(results: str, state: HealthState | None = None, start_ms: int = 0) -> list[HealthState]:
    """`results`: p = pass, d = pass but degraded, f = fail; one check per second."""
    state = state or HealthState()
    states = []
    for i, r in enumerate(results):
        state = observe(
            state, passed=r != "f", degraded=r == "d", now_ms=start_ms + i * 1000, policy=P
        )
        states.append(state)
    return states


@pytest.mark.parametrize(
    ("results", "statuses"),
    [
        ("p", ["healthy"]),  # the first result decides at once
        ("f", ["unhealthy"]),
        ("pf", ["healthy", "healthy"]),  # one failure is noise
        ("pff", ["healthy", "healthy", "unhealthy"]),
        ("pffff", ["healthy", "healthy", "unhealthy", "unhealthy", "offline"]),
        ("pffp", ["healthy", "healthy", "unhealthy", "unhealthy"]),
        ("pffpp", ["healthy", "healthy", "unhealthy", "unhealthy", "healthy"]),
        ("pd", ["healthy", "degraded"]),
        ("pdp", ["healthy", "degraded", "healthy"]),
        ("ffffpp", ["unhealthy", "unhealthy", "unhealthy", "offline", "offline", "healthy"]),
    ],
)
def test_health_thresholds(results: str, statuses: list[str]) -> None:
    assert [s.status.value for s in run(results)] == statuses


def test_flapping_server_needs_twice_the_passes() -> None:
    states = run("pffppffpp")  # healthy, down, up, down ... three changes within the window
    assert states[-1].status == Health.UNHEALTHY
    assert run("pp", states[-1], start_ms=9000)[-1].status == Health.HEALTHY
    calm = run("pffpp")[-1]
    assert calm.status == Health.HEALTHY


def test_interval_backs_off_while_stable_and_tightens_on_change() -> None:
    assert [s.interval_ms for s in run("ppppppf")] == [1000, 2000, 4000, 8000, 8000, 8000, 1000]
    assert [s.interval_ms for s in run("pff")][-1] == 1000
