"""Fleet management on apiary dev's local account (real workerd), three figures:

1. `POST /api/workers` to the Worker's first 200 at its URL, against the baseline of the same
   upload straight to the account API (`PUT .../scripts/{name}`) to its first 200, in the same
   run: the ratio is what apiary adds (the existence checks, workers.dev, the health object,
   the D1 batch).
2. A rollout step's decision latency: how long after its interval is due a step is judged
   (`history[].at - history[].due_at`), over a promoted rollout of `STEPS` steps.
3. The meter's cost per managed Worker per day of health checks and usage polls. A day is
   compressed: checks every 0.25 s and 3 s "hours" (the same 288 checks and 24 hourly polls,
   12 checks an hour), with traffic to every Worker each hour so its usage rows change. The
   meter's Durable Object requests and rows written (DO and D1) over that day, per Worker.
   Goal: at most 300 DO requests and 400 rows written per Worker per day.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from cfapi.multipart import encode
from tests.account_client import ACCOUNT_ID
from tests.fleet_client import GOOD, Fleet, code, fleet_server

DEPLOYS = 6
STEPS = [20, 40, 60, 80, 100]
WORKERS = 3
DAY_CHECKS, DAY_HOURS = 288, 24
INTERVAL_S, HOUR_S = 0.25, 3.0  # 12 checks an "hour", as 5 minutes make an hour


def _first_200(fleet: Fleet, name: str, started: float) -> float:
    while fleet.worker(name).status_code != 200:
        time.sleep(0.01)
    return (time.perf_counter() - started) * 1000


def _through_apiary(fleet: Fleet, name: str) -> float:
    started = time.perf_counter()
    fleet.create(name)
    return _first_200(fleet, name, started)


def _straight_to_the_account(fleet: Fleet, name: str) -> float:
    metadata = {"main_module": "index.js", "compatibility_date": "2025-11-17"}
    body, content_type = encode({"metadata": metadata}, code(GOOD, "raw")["modules"])
    started = time.perf_counter()
    answer = fleet.account.client.put(
        f"{fleet.account.api}/accounts/{ACCOUNT_ID}/workers/scripts/{name}",
        headers={**fleet.account.headers, "Content-Type": content_type},
        content=body,
    )
    answer.raise_for_status()
    return _first_200(fleet, name, started)


def deploy_to_first_200(fleet: Fleet) -> dict[str, Any]:
    """Alternating which goes first: every upload restarts workerd with one more Worker, so
    neither side always pays for the bigger set."""
    apiary, direct = [], []
    for i in range(DEPLOYS):
        if i % 2:
            direct.append(_straight_to_the_account(fleet, f"bench-raw-{i}"))
            apiary.append(_through_apiary(fleet, f"bench-api-{i}"))
        else:
            apiary.append(_through_apiary(fleet, f"bench-api-{i}"))
            direct.append(_straight_to_the_account(fleet, f"bench-raw-{i}"))
    p50, base = statistics.median(apiary), statistics.median(direct)
    return {
        "apiary_post_to_first_200_ms_p50": round(p50, 1),
        "account_api_put_to_first_200_ms_p50": round(base, 1),
        "ratio": round(p50 / base, 2),
        "runs": DEPLOYS,
    }


def rollout_decisions(fleet: Fleet) -> dict[str, Any]:
    fleet.create("bench-rollout", label="one")
    two = fleet.new_version("bench-rollout", GOOD, "two")
    spec = {"version_id": two, "steps": STEPS, "step_interval_s": 1, "min_requests": 0}
    fleet.ok(fleet.api.post("/api/workers/bench-rollout/rollouts", json=spec), 201)
    done = fleet.wait_rollout("bench-rollout", lambda r: r["status"] != "running", 120)
    assert done["status"] == "succeeded", done

    def ms(iso: str) -> float:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000

    late = [ms(h["at"]) - ms(h["due_at"]) for h in done["history"]]
    return {
        "steps": len(late),
        "decision_after_due_ms_p50": round(statistics.median(late), 1),
        "decision_after_due_ms_max": round(max(late), 1),
        "note": "includes 2 x 3 pinned /health probes and one GraphQL query per decision",
    }


def day_of_checks(directory: Path) -> dict[str, Any]:
    with fleet_server(
        directory, FLEET_HEALTH_INTERVAL_S=str(INTERVAL_S), FLEET_HEALTH_BUCKET_S=str(HOUR_S)
    ) as fleet:
        names = [f"day-{i}" for i in range(WORKERS)]
        for name in names:
            fleet.create(name)
        time.sleep(1.0)  # every Worker has had its first check
        fleet.server.reset_meter()
        started = time.monotonic()
        for hour in range(DAY_HOURS):
            for name in names:
                for _ in range(3):
                    fleet.worker(name, f"/h{hour}")
            fleet.poll_usage()
            time.sleep(max(0.0, started + (hour + 1) * HOUR_S - time.monotonic()))
        meter = fleet.server.meter()
        health = meter["objects"].get("WorkerHealth", {})
        billable = meter["billable"]
        alarms = int(health.get("do_alarms", 0))
        day_s = DAY_CHECKS * INTERVAL_S
        elapsed = time.monotonic() - started
        scale = day_s / elapsed  # a slow machine ran fewer checks in the same "day"
        do_requests = billable["do_requests"] / WORKERS * scale
        rows = (billable["do_rows_written"] + billable["d1_rows_written"]) / WORKERS * scale
        return {
            "workers": WORKERS,
            "checks_per_worker": round(alarms / WORKERS * scale),
            "do_requests_per_worker_day": round(do_requests),
            "rows_written_per_worker_day": round(rows),
            "do_rows_written_per_worker_day": round(billable["do_rows_written"] / WORKERS * scale),
            "d1_rows_written_per_worker_day": round(billable["d1_rows_written"] / WORKERS * scale),
            "goal": {"do_requests": 300, "rows_written": 400},
            "within_goal": do_requests <= 300 and rows <= 400,
        }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        with fleet_server(Path(tmp) / "a") as fleet:
            first_200 = deploy_to_first_200(fleet)
            decisions = rollout_decisions(fleet)
        day = day_of_checks(Path(tmp) / "b")
    return {
        "benchmark": "fleet",
        "post_workers_to_first_200": first_200,
        "rollout_step_decision": decisions,
        "health_and_usage_per_worker_day": day,
    }
