"""`apiary check-deployed URL`: after a real deploy, exercise the live Worker end to end.

    APIARY_TOKEN=... apiary check-deployed https://apiary.example.workers.dev \
        [--backend https://backend.example] [--job NAME] [--token-file PATH]

The token (an `admin` token from `apiary token`) comes from `APIARY_TOKEN` or a file, never the
command line. Each check prints PASS, FAIL or SKIP with what it saw; the exit status is 1 when
any check failed.

- health: `GET /health` answers 200 with the environment, version and checks.
- auth: `GET /api/auth/whoami` accepts the token.
- task: with `--backend` (a reference backend, `apiary backend`, registered with this apiary
  and reachable from Cloudflare), a task goes out and comes back `succeeded`.
- swarm: a swarm and an invite are created, a device joins over the WebSocket (WELCOME, STATE),
  `ping` is answered `pong` by the hibernation auto-response, and a client close completes
  with 1000 (a close the server never answers ends in 1006).
- trigger: `POST /trigger` for `--job` runs it to its end; without `--job` an unknown job name
  must answer 404, which proves the route and the token without running anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from apiary_local.token_source import read_token

TOKEN_ENV = "APIARY_TOKEN"
TERMINAL_TASK = {"succeeded", "failed", "cancelled", "timed_out"}
ACTIVE_RUN = {"queued", "running", "retrying"}


class CheckFailed(Exception):
    pass


class Skipped(Exception):
    pass


@dataclass
class Checker:
    base: str
    client: httpx.AsyncClient
    backend: str | None
    job: str | None
    timeout_s: float

    async def _json(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = await self.client.request(method, f"{self.base}{path}", **kwargs)
        if response.status_code != expect:
            raise CheckFailed(
                f"{method} {path}: HTTP {response.status_code}: {response.text[:200]}"
            )
        return response.json()

    async def _until[T](self, what: str, poll: Callable[[], Awaitable[T | None]]) -> T:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            found = await poll()
            if found is not None:
                return found
            await asyncio.sleep(0.5)
        raise CheckFailed(f"{what}: nothing within {self.timeout_s:.0f}s")

    async def health(self) -> str:
        body = await self._json("GET", "/health", 200)
        # The checks are shown only to a caller whose token apiary accepts.
        found = body.get("checks")
        checks = (
            "checks hidden: token refused"
            if found is None
            else ", ".join(f"{k}={v}" for k, v in sorted(found.items()))
        )
        return f"{body['status']} ({body['environment']} {body['version']}; {checks})"

    async def auth(self) -> str:
        body = await self._json("GET", "/api/auth/whoami", 200)
        return f"{body['subject']} with {' '.join(body['scopes'])}"

    async def task(self) -> str:
        if not self.backend:
            raise Skipped("no --backend given")
        # Its own client: apiary's token never goes to the backend.
        async with httpx.AsyncClient(timeout=30) as plain:
            stats = (await plain.get(f"{self.backend.rstrip('/')}/stats")).json()
        server_id = stats.get("server_id")
        if not server_id:
            raise CheckFailed("the backend has not registered with this apiary")

        async def healthy() -> dict[str, Any] | None:
            server = await self._json("GET", f"/api/servers/{server_id}", 200)
            return server if server["status"] == "healthy" else None

        await self._until(f"server {server_id} healthy", healthy)
        task = await self._json(
            "POST",
            "/api/task",
            201,
            json={"type": "check-deployed", "payload": {"at": time.time()}},
        )

        async def finished() -> dict[str, Any] | None:
            found = await self._json("GET", f"/api/task/{task['id']}", 200)
            return found if found["status"] in TERMINAL_TASK else None

        done = await self._until(f"task {task['id']}", finished)
        if done["status"] != "succeeded":
            raise CheckFailed(f"task {task['id']} ended {done['status']}: {done.get('error')}")
        return f"task {task['id']} succeeded on {done['server_id']}"

    async def swarm(self) -> str:
        swarm = await self._json("POST", "/api/swarms", 201, json={"name": "check-deployed"})
        invite = await self._json("POST", f"/api/swarms/{swarm['id']}/invites", 201, json={})
        async with connect(invite["join_url"], open_timeout=self.timeout_s) as ws:
            join = {"type": "JOIN", "data": {"invite_token": invite["token"]}}
            await ws.send(json.dumps(join))
            kinds = [json.loads(await ws.recv(decode=True))["type"] for _ in range(2)]
            if kinds != ["WELCOME", "STATE"]:
                raise CheckFailed(f"joined, then got {kinds} (expected WELCOME, STATE)")
            await ws.send("ping")
            if (reply := await asyncio.wait_for(ws.recv(decode=True), 10)) != "pong":
                raise CheckFailed(f"ping answered {reply!r}")
            await ws.close(1000, "check done")
        if ws.close_code != 1000:
            raise CheckFailed(f"the close ended with {ws.close_code} (the server did not answer)")
        return f"joined swarm {swarm['id']}, ping/pong, close 1000"

    async def trigger(self) -> str:
        if self.job is None:
            name = "check-deployed-no-such-job"
            error = await self._json("POST", "/trigger", 404, json={"job": name})
            return f"route and token work (unknown job: {error['error']['code']})"
        runs = (await self._json("POST", "/trigger", 202, json={"job": self.job}))["runs"]

        async def ended() -> dict[str, Any] | None:
            run = await self._json("GET", f"/api/cron/runs/{runs[0]['id']}", 200)
            return None if run["status"] in ACTIVE_RUN else run

        run = await self._until(f"run {runs[0]['id']}", ended)
        if run["status"] != "succeeded":
            raise CheckFailed(f"run {run['id']} ended {run['status']}: {run.get('error')}")
        return f"run {run['id']} of {self.job} succeeded after {run['attempts_made']} attempt(s)"


async def run_checks(checker: Checker, out: Any = sys.stdout) -> bool:
    checks = [
        ("health", checker.health),
        ("auth", checker.auth),
        ("task", checker.task),
        ("swarm", checker.swarm),
        ("trigger", checker.trigger),
    ]
    passed = True
    for name, check in checks:
        started = time.monotonic()
        try:
            detail = await check()
            verdict = "PASS"
        except Skipped as skip:
            verdict, detail = "SKIP", str(skip)
        except Exception as exc:  # any failure is the check's finding, not a crash
            verdict, detail = "FAIL", str(exc) or type(exc).__name__
            passed = False
        elapsed = (time.monotonic() - started) * 1000
        print(f"{verdict:4}  {name:8} {detail} ({elapsed:.0f} ms)", file=out, flush=True)
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # `--token SECRET` must not be read as `--token-file`
        prog="apiary check-deployed",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument("url", help="the deployed Worker, e.g. https://apiary.example.workers.dev")
    parser.add_argument(
        "--backend", help="a registered reference backend's URL, for the task check"
    )
    parser.add_argument("--job", help="a cron job to run for real (default: a dry 404 check)")
    parser.add_argument("--token-file", type=Path, help=f"instead of ${TOKEN_ENV}")
    parser.add_argument("--timeout-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    token = read_token(TOKEN_ENV, args.token_file)

    async def go() -> bool:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            checker = Checker(args.url.rstrip("/"), client, args.backend, args.job, args.timeout_s)
            return await run_checks(checker)

    return 0 if asyncio.run(go()) else 1
