"""`make bench`: run every benchmark, print its report, keep it in bench/results/."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # as pytest's pythonpath

from bench import account, browser, cost, cron, dashboard, fleet, health, shards, swarms, tasks

BENCHMARKS = {
    "health": health.run,
    "tasks": tasks.run,
    "shards": shards.run,
    "cron": cron.run,
    "swarms": swarms.run,
    "browser": browser.run,
    "dashboard": dashboard.run,
    "account": account.run,
    "fleet": fleet.run,
    "cost": cost.run,  # last: it reads the figures the others wrote in this run
}


def main(names: list[str]) -> int:
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    for name in names or list(BENCHMARKS):
        report = BENCHMARKS[name]()
        (results / f"{name}.json").write_text(json.dumps(report, indent=2))
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
