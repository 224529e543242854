"""The fleet's decisions, pure: rollout steps, health on its grid, usage rolls, cost and the
forecast, limits and their crossings, drift, scaling advice and customer routing."""

from __future__ import annotations

from datetime import date

import pytest

from fleet import cost, drift, health, limits, scaling, usage
from fleet.customers import match
from fleet.health import Change, Grid, Status
from fleet.rollout import Policy, Sample, Verdict, decide, split
from fleet.settings import FleetSettings
from fleet.usage import Period, UsageRow
from ports import Config

POLICY = Policy(steps=(10, 50, 100), step_interval_ms=1000, max_error_rate=0.05,
                min_requests=20, max_holds=2)  # fmt: skip
OK = Sample(requests=100, errors=0, probes=3, probes_passed=3)


@pytest.mark.parametrize(
    ("step", "holds", "new", "stable", "verdict", "says"),
    [
        (0, 0, OK, OK, Verdict.ADVANCE, "healthy at 10%"),
        (2, 0, OK, None, Verdict.PROMOTE, "healthy at 100%"),
        # /health fails for the new version only: a regression
        (0, 0, Sample(100, 0, 3, 1), OK, Verdict.ROLL_BACK, "/health failed 2 of 3"),
        # both fail: the environment, not the version
        (0, 0, Sample(100, 0, 3, 0), Sample(100, 0, 3, 0), Verdict.ADVANCE, "healthy"),
        # errors over the threshold and over the stable version's
        (1, 0, Sample(100, 10, 3, 3), Sample(100, 1, 3, 3), Verdict.ROLL_BACK, "error rate 10.0%"),
        # over the threshold but no worse than stable: not this version's doing
        (1, 0, Sample(100, 10, 3, 3), Sample(100, 12, 3, 3), Verdict.ADVANCE, "healthy"),
        # under the threshold
        (0, 0, Sample(100, 4, 3, 3), OK, Verdict.ADVANCE, "4.0%"),
        # too few requests: hold, then judge on health alone
        (0, 0, Sample(5, 5, 3, 3), OK, Verdict.HOLD, "holding"),
        (0, 2, Sample(5, 5, 3, 3), OK, Verdict.ADVANCE, "on /health alone"),
        (2, 2, Sample(5, 0, 3, 3), None, Verdict.PROMOTE, "on /health alone"),
        # both regressions are reported
        (0, 0, Sample(40, 20, 3, 0), OK, Verdict.ROLL_BACK, "; error rate 50.0%"),
    ],
)
def test_rollout_decisions(
    step: int, holds: int, new: Sample, stable: Sample | None, verdict: Verdict, says: str
) -> None:
    decision = decide(POLICY, step, holds, new, stable)
    assert decision.verdict == verdict
    assert says in decision.reason


@pytest.mark.parametrize(
    "steps", [(), (10, 50), (50, 10, 100), (0, 100), (10, 10, 100), (*range(1, 12), 100)]
)
def test_rollout_steps_are_checked(steps: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="step"):
        Policy(steps=steps)


def test_a_step_splits_traffic() -> None:
    assert split("new", "old", 10) == [
        {"version_id": "new", "percentage": 10},
        {"version_id": "old", "percentage": 90},
    ]
    assert split("new", "old", 100) == [{"version_id": "new", "percentage": 100}]


GRID = Grid(origin_ms=1_000, interval_ms=300_000)  # a check every 5 minutes
HOUR = 3_600_000


def test_the_check_grid() -> None:
    assert GRID.slot(999) == -1
    assert GRID.last_check(999) is None
    assert GRID.last_check(1_000 + 299_999) == 1_000
    assert GRID.next_after(1_000) == 301_000
    assert GRID.next_after(1_000 + 10 * 300_000 + 5) == 1_000 + 11 * 300_000  # a late alarm


def test_a_check_changes_status_only_when_it_differs() -> None:
    passed, failed = health.verdict(200), health.verdict(503)
    assert health.observe(Status.UNKNOWN, passed, 5) == Change(5, Status.HEALTHY, passed.reason)
    assert health.observe(Status.HEALTHY, passed, 6) is None
    assert health.observe(Status.HEALTHY, failed, 7) == Change(7, Status.UNHEALTHY,
                                                               "/health answered 503")  # fmt: skip
    assert health.verdict(None, "timed out").reason == "/health timed out"


