"""What a month of a stated workload costs on Cloudflare, from the meter's per-unit figures at
the published prices (bench/pricing.py).

The per-unit figures come from the other benches' own workloads on apiary dev (127.0.0.1):
their results from this same `make bench` run when there are some (bench/results/*.json newer
than this process), or else a short run of each here (a round of tasks, 100 busy devices for
30 s, one round of cron jobs, a compressed day of fleet health checks, a few smoke checks).
Every scaling assumption is a named constant below.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import browser, cron, fleet, pricing, swarms, tasks
from cron.jobs import JOBS
from cron.schedule import CronExpression
from fleet.poll import USAGE_CRON

STARTED = time.time()  # results written after this are from this run
RESULTS = Path(__file__).parent / "results"

# --- the workload, per month ---
DAYS = 30
TASKS_PER_MONTH = 1_000_000
DEVICES, DEVICE_HOURS_PER_DAY = 100, 8  # each device connected and busy 8 hours a day
# ...with the swarms bench's busy work: 1-second chunks, about 3,600 a device-hour, one
# row written each; longer chunks write proportionally fewer rows.
SMOKE_CHECKS_PER_DAY = 1_000
MANAGED_WORKERS = 20  # each health-checked every 5 minutes, usage polled hourly (one cron)
ENVIRONMENT = "production"  # the four shipped jobs on their production schedules
# --- what the meter does not measure ---
# Durable Object wall time per invocation (a request, an alarm run or a socket message),
# including the awaited storage and outbound calls that keep it active: an assumption, not a
# measurement. Idle hibernating sockets add nothing.
DO_ACTIVE_MS_PER_INVOCATION = 50
D1_BYTES_PER_TASK = 2_000  # its row, attempts and events in D1, kept for a month
DO_STORAGE_GB = 1.0  # every object's SQLite together (swarm chunks, health, queues)
SMOKE_WORKER_REQUESTS = 1  # the API call that starts a check; the target is not a Worker
BROWSER_CONCURRENCY = browser.CONCURRENCY  # checks in flight while the browser bench runs
SMOKE_CHECKS_MEASURED = 8  # when measured here rather than read from browser.json


def runs_per_month(expression: str, days: int = DAYS) -> int:
    """How often a cron expression fires in `days` days from the start of a month."""
    schedule = CronExpression.parse(expression)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    end, count, at = start + timedelta(days=days), 0, start - timedelta(minutes=1)
    while (at := schedule.next_after(at)) < end:
        count += 1
    return count


def cron_runs() -> dict[str, int]:
    """Runs a month of each shipped job, and of each Cron Trigger (one Worker invocation each:
    the job table's schedules and the usage poll's)."""
    jobs = {job.name: runs_per_month(job.schedules[ENVIRONMENT]) for job in JOBS.scheduled_in(
        ENVIRONMENT)}  # fmt: skip
    triggers = JOBS.crons(ENVIRONMENT) | {USAGE_CRON}
    return jobs | {"triggers": sum(runs_per_month(cron) for cron in triggers)}


@contextmanager
def _settings(module: ModuleType, **values: Any) -> Iterator[None]:
    """A bench module's constants changed for one short run, then put back."""
    saved = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def _fresh(name: str, measure: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], str]:
    path = RESULTS / f"{name}.json"
    if path.exists() and path.stat().st_mtime >= STARTED:
        return json.loads(path.read_text()), f"bench/results/{name}.json"
    return measure(), "measured here"


def _tasks() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as work:
        _, meter = tasks._apiary_round(Path(work), 0)
    return {"per_task_meter": tasks.per_task_meter(meter)}


def _swarms() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as work:
        server = swarms._dev_server(Path(work), "busy")
        try:
            busy = swarms.asyncio.run(swarms._device_hour(server, busy=True))
        finally:
            server.stop()
    return {"per_device_hour": {"busy": busy}}


def _fleet() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as work:
        return {"health_and_usage_per_worker_day": fleet.day_of_checks(Path(work))}


def _browser() -> dict[str, Any]:
    try:
        browser.chromium_path()
    except Exception as exc:  # no Chromium: the smoke checks' browser time is left out
        return {"skipped": str(exc)}
    with _settings(browser, CHECKS=SMOKE_CHECKS_MEASURED, WARMUP=2):
        return browser.run()


def measure() -> dict[str, Any]:
    """Per-unit figures, each with where it came from."""
    figures, sources = {}, {}
    for name, how in (("tasks", _tasks), ("cron", cron.run), ("swarms", _swarms),
                      ("fleet", _fleet), ("browser", _browser)):  # fmt: skip
        figures[name], sources[name] = _fresh(name, how)
    return {"figures": figures, "sources": sources}


