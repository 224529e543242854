"""The reference backend: a real server that speaks apiary's backend contract.

    APIARY_TOKEN=... apiary backend --apiary http://127.0.0.1:8787 --name worker-1 \
        [--port 9001] [--public-url URL] [--capabilities cpu,gpu] [--capacity 8] \
        [--work-ms 200] [--fail-rate 0.1] [--reject 500:2] [--hang] [--heartbeat-s 5]

Tokens never come from the command line (`ps` shows argv to every user): the `servers:admin`
token to self-register with is `APIARY_TOKEN` (or `--token-file`), and the token scheduled job
calls must carry is `CRON_TOKEN` (or `--cron-token-file`).

The contract (see the README): apiary sends `POST /tasks` with `{id, type, payload, attempt,
lease_id, timeout_s, callback_url}` and `X-Apiary-Lease`; the backend answers 2xx at once,
works, then calls `PUT callback_url` with its server credential, the lease, and
`{status: succeeded|failed, result?, error?}`. It serves `GET /health`. Its heartbeats list the
tasks it is working on (`active_tasks`), and `POST /tasks/{id}/cancel` (with the lease) stops
one. `--forget` accepts dispatches and then drops them, never calling back: a backend whose
callbacks were lost. This one registers
itself with an admin token at start (without one it only serves), heartbeats, answers scheduled
job calls at `/cron/{job}` (checking `CRON_TOKEN`), and counts what happened at `GET /stats`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary_local.token_source import read_token

CALLBACK_TRIES = 5


@dataclass
class Behaviour:
    work_ms: int = 200
    fail_rate: float = 0.0
    reject_status: int = 0
    reject_times: int = 0
    hang: bool = False
    forget: bool = False  # accept, then drop the task (no callback, not in heartbeats)


@dataclass
class Backend:
    apiary: str
    behaviour: Behaviour
    name: str
    capabilities: list[str]
    capacity: int
    admin_token: str | None
    heartbeat_s: float
    cron_token: str | None = None
    url: str = ""
    server_id: str | None = None
    credential: str | None = None
    stats: Counter[str] = field(default_factory=Counter)
    completed: Counter[str] = field(default_factory=Counter)  # task id -> acknowledged outcomes
    working: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # task id -> work
    random: random.Random = field(default_factory=random.Random)
    leases: dict[str, str] = field(default_factory=dict)
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=10))
    # Set once the credential is in hand: apiary may dispatch as soon as this server is
    # healthy, which can be before its registration has answered.
    registered: asyncio.Event = field(default_factory=asyncio.Event)

    async def register(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{self.apiary}/api/servers",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            json={
                "name": self.name,
                "url": self.url,
                "capabilities": self.capabilities,
                "capacity": self.capacity,
            },
        )
        response.raise_for_status()
        body = response.json()
        self.server_id = body["server"]["id"]
        self.credential = body["credential"]
        self.registered.set()

    async def join(self, client: httpx.AsyncClient) -> None:
        """Once this server answers its own /health, register (apiary checks it at once)."""
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{self.url}/health")).is_success:
                    break
            await asyncio.sleep(0.05)
        if not self.admin_token:
            self.registered.set()  # someone else registered it: callbacks go without a credential
            return
        await self.register(client)
        await self.heartbeats(client)

    async def heartbeats(self, client: httpx.AsyncClient) -> None:
        while self.heartbeat_s > 0:
            await asyncio.sleep(self.heartbeat_s)
            with contextlib.suppress(httpx.HTTPError):
                await client.post(
                    f"{self.apiary}/api/servers/{self.server_id}/heartbeat",
                    headers={"Authorization": f"Bearer {self.credential}"},
                    json={"load": self.active / self.capacity, "active_tasks": list(self.working)},
                )

    @property
    def active(self) -> int:
        return len(self.working)

    async def work(self, task: dict[str, Any], lease: str) -> None:
        try:
            await asyncio.sleep(self.behaviour.work_ms / 1000)
            if self.random.random() < self.behaviour.fail_rate:
                outcome: dict[str, Any] = {
                    "status": "failed",
                    "error": "reference backend failed on purpose",
                }
            else:
                outcome = {
                    "status": "succeeded",
                    "result": {"worker": self.name, "echo": task.get("payload")},
                }
        finally:
            self.working.pop(task["id"], None)
            self.leases.pop(task["id"], None)
        await self.registered.wait()
        url = task.get("callback_url") or f"{self.apiary}/api/task/{task['id']}"
        headers = {"Authorization": f"Bearer {self.credential}", "X-Apiary-Lease": lease}
        client = self.client
        for attempt in range(CALLBACK_TRIES):
            try:
                response = await client.put(url, json=outcome, headers=headers)
            except httpx.HTTPError:
                self.stats["callback_errors"] += 1
            else:
                if response.status_code < 500:
                    key = "callbacks_accepted" if response.is_success else "callbacks_refused"
                    self.stats[key] += 1
                    if response.is_success:
                        self.completed[task["id"]] += 1
                    return
                self.stats["callback_errors"] += 1
            await asyncio.sleep(0.2 * 2**attempt)

    async def accept(self, request: Request) -> Response:
        self.stats["dispatches"] += 1
        behaviour = self.behaviour
        if behaviour.hang:
            await asyncio.Event().wait()  # until the caller gives up
        if behaviour.reject_times > 0:
            behaviour.reject_times -= 1
            self.stats["rejected"] += 1
            return JSONResponse({"error": "rejected on purpose"}, behaviour.reject_status)
        task = await request.json()
        lease = request.headers.get("x-apiary-lease", task.get("lease_id", ""))
        self.stats["accepted"] += 1
        if behaviour.forget:
            return JSONResponse({"accepted": task["id"]}, 202)
        job = asyncio.create_task(self.work(task, lease))
        self.working[task["id"]] = job
        self.leases[task["id"]] = lease
        return JSONResponse({"accepted": task["id"]}, 202)

    async def cancel(self, request: Request) -> Response:
        """apiary cancelled a task this server holds: stop working on it (no callback)."""
        task_id = request.path_params["task_id"]
        job = self.working.get(task_id)
        if job is None or request.headers.get("x-apiary-lease") != self.leases.get(task_id):
            return JSONResponse({"error": "not working on that task under that lease"}, 404)
        job.cancel()
        self.working.pop(task_id, None)
        self.leases.pop(task_id, None)
        self.stats["cancelled"] += 1
        return JSONResponse({"cancelled": task_id})

    async def cron(self, request: Request) -> Response:
        """A scheduled job call from apiary: check the token, count it, answer at once."""
        if self.cron_token and request.headers.get("authorization") != f"Bearer {self.cron_token}":
            return JSONResponse({"error": "bad cron token"}, 401)
        body = await request.json() if request.method != "GET" else {}
        self.stats[f"cron:{request.path_params['job']}"] += 1
        return JSONResponse({"ok": True, "job": body.get("job"), "attempt": body.get("attempt")})

    async def health(self, _: Request) -> Response:
        return JSONResponse({"status": "ok", "active": self.active})

    async def report(self, _: Request) -> Response:
        return JSONResponse(
            {
                "server_id": self.server_id,
                "stats": dict(self.stats),
                "completed": dict(self.completed),
            }
        )


def build_app(backend: Backend) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        joining = asyncio.create_task(backend.join(backend.client))
        try:
            yield
        finally:
            joining.cancel()
            await backend.client.aclose()

    return Starlette(
        routes=[
            Route("/tasks", backend.accept, methods=["POST"]),
            Route("/tasks/{task_id}/cancel", backend.cancel, methods=["POST"]),
            Route("/cron/{job}", backend.cron, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/health", backend.health),
            Route("/stats", backend.report),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # `--token SECRET` must not be read as `--token-file`
        prog="apiary backend",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument("--apiary", default="http://127.0.0.1:8787")
    parser.add_argument(
        "--token-file", type=Path, help="instead of $APIARY_TOKEN (servers:admin, to register)"
    )
    parser.add_argument("--cron-token-file", type=Path, help="instead of $CRON_TOKEN")
    parser.add_argument("--name", default="reference-backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument(
        "--public-url", help="where apiary reaches this backend (default http://HOST:PORT)"
    )
    parser.add_argument("--capabilities", default="", help="comma separated")
    parser.add_argument("--capacity", type=int, default=8)
    parser.add_argument("--work-ms", type=int, default=200)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--reject", default="", metavar="STATUS:COUNT")
    parser.add_argument("--hang", action="store_true", help="never answer dispatches")
    parser.add_argument(
        "--forget", action="store_true", help="accept dispatches, then never call back"
    )
    parser.add_argument("--heartbeat-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    status, _, count = args.reject.partition(":")
    backend = Backend(
        apiary=args.apiary.rstrip("/"),
        behaviour=Behaviour(
            work_ms=args.work_ms,
            fail_rate=args.fail_rate,
            reject_status=int(status or 0),
            reject_times=int(count or 0),
            hang=args.hang,
            forget=args.forget,
        ),
        name=args.name,
        capabilities=[c for c in args.capabilities.split(",") if c],
        capacity=args.capacity,
        admin_token=read_token("APIARY_TOKEN", args.token_file, required=False),
        heartbeat_s=args.heartbeat_s,
        cron_token=read_token("CRON_TOKEN", args.cron_token_file, required=False),
        url=(args.public_url or f"http://{args.host}:{args.port}").rstrip("/"),
    )
    uvicorn.run(build_app(backend), host=args.host, port=args.port, log_level="warning")
    return 0
