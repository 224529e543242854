"""The cost model's arithmetic (bench/pricing.py): allowances subtracted, each price, the
128 MB duration rule, WebSocket messages at 20 to one."""

import pytest

from bench.pricing import (
    BASE_FEE_USD,
    PRICES,
    bill,
    do_gb_s,
    do_requests_billed,
    line,
    total,
)

M = 1_000_000


def test_nothing_used_costs_the_base_fee() -> None:
    lines = bill({})
    assert lines[0].usd == BASE_FEE_USD == 5.0
    assert all(item.usd == 0 for item in lines[1:])
    assert total(lines) == 5.0


def test_usage_within_an_allowance_is_free() -> None:
    item = line("worker_requests", 10 * M)
    assert (item.quantity, item.included, item.billable, item.usd) == (10 * M, 10 * M, 0, 0)


@pytest.mark.parametrize(
    ("key", "quantity", "usd"),
    [
        ("worker_requests", 11 * M, 0.30),  # 1M over 10M at $0.30/M
        ("worker_cpu_ms", 31 * M, 0.02),  # 1M ms over 30M at $0.02/M
        ("do_requests", 3 * M, 0.30),  # 2M over 1M at $0.15/M
        ("do_gb_s", 1_400_000, 12.50),  # 1M GB-s over 400k at $12.50/M
        ("do_rows_read", 25_001 * M, 0.001),  # 1M over 25B at $0.001/M
        ("do_rows_written", 52 * M, 2.00),  # 2M over 50M at $1.00/M
        ("do_storage_gb", 15, 2.00),  # 10 GB-month over 5 at $0.20
        ("d1_rows_read", 25_000 * M + 2 * M, 0.002),
        ("d1_rows_written", 51 * M, 1.00),
        ("d1_storage_gb", 9, 3.00),  # 4 GB-month over 5 at $0.75
        ("browser_hours", 110, 9.00),  # 100 hours over 10 at $0.09
    ],
)
def test_each_price_beyond_its_allowance(key: str, quantity: float, usd: float) -> None:
    item = line(key, quantity)
    assert item.billable == quantity - PRICES[key].included
    assert item.usd == pytest.approx(usd)


def test_the_bill_adds_every_line_to_the_base_fee() -> None:
    lines = bill({"do_requests": 3 * M, "browser_hours": 110})
    assert [item.item for item in lines][:2] == ["Workers Paid plan", "Workers requests"]
    assert len(lines) == 1 + len(PRICES)
    assert total(lines) == pytest.approx(5.0 + 0.30 + 9.00)


def test_an_unpriced_item_is_refused() -> None:
    with pytest.raises(ValueError, match="no price for kv_reads"):
        bill({"kv_reads": 1})


def test_duration_is_billed_at_128_mb() -> None:
    # Cloudflare's example: 4,320,000 s of wall time at 128 MB are 540,000 GB-s
    assert do_gb_s(4_320_000) == 540_000
    assert do_gb_s(0) == 0  # hibernating sockets: no active time, no duration


def test_websocket_messages_bill_at_twenty_to_one() -> None:
    assert do_requests_billed(0, 0, 1 * M) == 50_000
    assert do_requests_billed(0, 0, 21) == 2  # rounded up
    assert do_requests_billed(10, 5, 0) == 15  # requests and alarm runs count one each


@pytest.mark.parametrize(
    ("expression", "runs"),
    [("*/5 * * * *", 8640), ("0 * * * *", 720), ("6 2 * * *", 30), ("33 23 * * *", 30)],
)
def test_runs_per_month_of_a_schedule(expression: str, runs: int) -> None:
    from bench.cost import runs_per_month

    assert runs_per_month(expression) == runs


def test_the_shipped_jobs_and_triggers_in_a_month() -> None:
    from bench.cost import cron_runs

    # four jobs on their production schedules; five triggers with the hourly usage poll
    assert cron_runs() == {
        "every5min": 8640,
        "parties-import": 30,
        "check-current": 30,
        "mop-recent": 30,
        "triggers": 8640 + 30 + 30 + 30 + 720,
    }


def test_per_unit_figures_scale_to_the_workload() -> None:
    from bench.cost import DAYS, MANAGED_WORKERS, TASKS_PER_MONTH, monthly_usage

    figures = {
        "tasks": {"per_task_meter": {"worker_requests": 2, "do_requests": 3, "do_alarms": 1,
                                     "do_rows_read": 4, "do_rows_written": 5,
                                     "d1_rows_read": 6, "d1_rows_written": 7,
                                     "cpu_ms_upper_bound": 0}},
        "swarms": {"per_device_hour": {"busy": {"invocations": 0, "messages_in": 0,
                                                "rows_written": 0}}},
        "cron": {"per_run_meter": {"do_requests": 0, "do_alarms": 0, "do_rows_written": 0,
                                   "d1_rows_written": 0}, "cpu_ms_per_run_upper_bound": 0},
        "fleet": {"health_and_usage_per_worker_day": {
            "do_requests_per_worker_day": 288, "checks_per_worker": 288,
            "do_rows_written_per_worker_day": 0, "d1_rows_written_per_worker_day": 0}},
        "browser": {"skipped": "no chromium"},
    }  # fmt: skip
    usage, counts = monthly_usage(figures)
    worker_days = MANAGED_WORKERS * DAYS
    assert usage["do_requests"] == TASKS_PER_MONTH * 4 + worker_days * 288
    assert usage["do_rows_written"] == TASKS_PER_MONTH * 5
    assert usage["d1_rows_written"] == TASKS_PER_MONTH * 7
    assert usage["browser_hours"] == 0
    assert counts["device_hours"] == 100 * 8 * 30
