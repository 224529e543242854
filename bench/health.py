"""GET /health throughput on apiary dev against the bare baseline, in the same run.

Both servers run as their own process on loopback; one client process drives each in turn with
the same concurrency and request count, alternating rounds so machine noise hits both alike.
"""

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.harness import ROOT, DevServer, free_port, project_config, wait_up, write_dev_vars

REQUESTS = 2000
CONCURRENCY = 16
ROUNDS = 3


async def _drive(url: str) -> float:
    async with httpx.AsyncClient(timeout=30) as client:
        queue = iter(range(REQUESTS))

        async def worker() -> None:
            for _ in queue:
                response = await client.get(url)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return REQUESTS / (time.perf_counter() - started)


def run() -> dict:
    work = Path(tempfile.mkdtemp())
    write_dev_vars(work, JWT_SECRET="bench-secret-bench-secret-bench")
    apiary = DevServer(work / "state", config=project_config(work), args=("--no-cron",))
    apiary.start()
    port = free_port()
    baseline = subprocess.Popen(
        [sys.executable, "-m", "bench.baseline_health", str(port)], cwd=ROOT
    )
    try:
        wait_up(f"http://127.0.0.1:{port}/health")
        rates: dict[str, list[float]] = {"apiary": [], "baseline": []}
        for _ in range(ROUNDS):
            rates["baseline"].append(asyncio.run(_drive(f"http://127.0.0.1:{port}/health")))
            rates["apiary"].append(asyncio.run(_drive(f"{apiary.url}/health")))
        httpx.post(f"{apiary.url}/__meter/reset")
        for _ in range(100):
            httpx.get(f"{apiary.url}/health")
        meter = apiary.meter()
    finally:
        baseline.terminate()
        baseline.wait(10)
        apiary.stop()
    apiary_rps = statistics.median(rates["apiary"])
    baseline_rps = statistics.median(rates["baseline"])
    totals = meter["totals"]
    return {
        "benchmark": "GET /health",
        "requests_per_round": REQUESTS,
        "concurrency": CONCURRENCY,
        "rounds": ROUNDS,
        "apiary_rps_median": round(apiary_rps, 1),
        "baseline_rps_median": round(baseline_rps, 1),
        "apiary_over_baseline": round(apiary_rps / baseline_rps, 3),
        "per_request_meter": {
            "worker_requests": totals["worker_requests"] / 100,
            "d1_queries": totals.get("d1_queries", 0) / 100,
            "d1_rows_read": totals.get("d1_rows_read", 0) / 100,
            "d1_rows_written": totals.get("d1_rows_written", 0) / 100,
            "do_requests": totals.get("do_requests", 0) / 100,
            "cpu_ms_upper_bound": round(meter["billable"]["cpu_ms"] / 100, 3),
        },
    }
