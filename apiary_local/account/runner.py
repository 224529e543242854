"""The Node process that runs deployed Workers on workerd (`runner.mjs`), from apiary dev.

It starts when the first runnable version is deployed and stops with apiary dev (closing its
stdin makes it dispose workerd and exit, so a killed apiary dev leaves no Worker running).
`apply(specs)` hands it the complete set of versions to run, as files under
`STATE/account/run/<version id>/` (immutable, like the versions), and waits until workerd
serves them behind one gateway socket; a Worker that cannot start (a syntax error, an
exception at the top level) fails the call with workerd's message and the previous set keeps
running. Reports of finished invocations (console lines, subrequests, exception) wait in
workerd until `collect()` fetches them through the gateway (apiary dev does every second,
before a GraphQL query, and before workerd is replaced) and hands them to `on_reports`: no
process is crossed per request. Reports of a workerd that had to be killed are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from apiary_local.account.uploads import MODULE_TYPES, Module
from logs import get_logger

log = get_logger("account.runner")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]  # the project (node_modules lives there)
ENTRY = "__apiary_entry.js"
APPLY_TIMEOUT_S = 60.0
COLLECT_TIMEOUT_S = 2.0
DEFAULT_COMPATIBILITY_DATE = "2025-01-01"


class RunnerError(Exception):
    """workerd would not run the given Workers (the message is workerd's)."""


class RunnerUnavailable(RunnerError):
    """The runner itself could not be started (no Node, no miniflare)."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    version_id: str
    metadata: dict[str, Any]
    modules: tuple[Module, ...]

    @property
    def name(self) -> str:
        """The version's miniflare worker (and gateway binding) name."""
        return "v" + self.version_id.replace("-", "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker_config(spec: WorkerSpec, directory: Path) -> dict[str, Any]:
    metadata = spec.metadata
    values: dict[str, Any] = {}
    dispatch: dict[str, str] = {}
    for binding in metadata.get("bindings") or []:
        kind = binding["type"]
        if kind in ("plain_text", "secret_text"):
            values[binding["name"]] = binding["text"]
        elif kind == "json":
            values[binding["name"]] = binding["json"]
        elif kind == "dispatch_namespace":
            dispatch[binding["name"]] = binding["namespace"]
    return {
        "name": spec.name,
        "dir": str(directory),
        "modules": [
            {"name": m.name, "type": MODULE_TYPES[m.content_type]}
            for m in spec.modules
            if MODULE_TYPES.get(m.content_type)
        ],
        "compatibilityDate": metadata.get("compatibility_date") or DEFAULT_COMPATIBILITY_DATE,
        "compatibilityFlags": list(metadata.get("compatibility_flags") or []),
        "bindings": values,
        "dispatch": dispatch,
    }


class WorkerRunner:
    def __init__(
        self,
        run_dir: Path,
        *,
        router_address: str,
        on_reports: Callable[[list[dict[str, Any]]], None],
        node: str | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.router_address = router_address
        self.on_reports = on_reports
        self.node = node or shutil.which("node") or "node"
        self.gateway_token = secrets.token_urlsafe(24)
        self.dispatch_token = secrets.token_urlsafe(24)
        self.reports_token = secrets.token_urlsafe(24)
        self._client: httpx.AsyncClient | None = None
        self.gateway_url: str | None = None
        self._port = _free_port()
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def _write(self, spec: WorkerSpec) -> Path:
        directory = self.run_dir / spec.version_id
        if directory.exists():
            return directory
        staging = self.run_dir / f".{spec.version_id}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        main = spec.metadata["main_module"]
        for module in spec.modules:
            path = staging / module.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(module.content)
        wrapper = (HERE / "wrapper.js").read_text().replace("__MAIN__", f"./{main}")
        (staging / ENTRY).write_text(wrapper)
        staging.rename(directory)
        return directory

    async def _start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        stderr = (self.run_dir.parent / "runner.log").open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                self.node,
                str(HERE / "runner.mjs"),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                cwd=str(ROOT),
                limit=16 * 1024 * 1024,
            )
        except OSError as exc:
            raise RunnerUnavailable(f"cannot start the Worker runner ({self.node}): {exc}") from exc
        finally:
            stderr.close()
        self._reader = asyncio.create_task(self._read(self._process))
        log.info("worker runner started", extra={"fields": {"pid": self._process.pid}})

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if (future := self._pending.pop(message.get("id"), None)) and not future.done():
                future.set_result(message)
        await process.wait()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RunnerError("the Worker runner exited"))
        self._pending.clear()
        if self._process is process:
            self.gateway_url = None
            log.warning("worker runner exited", extra={"fields": {"code": process.returncode}})

    async def _call(self, command: dict[str, Any]) -> str:
        if not self.running:
            await self._start()
        process = self._process
        assert process is not None
        assert process.stdin is not None
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        process.stdin.write((json.dumps({**command, "id": self._next_id}) + "\n").encode())
        await process.stdin.drain()
        async with asyncio.timeout(APPLY_TIMEOUT_S):
            reply = await future
        if not reply.get("ok"):
            raise RunnerError(str(reply.get("error") or "workerd did not start"))
        url = str(reply["url"])
        self.gateway_url = url
        return url

    async def apply(self, specs: list[WorkerSpec]) -> None:
        """Runs exactly `specs` (none: the runner stops)."""
        async with self._lock:
            if not specs:
                await self._stop()
                return
            await self._collect()
            config = {
                "gatewayToken": self.gateway_token,
                "dispatchToken": self.dispatch_token,
                "reportsToken": self.reports_token,
                "router": self.router_address,
                "port": self._port,
                "workers": [_worker_config(s, self._write(s)) for s in specs],
            }
            await self._call({"op": "apply", "config": config})

    async def restart(self) -> None:
        """A fresh workerd with the same Workers: the way out of an isolate that never yields."""
        async with self._lock:
            if self.running:
                await self._call({"op": "restart"})

    async def collect(self) -> None:
        """Fetches the invocation reports waiting in workerd (a stuck workerd: none)."""
        async with self._lock:
            await self._collect()

    async def _collect(self) -> None:
        url = self.gateway_url
        if url is None or not self.running:
            return
        if self._client is None:
            self._client = httpx.AsyncClient()
        headers = {"x-apiary-token": self.gateway_token, "x-apiary-target": "__reports"}
        try:
            answer = await self._client.get(url, headers=headers, timeout=COLLECT_TIMEOUT_S)
            reports = answer.json() if answer.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            return
        if reports:
            try:
                self.on_reports(reports)
            except Exception:
                log.exception("invocation reports could not be stored")

    async def stop(self) -> None:
        async with self._lock:
            await self._stop()

    async def _stop(self) -> None:
        await self._collect()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        process, self._process = self._process, None
        self.gateway_url = None
        if process is None:
            return
        if process.returncode is None and process.stdin is not None:
            process.stdin.close()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
