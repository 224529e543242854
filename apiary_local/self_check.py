"""`apiary self-check install|run URL`: apiary's browser checks pointed at its own dashboard.

    APIARY_TOKEN=... apiary self-check install https://apiary.example
    APIARY_TOKEN=... apiary self-check run https://apiary.example     (install, run, wait)

`install` saves the `apiary-self` suite (`src/browser/suites.py`) for that origin with
`POST /api/browser_tests/suites`; `run` also runs it and prints each check's verdict. The auth
checks sign in through the dashboard's form with the `BROWSER_CREDENTIALS` entry named
`apiary-self`: `{"username": SUBJECT, "password": TOKEN, "origins": [URL]}`, a token minted for
that subject (`apiary token --subject apiary-self --scope browser_tests:read --ttl 30d`).
APIARY_TOKEN (or --token-file) needs `browser_tests:write`.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import time
from pathlib import Path
from typing import Any, cast

import httpx

from apiary_local.token_source import read_token

DONE = {"passed", "failed", "error"}


def _import_suites() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from browser import suites

    return suites


def install(client: httpx.Client, url: str) -> dict[str, Any]:
    suite = _import_suites().apiary_self(url)
    response = client.post(f"{url.rstrip('/')}/api/browser_tests/suites", json=suite)
    response.raise_for_status()
    return cast(dict[str, Any], response.json())


def run(client: httpx.Client, url: str, timeout_s: float = 180.0) -> dict[str, Any]:
    base = url.rstrip("/")
    started = client.post(f"{base}/api/browser_tests/run_suite", json={"suite_name": "apiary-self"})
    started.raise_for_status()
    run_id = started.json()["suite_run"]["id"]
    deadline = time.monotonic() + timeout_s
    while True:
        record: dict[str, Any] = client.get(f"{base}/api/browser_tests/{run_id}").json()
        if record["status"] in DONE or time.monotonic() > deadline:
            return record
        time.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # `--token SECRET` must not be read as `--token-file`
        prog="apiary self-check",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument("mode", choices=["install", "run"])
    parser.add_argument("url", help="the dashboard's origin, e.g. https://apiary.example")
    parser.add_argument("--token-file", type=Path, help="a mode-600 file holding the token")
    parser.add_argument("--ca", type=Path, help="a CA bundle for a local https certificate")
    args = parser.parse_args(argv)
    token = read_token("APIARY_TOKEN", args.token_file)
    verify: Any = ssl.create_default_context(cafile=args.ca) if args.ca else True
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=30, verify=verify) as client:
        install(client, args.url)
        print(f"installed suite apiary-self for {args.url}")
        if args.mode == "install":
            return 0
        record = run(client, args.url)
    for child in record.get("children", []):
        print(f"{child['status'].upper():7} {child['test_type']} {child['target_url']}")
        for check in child["assertions"]:
            print(f"    {'ok ' if check['passed'] else 'NO '} {check['name']}: {check['actual']}")
    print(f"apiary-self: {record['status']}")
    return 0 if record["status"] == "passed" else 1
