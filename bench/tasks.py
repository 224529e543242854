"""Task lifecycle throughput (create → dispatch → callback → succeeded) on apiary dev, against
a bare Starlette + SQLite service doing the same writes, dispatch and callback, in the same run.

Also the meter's figures per task: what Cloudflare would bill for it.
"""

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.harness import (
    APIARY,
    ROOT,
    Backend,
    DevServer,
    admin_token,
    free_port,
    project_config,
    wait_up,
    write_dev_vars,
)

TASKS = 300
CONCURRENCY = 16
ROUNDS = 2
MORE_CONCURRENT = 64  # a second measure, one round each: the backend's whole capacity at once


async def _submit_and_wait(
    base: str, headers: dict[str, str], done: "callable", concurrency: int
) -> float:
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        numbers = iter(range(TASKS))
        started = time.perf_counter()

        async def worker() -> None:
            for n in numbers:
                body = {"type": "echo", "payload": {"n": n}}
                response = await client.post("/api/task", json=body)
                response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        while await done(client) < TASKS:  # noqa: ASYNC110 (polling another process)
            await asyncio.sleep(0.05)
        return TASKS / (time.perf_counter() - started)


async def _apiary_done(client: httpx.AsyncClient) -> int:
    count, cursor = 0, None
    while True:
        params = {"status": "succeeded", "limit": 200} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/tasks", params=params)).json()
        count += len(page["tasks"])
        cursor = page["next_cursor"]
        if not cursor:
            return count


async def _baseline_done(client: httpx.AsyncClient) -> int:
    return (await client.get("/done")).json()["succeeded"]


def _apiary_round(work: Path, n: int, concurrency: int = CONCURRENCY) -> tuple[float, dict]:
    project = work / f"apiary{n}-{concurrency}"
    project.mkdir()
    server = DevServer(project / "state", config=project_config(project), args=("--no-cron",))
    write_dev_vars(
        project,
        JWT_SECRET="test-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
        PUBLIC_URL=server.url,
    )
    server.start()
    backend = Backend(server, "bench", work, ("--capacity", "64", "--work-ms", "0",
                                              "--heartbeat-s", "0"))  # fmt: skip
    try:
        backend.start()
        httpx.post(f"{server.url}/__meter/reset")
        headers = {"Authorization": f"Bearer {admin_token()}"}
        rate = asyncio.run(_submit_and_wait(server.url, headers, _apiary_done, concurrency))
        meter = server.meter()
    finally:
        backend.kill()
        server.stop()
    return rate, meter


def _baseline_round(concurrency: int = CONCURRENCY) -> float:
    port, backend_port = free_port(), free_port()
    service = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.baseline_tasks",
            str(port),
            f"http://127.0.0.1:{backend_port}",
        ],
        cwd=ROOT,
    )
    backend = subprocess.Popen(
        [str(APIARY), "backend", "--apiary", f"http://127.0.0.1:{port}", "--port",
         str(backend_port), "--capacity", "64", "--work-ms", "0", "--heartbeat-s", "0"],
    )  # fmt: skip
    try:
        wait_up(f"http://127.0.0.1:{port}/done")
        wait_up(f"http://127.0.0.1:{backend_port}/health")
        base = f"http://127.0.0.1:{port}"
        return asyncio.run(_submit_and_wait(base, {}, _baseline_done, concurrency))
    finally:
        for process in (backend, service):
            process.terminate()
            process.wait(10)


def per_task_meter(meter: dict) -> dict[str, float]:
    """The meter's figures per task, from a round's meter."""
    totals = meter["totals"]
    keys = ("worker_requests", "do_requests", "do_alarms", "do_rows_read", "do_rows_written",
            "d1_rows_read", "d1_rows_written", "d1_queries")  # fmt: skip
    per_task = {key: round(totals.get(key, 0) / TASKS, 2) for key in keys}
    per_task["cpu_ms_upper_bound"] = round(meter["billable"]["cpu_ms"] / TASKS, 2)
    return per_task


def run() -> dict:
    work = Path(tempfile.mkdtemp())
    apiary_rates, baseline_rates, meters = [], [], []
    for n in range(ROUNDS):  # alternate, so machine noise hits both alike
        baseline_rates.append(_baseline_round())
        rate, meter = _apiary_round(work, n)
        apiary_rates.append(rate)
        meters.append(meter)
    per_task = per_task_meter(meters[-1])
    more_baseline = _baseline_round(MORE_CONCURRENT)
    more_rate, more_meter = _apiary_round(work, 0, MORE_CONCURRENT)
    apiary_rate = statistics.median(apiary_rates)
    baseline_rate = statistics.median(baseline_rates)
    return {
        "benchmark": "task lifecycle: create -> dispatch -> callback -> succeeded",
        "tasks_per_round": TASKS,
        "concurrency": CONCURRENCY,
        "rounds": ROUNDS,
        "apiary_tasks_per_s": round(apiary_rate, 1),
        "baseline_tasks_per_s": round(baseline_rate, 1),
        "apiary_over_baseline": round(apiary_rate / baseline_rate, 3),
        "per_task_meter": per_task,
        "per_object_class": {
            name: {
                k: round(v / TASKS, 2)
                for k, v in counts.items()
                if k in ("do_requests", "do_alarms", "do_rows_written")
            }
            for name, counts in meters[-1]["objects"].items()
        },
        f"at_{MORE_CONCURRENT}_concurrent": {
            "apiary_tasks_per_s": round(more_rate, 1),
            "baseline_tasks_per_s": round(more_baseline, 1),
            "apiary_over_baseline": round(more_rate / more_baseline, 3),
            "per_task_meter": per_task_meter(more_meter),
        },
    }
