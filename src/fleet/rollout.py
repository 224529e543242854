"""Health-gated gradual rollouts: what a rollout does at the end of each step (pure).

A rollout moves a Worker's deployment from its stable version to a new one through `steps`
(percentages of traffic, e.g. 10, 50, 100). At the end of each step it compares the new
version against the stable one, as Argo Rollouts' and Flagger's analysis steps do:

- health: `/health` requests pinned to each version (Cloudflare's version-override header).
  A regression is the new version failing a probe the stable version passes; both failing is
  the environment, not the version (a Worker without `/health` fails both alike).
- errors: each version's requests and errors in the step's window, from analytics by version.
  A regression is the new version's error rate above `max_error_rate` and above the stable
  version's, over at least `min_requests` requests.

Either regression rolls back at once, with the reason. Too few requests to judge holds the
step for another interval, up to `max_holds` times; then the step is judged on health alone
(the pinned probes are a measurement too), and the reason says so. Passing the last step
(100%) promotes the new version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

MAX_STEPS = 10
PROBES_PER_VERSION = 3


class Verdict(StrEnum):
    ADVANCE = "advance"
    PROMOTE = "promote"
    HOLD = "hold"
    ROLL_BACK = "roll_back"


@dataclass(frozen=True, slots=True)
class Policy:
    steps: tuple[int, ...] = (10, 50, 100)
    step_interval_ms: int = 300_000
    max_error_rate: float = 0.05
    min_requests: int = 100
    max_holds: int = 3

    def __post_init__(self) -> None:
        if not self.steps or len(self.steps) > MAX_STEPS:
            raise ValueError(f"give 1 to {MAX_STEPS} steps")
        if any(not 0 < s <= 100 for s in self.steps) or list(self.steps) != sorted(set(self.steps)):
            raise ValueError("steps are increasing percentages from 1 to 100")
        if self.steps[-1] != 100:
            raise ValueError("the last step is 100")


@dataclass(frozen=True, slots=True)
class Sample:
    """One version's measurements over a step."""

    requests: int = 0
    errors: int = 0
    probes: int = 0
    probes_passed: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def healthy(self) -> bool:
        return self.probes_passed == self.probes


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def decide(
    policy: Policy, step_index: int, holds: int, new: Sample, stable: Sample | None
) -> Decision:
    """What the end of step `step_index` does, from both versions' samples (`stable` is None
    when the stable version got no traffic, at 100%)."""
    regressions = []
    stable_healthy = stable is None or stable.probes == 0 or stable.healthy
    if not new.healthy and stable_healthy:
        regressions.append(
            f"/health failed {new.probes - new.probes_passed} of {new.probes} probes of the new"
            " version" + ("" if stable is None else " while the stable version passed")
        )
    stable_rate = stable.error_rate if stable is not None else 0.0
    enough = new.requests >= policy.min_requests
    if enough and new.error_rate > policy.max_error_rate and new.error_rate > stable_rate:
        regressions.append(
            f"error rate {_pct(new.error_rate)} over {new.requests} requests against the stable"
            f" version's {_pct(stable_rate)} (max {_pct(policy.max_error_rate)})"
        )
    if regressions:
        return Decision(Verdict.ROLL_BACK, "; ".join(regressions))
    last = step_index == len(policy.steps) - 1
    passed = Verdict.PROMOTE if last else Verdict.ADVANCE
    at = f"{policy.steps[step_index]}%"
    if not enough:
        if holds < policy.max_holds:
            return Decision(
                Verdict.HOLD,
                f"{new.requests} requests to the new version at {at} (need"
                f" {policy.min_requests}): holding the step",
            )
        return Decision(
            passed,
            f"judged on /health alone at {at}: only {new.requests} requests in"
            f" {holds + 1} intervals (need {policy.min_requests})",
        )
    return Decision(
        passed,
        f"healthy at {at}: error rate {_pct(new.error_rate)} over {new.requests} requests"
        f" (stable {_pct(stable_rate)})",
    )


def split(new_version: str, stable_version: str, percentage: int) -> list[dict[str, object]]:
    """The deployment of a step: the new version at `percentage`, the stable one the rest."""
    if percentage >= 100:
        return [{"version_id": new_version, "percentage": 100}]
    return [
        {"version_id": new_version, "percentage": percentage},
        {"version_id": stable_version, "percentage": 100 - percentage},
    ]


def steps_of(raw: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(s) for s in raw)
