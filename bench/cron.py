"""Fifty jobs on one cron: delay from the scheduled event to the backend receiving each call,
and the meter's figures per run, on apiary dev; against a bare dispatcher in the same run (one
process firing the same fifty POSTs at once, with no record, retry or alert).
"""

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from bench.cron_worker import CRON, JOBS
from tests.cron_backend import CronBackend
from tests.harness import JWT_SECRET, ROOT, DevServer, admin_token, project_config, write_dev_vars

ROUNDS = 3


def _quantiles(delays_ms: list[float]) -> dict[str, float]:
    ordered = sorted(delays_ms)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "max": round(ordered[-1], 1),
    }


def _wait_calls(backend: CronBackend, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while len(backend.calls) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(backend.calls)} of {count} calls arrived")
        time.sleep(0.01)


def _apiary_round(
    server: DevServer, backend: CronBackend, n: int, client: httpx.Client
) -> tuple[list[float], dict]:
    """`client` is made before the clock starts, as the bare round's is: making an httpx
    client builds a TLS context (about 100 ms here), which is no part of either dispatcher."""
    backend.calls.clear()
    client.post("/__meter/reset")
    fired = time.time()
    scheduled_ms = int(fired * 1000)
    response = client.get(f"/__scheduled?cron={quote(CRON)}&time={scheduled_ms}")
    response.raise_for_status()
    _wait_calls(backend, JOBS)
    delays = [(call.at - fired) * 1000 for call in backend.calls]
    headers = {"Authorization": f"Bearer {admin_token()}"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # every run recorded as succeeded in D1
        page = httpx.get(
            f"{server.url}/api/cron/runs",
            headers=headers,
            params={"status": "succeeded", "limit": 200},
        ).json()
        if sum(r["scheduled_time"] is not None for r in page["runs"]) >= JOBS * (n + 1):
            break
        time.sleep(0.05)
    time.sleep(0.5)  # let the outbox settle before reading the meter
    return delays, server.meter()


async def _bare_round(backend: CronBackend) -> list[float]:
    backend.calls.clear()
    async with httpx.AsyncClient(timeout=30) as client:
        fired = time.time()
        await asyncio.gather(
            *(
                client.post(f"{backend.url}/cron/job{n:02}", json={"job": f"job{n:02}"})
                for n in range(JOBS)
            )
        )
    return [(call.at - fired) * 1000 for call in backend.calls]


def run() -> dict:
    work = Path(tempfile.mkdtemp())
    backend = CronBackend().start()
    project = work / "project"
    project.mkdir()
    server = DevServer(
        project / "state",
        config=project_config(project),
        worker="bench.cron_worker:WORKER",
        pythonpath=ROOT,
        args=("--no-cron",),
    )
    write_dev_vars(project, JWT_SECRET=JWT_SECRET, PUBLIC_URL=server.url,
                   BACKEND_BASE=backend.url, CRON_TOKEN="bench-cron-token-0123456789")  # fmt: skip
    apiary_delays, bare_delays, meters, rounds = [], [], [], []
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for n in range(ROUNDS):  # alternate, so machine noise hits both alike
                bare_delays.extend(asyncio.run(_bare_round(backend)))
                delays, meter = _apiary_round(server, backend, n, client)
                apiary_delays.extend(delays)
                rounds.append(_quantiles(delays))
                meters.append(meter)
    finally:
        server.stop()
        backend.stop()
    apiary, bare = _quantiles(apiary_delays), _quantiles(bare_delays)
    totals = meters[-1]["totals"]
    keys = ("do_requests", "do_alarms", "do_rows_written", "d1_rows_written", "d1_queries")
    return {
        "benchmark": f"{JOBS} cron jobs firing at once: scheduled event -> backend receives call",
        "rounds": ROUNDS,
        "apiary_delay_ms": apiary,
        "bare_dispatch_delay_ms": bare,
        "p50_ratio": round(apiary["p50"] / bare["p50"], 2),
        "p99_ratio": round(apiary["p99"] / bare["p99"], 2),
        # The first round also builds the fifty JobRunner objects (a file and schema each).
        "apiary_delay_ms_per_round": rounds,
        "per_run_meter": {key: round(totals.get(key, 0) / JOBS, 2) for key in keys},
        "cpu_ms_per_run_upper_bound": round(meters[-1]["billable"]["cpu_ms"] / JOBS, 2),
    }