def monthly_usage(figures: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """(usage for pricing.bill, the workload's counts) from the per-unit figures."""
    task = figures["tasks"]["per_task_meter"]
    device = figures["swarms"]["per_device_hour"]["busy"]
    run = figures["cron"]["per_run_meter"]
    worker_day = figures["fleet"]["health_and_usage_per_worker_day"]
    smoke = figures["browser"]
    runs = cron_runs()
    job_runs = sum(n for name, n in runs.items() if name != "triggers")
    device_hours = DEVICES * DEVICE_HOURS_PER_DAY * DAYS
    worker_days = MANAGED_WORKERS * DAYS
    smoke_checks = SMOKE_CHECKS_PER_DAY * DAYS

    task_do = task["do_requests"] + task["do_alarms"]
    swarm_messages = device["messages_in"]
    swarm_events = device["invocations"] - swarm_messages / pricing.WS_MESSAGES_PER_REQUEST
    job_do = run["do_requests"] + run["do_alarms"]
    do_requests = (
        TASKS_PER_MONTH * task_do
        + device_hours * device["invocations"]  # messages already at 20 to one
        + job_runs * job_do
        + worker_days * worker_day["do_requests_per_worker_day"]
    )
    do_events = (  # each socket message is handled on its own, so active on its own
        TASKS_PER_MONTH * task_do
        + device_hours * (swarm_events + swarm_messages)
        + job_runs * job_do
        + worker_days * worker_day["do_requests_per_worker_day"]
    )
    browser_s_per_check = (
        BROWSER_CONCURRENCY * 60 / smoke["apiary_checks_per_minute"] if "skipped" not in smoke
        else 0.0
    )  # fmt: skip
    usage = {
        "worker_requests": TASKS_PER_MONTH * task["worker_requests"]
        + runs["triggers"]
        + worker_days * worker_day["checks_per_worker"]  # probes of the managed Workers
        + smoke_checks * SMOKE_WORKER_REQUESTS,
        "worker_cpu_ms": TASKS_PER_MONTH * task["cpu_ms_upper_bound"]
        + job_runs * figures["cron"]["cpu_ms_per_run_upper_bound"],
        "do_requests": do_requests,
        "do_gb_s": pricing.do_gb_s(do_events * DO_ACTIVE_MS_PER_INVOCATION / 1000),
        "do_rows_read": TASKS_PER_MONTH * task["do_rows_read"],
        "do_rows_written": TASKS_PER_MONTH * task["do_rows_written"]
        + device_hours * device["rows_written"]
        + job_runs * run["do_rows_written"]
        + worker_days * worker_day["do_rows_written_per_worker_day"],
        "do_storage_gb": DO_STORAGE_GB,
        "d1_rows_read": TASKS_PER_MONTH * task.get("d1_rows_read", 0),
        "d1_rows_written": TASKS_PER_MONTH * task["d1_rows_written"]
        + job_runs * run["d1_rows_written"]
        + worker_days * worker_day["d1_rows_written_per_worker_day"],
        "d1_storage_gb": TASKS_PER_MONTH * D1_BYTES_PER_TASK / 1e9,
        "browser_hours": smoke_checks * browser_s_per_check / 3600,
    }
    counts = {
        "tasks": TASKS_PER_MONTH,
        "device_hours": device_hours,
        "cron_job_runs": job_runs,
        "cron_trigger_invocations": runs["triggers"],
        "managed_worker_days": worker_days,
        "smoke_checks": smoke_checks,
        "browser_s_per_check": round(browser_s_per_check, 2),
    }
    return usage, counts


def _quantity(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def table(lines: list[pricing.Line]) -> str:
    rows = ["| line item | quantity | included | billable | USD |", "|---|--:|--:|--:|--:|"]
    for item in lines:
        rows.append(
            f"| {item.item} ({item.unit}) | {_quantity(item.quantity)} | "
            f"{_quantity(item.included)} | {_quantity(item.billable)} | {item.usd:,.2f} |"
        )
    rows.append(f"| **total per month** | | | | **{pricing.total(lines):,.2f}** |")
    return "\n".join(rows)


def _bill_row(item: pricing.Line) -> dict[str, Any]:
    return {
        "item": item.item,
        "unit": item.unit,
        "quantity": round(item.quantity, 3),
        "included": item.included,
        "billable": round(item.billable, 3),
        "usd": round(item.usd, 4),
    }


def run() -> dict[str, Any]:
    measured = measure()
    usage, counts = monthly_usage(measured["figures"])
    lines = pricing.bill(usage)
    print(table(lines))
    return {
        "benchmark": "cost model: a month of the stated workload at Cloudflare's prices",
        "workload": counts,
        "cron_runs_per_month": cron_runs(),
        "assumptions": {
            "do_active_ms_per_invocation": DO_ACTIVE_MS_PER_INVOCATION,
            "d1_bytes_per_task": D1_BYTES_PER_TASK,
            "do_storage_gb": DO_STORAGE_GB,
            "smoke_worker_requests": SMOKE_WORKER_REQUESTS,
        },
        "sources": measured["sources"],
        "per_unit": {
            "task": measured["figures"]["tasks"]["per_task_meter"],
            "busy_device_hour": measured["figures"]["swarms"]["per_device_hour"]["busy"],
            "cron_run": measured["figures"]["cron"]["per_run_meter"],
            "managed_worker_day": measured["figures"]["fleet"]["health_and_usage_per_worker_day"],
        },
        "bill": [_bill_row(item) for item in lines],
        "total_usd": pricing.total(lines),
    }