def test_an_hour_of_checks_is_derived_from_the_changes() -> None:
    changes = [
        Change(GRID.at(0), Status.HEALTHY, "ok"),
        Change(GRID.at(3), Status.UNHEALTHY, "down"),
        Change(GRID.at(5), Status.HEALTHY, "up"),
    ]
    first = health.bucket(GRID, changes, 0, HOUR, until_ms=10 * HOUR)
    assert (first.checks, first.failures) == (12, 2)  # slots 3 and 4 failed
    partial = health.bucket(GRID, changes, 0, HOUR, until_ms=GRID.at(4))
    assert (partial.checks, partial.failures) == (5, 2)
    assert health.uptime([first]) == pytest.approx(83.333, abs=0.001)
    assert health.uptime([]) is None


def test_the_first_check_of_an_hour_closes_the_hours_before() -> None:
    assert health.closed_buckets(GRID, GRID.at(5), HOUR) == []
    assert health.closed_buckets(GRID, GRID.at(12), HOUR) == [0]  # the first hour closed
    assert health.closed_buckets(GRID, GRID.at(24), HOUR) == [0, HOUR]  # and the one before


def test_pruned_changes_keep_the_one_in_effect() -> None:
    changes = [Change(t, Status.HEALTHY if t % 2 else Status.UNHEALTHY, "") for t in range(10)]
    kept = health.prune(changes, keep_since_ms=7)
    assert [c.at_ms for c in kept] == [6, 7, 8, 9]
    assert health.status_at(kept, 6) == health.status_at(changes, 6)


PAID = cost.PLANS["paid"]


def test_usage_cost_is_the_price_table() -> None:
    assert cost.usage_cost(PAID, 1_000_000, 0) == pytest.approx(0.30)
    assert cost.usage_cost(PAID, 0, 1_000_000) == pytest.approx(0.02)
    assert cost.usage_cost(cost.PLANS["free"], 1_000_000, 1_000_000) == 0
    assert cost.monthly_bill(PAID, 5_000_000, 0) == 5.0  # within the inclusions
    assert cost.monthly_bill(PAID, 12_000_000, 31_000_000) == pytest.approx(5 + 0.6 + 0.02)
    with pytest.raises(ValueError, match="unknown plan"):
        cost.plan_named("gold")


def test_month_to_date_and_forecast_follow_the_trend() -> None:
    days = [cost.Day(date(2026, 11, d), 1_000_000, 100.0) for d in range(1, 11)]
    figures = cost.month_figures(PAID, days, date(2026, 11, 10))
    assert (figures.requests, figures.days_in_month) == (10_000_000, 30)
    assert figures.forecast_requests == 30_000_000
    assert figures.bill_usd == 5.0
    assert figures.forecast_bill_usd == pytest.approx(5 + 20 * 0.30, abs=1e-6)
    assert figures.usage_usd == pytest.approx(3.0 + 1000 / 1e6 * 0.02)
    empty = cost.month_figures(PAID, [], date(2026, 2, 3))
    assert (empty.forecast_requests, empty.days_in_month) == (0, 28)


def test_days_roll_into_weeks_and_months() -> None:
    days = [
        UsageRow("w", Period.DAILY, date(2026, 11, 29), 10, 1, 2, 1.5),  # a Sunday
        UsageRow("w", Period.DAILY, date(2026, 11, 30), 20, 2, 0, 2.5),  # Monday
        UsageRow("w", Period.DAILY, date(2026, 12, 1), 30, 0, 1, 1.0),
    ]
    rolled = {(r.period, r.start): r for r in usage.rolls(days, PAID)}
    assert rolled[(Period.WEEKLY, date(2026, 11, 23))].requests == 10
    assert rolled[(Period.WEEKLY, date(2026, 11, 30))].requests == 50
    assert rolled[(Period.MONTHLY, date(2026, 11, 1))].cpu_time_ms == 4.0
    assert rolled[(Period.MONTHLY, date(2026, 12, 1))].cost_usd == cost.usage_cost(PAID, 30, 1.0)
    first, last = usage.periods_touched([date(2026, 12, 1)])
    assert (first, last) == (date(2026, 11, 30), date(2026, 12, 31))


