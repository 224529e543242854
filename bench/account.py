"""A deployed Worker on apiary dev's local account against the same Worker under plain
`wrangler dev`, in the same run; and `wrangler deploy` start to the Worker's first 200.

Latency: one client sends sequential requests (keep-alive) to each in alternating rounds, so
machine noise hits both alike; the report gives p50 and p99 of both and their ratios (goal
<= 1.2x). Deploy: the wall time from starting `wrangler deploy` of a new Worker to the first
200 from its URL, on a warm apiary dev (the runner already up) and on a cold one (the first
Worker deployed, so the runner starts too). Goal <= 2 s. wrangler's own part of that (its
start, config and bundling: `deploy --dry-run` of the same project) is measured in the same
run, so the rest is the upload, workerd taking the new Worker, and the first request.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from tests.account_client import Account, account_of, account_server, write_worker
from tests.harness import ROOT, free_port, wait_up

WORKER = """export default {
  async fetch(request) {
    return new Response("hello " + new URL(request.url).pathname);
  },
};
"""
REQUESTS = 1000
WARMUP = 100
ROUNDS = 3


def _latencies(client: httpx.Client, url: str, headers: dict[str, str]) -> list[float]:
    for _ in range(WARMUP):
        client.get(url, headers=headers).raise_for_status()
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        client.get(url, headers=headers).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _deploy_to_first_200(account: Account, project: Path, name: str) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        ["npx", "--no-install", "wrangler", "deploy", "--cwd", str(project)],
        cwd=ROOT,
        env=account.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if account.get(name).status_code == 200:
                return time.perf_counter() - started
            if process.poll() not in (None, 0):
                raise RuntimeError("wrangler deploy failed")
            time.sleep(0.025)
    finally:
        process.wait(60)


def _dry_run(account: Account, project: Path) -> float:
    """wrangler's own part of a deploy (start, config, bundle) without the upload."""
    started = time.perf_counter()
    subprocess.run(
        ["npx", "--no-install", "wrangler", "deploy", "--dry-run", "--cwd", str(project)],
        cwd=ROOT, env=account.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def run() -> dict[str, object]:
    work = Path(tempfile.mkdtemp())
    with account_server(work / "apiary") as server, account_of(server) as account:
        cold = _deploy_to_first_200(account, write_worker(work / "cold", "cold", WORKER), "cold")
        warm = [
            _deploy_to_first_200(
                account, write_worker(work / f"w{i}", f"warm{i}", WORKER), f"warm{i}"
            )
            for i in range(3)
        ]
        project = write_worker(work / "bench", "bench", WORKER)
        dry = [_dry_run(account, project) for _ in range(3)]
        account.wrangler(project, "deploy")
        port = free_port()
        dev = subprocess.Popen(
            ["npx", "--no-install", "wrangler", "dev", "--cwd", str(project), "--ip", "127.0.0.1",
             "--port", str(port), "--log-level", "error", "--show-interactive-dev-session=false"],
            cwd=ROOT, env=account.env() | {"WRANGLER_SEND_METRICS": "false"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True,  # npx, wrangler and workerd: stopped together below
        )  # fmt: skip
        try:
            wait_up(f"http://127.0.0.1:{port}/", timeout_s=60)
            samples: dict[str, list[float]] = {"apiary": [], "wrangler_dev": []}
            with httpx.Client(timeout=30) as client:
                for _ in range(ROUNDS):
                    samples["wrangler_dev"] += _latencies(client, f"http://127.0.0.1:{port}/x", {})
                    samples["apiary"] += _latencies(
                        client, f"{server.url}/x", {"Host": f"bench.localhost:{server.port}"}
                    )
        finally:
            os.killpg(dev.pid, signal.SIGTERM)  # terminate() would leave wrangler and workerd
            dev.wait(20)
    report: dict[str, object] = {
        "benchmark": "a deployed Worker: apiary dev's routing vs plain wrangler dev",
        "requests": REQUESTS * ROUNDS,
    }
    for name, values in samples.items():
        report[f"{name}_p50_ms"] = round(statistics.median(values), 3)
        report[f"{name}_p99_ms"] = round(_percentile(values, 0.99), 3)
    report["p50_ratio"] = round(
        float(report["apiary_p50_ms"]) / float(report["wrangler_dev_p50_ms"]),
        3,  # type: ignore[arg-type]
    )
    report["p99_ratio"] = round(
        float(report["apiary_p99_ms"]) / float(report["wrangler_dev_p99_ms"]),
        3,  # type: ignore[arg-type]
    )
    report["deploy_to_first_200_s_cold"] = round(cold, 3)
    report["deploy_to_first_200_s_warm_median"] = round(statistics.median(warm), 3)
    report["wrangler_dry_run_s_median"] = round(statistics.median(dry), 3)
    report["deploy_after_wrangler_own_work_s"] = round(
        statistics.median(warm) - statistics.median(dry), 3
    )
    return report