def test_limits_alert_once_per_crossing() -> None:
    at_80 = limits.Reading("scripts", 80, 100)
    at_85 = limits.Reading("scripts", 85, 100)
    assert not at_80.warning
    assert at_85.warning
    assert [c.up for c in limits.crossings([], [at_85])] == [True]
    assert limits.crossings(["scripts"], [at_85]) == []  # still over: no second alert
    assert [c.up for c in limits.crossings(["scripts"], [at_80])] == [False]
    assert limits.crossings([], [limits.Reading("scripts", 5, 0)]) == []  # no limit, no warning
    assert limits.override("7", 500) == 7
    assert limits.override("zero", 500) == limits.override("0", 500) == 500


def test_drift_is_field_by_field() -> None:
    expected = drift.expected_of({"etag": "e1", "bindings": [{"name": "A", "type": "plain_text"}],
                                  "compatibility_date": "2025-01-01", "limits": {},
                                  "placement": {}})  # fmt: skip
    script = {"etag": "e1", "compatibility_date": "2025-01-01"}
    settings = {"bindings": [{"name": "A", "type": "plain_text", "text": "x"}], "limits": {}}
    assert drift.diff(expected, drift.actual_of(script, settings)) == []
    changed = {**settings, "limits": {"cpu_ms": 50}, "compatibility_date": "2025-06-01"}
    found = drift.diff(expected, drift.actual_of({**script, "etag": "e2"}, changed))
    assert [d["field"] for d in found] == ["etag", "compatibility_date", "limits"]
    assert drift.changed_outside("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:05.123456Z")
    assert not drift.changed_outside("2026-01-01T00:00:05.000Z", "2026-01-01T00:00:05.9Z")


@pytest.mark.parametrize(
    ("p99", "current", "exceeded", "limit"),
    [(1.2, None, 0, 10), (40, 100, 0, 120), (200_000, None, 0, 300_000), (5, 50, 3, 100)],
)
def test_scaling_advice(p99: float, current: int | None, exceeded: int, limit: int) -> None:
    assert scaling.recommend("w", p99, current, exceeded).cpu_limit_ms == limit


SETTINGS = FleetSettings.of(
    Config({"CUSTOMER_DOMAIN": "Customers.Example.com", "CUSTOMER_PATH_PREFIX": "/c/"})
)


@pytest.mark.parametrize(
    ("host", "path", "found"),
    [
        ("acme.customers.example.com", "/x", ("acme", "/x")),
        ("ACME.customers.example.com:443", "/", ("acme", "/")),
        ("a.b.customers.example.com", "/", None),  # one label only
        ("customers.example.com", "/", None),
        ("apiary.example.com", "/c/acme/deep/path", ("acme", "/deep/path")),
        ("apiary.example.com", "/c/acme", ("acme", "/")),
        ("apiary.example.com", "/c/", None),
        ("apiary.example.com", "/api/workers", None),
    ],
)
def test_customer_routing(host: str, path: str, found: tuple[str, str] | None) -> None:
    assert match(host, path, SETTINGS) == found


FLEET_PATHS = ("/api/workers", "/api/fleet", "/api/monitor", "/api/templates", "/api/deploy",
               "/api/scale")  # fmt: skip


def test_every_fleet_route_needs_a_cloudflare_scope() -> None:
    from api.app import create_app

    app = create_app(lambda scope: None)  # type: ignore[arg-type,return-value]
    guarded = {"require_cloudflare_read_or_cloudflare_admin", "require_cloudflare_admin"}
    seen = 0
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith(FLEET_PATHS):
            seen += 1
            names = {d.call.__name__ for d in route.dependant.dependencies}  # type: ignore[attr-defined]
            assert names & guarded, f"{path} needs cloudflare:read or cloudflare:admin"
    assert seen >= 20


def test_the_fleet_vars_are_read_on_cloudflare() -> None:
    from fleet.settings import VARS as FLEET_VARS
    from settings import VARS

    assert FLEET_VARS <= VARS  # cloudflare_adapters.services reads only these names
