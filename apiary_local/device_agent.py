"""The device agent: joins a swarm over WebSocket and runs the chunks it is given.

    APIARY_INVITE_TOKEN=... apiary device join URL --swarm swm_... [--credentials F]
    apiary device resume URL --swarm swm_... [--credentials F]

The invite token comes from `APIARY_INVITE_TOKEN` or `--token-file` (mode 600), never argv.
It keeps a persistent id and its credentials in a file (joins once, resumes after), reconnects
with exponential backoff and full jitter, sends `ping` heartbeats (answered by the swarm's
auto-response), and runs each JOB_ASSIGN through a handler: `--handler module:function`, called
with the chunk's payload (sync or async), whose return value is the result. The default handler
echoes the payload after sleeping `payload["ms"]` milliseconds, if given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import os
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import websockets

from apiary_local.token_source import read_token
from swarms.credentials import sign

type Handler = Callable[[Any], Any | Awaitable[Any]]
INVITE_TOKEN_ENV = "APIARY_INVITE_TOKEN"
FATAL = {"unknown device", "bad signature"}  # credentials that will never work again


async def echo(payload: Any) -> Any:
    if isinstance(payload, dict) and isinstance(payload.get("ms"), int | float):
        await asyncio.sleep(payload["ms"] / 1000)
    return {"echo": payload}


@dataclass
class Credentials:
    persistent_id: str = field(default_factory=lambda: secrets.token_hex(8))
    device_id: str | None = None
    device_secret: str | None = None

    @classmethod
    def load(cls, path: Path | None) -> Credentials:
        if path is not None and path.exists():
            return cls(**json.loads(path.read_text()))
        return cls()

    def save(self, path: Path | None) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__))
        os.chmod(tmp, 0o600)
        tmp.replace(path)


@dataclass
class DeviceAgent:
    base_url: str
    swarm_id: str
    token: str | None = None
    credentials_path: Path | None = None
    name: str = "device"
    capabilities: dict[str, Any] = field(
        default_factory=lambda: {"cpuCores": os.cpu_count() or 1, "memoryGB": 4.0,
                                 "gpuAvailable": False}
    )  # fmt: skip
    score: float | None = None
    handler: Handler = echo
    heartbeat_s: float = 10.0
    backoff_s: tuple[float, float] = (0.2, 10.0)
    credentials: Credentials = field(init=False)
    completed: list[str] = field(default_factory=list)  # chunk ids this agent reported
    state_version: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    fatal: str | None = None
    _ws: Any = None
    _chunks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.credentials = Credentials.load(self.credentials_path)

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/").replace("https://", "wss://", 1)
        base = base.replace("http://", "ws://", 1)
        return f"{base}/api/swarms/{self.swarm_id}/ws?persistentId={self.credentials.persistent_id}"

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Stay connected until `stop` is set or the credentials are refused for good."""
        stop = stop or asyncio.Event()
        failures = 0
        while not stop.is_set() and self.fatal is None:
            try:
                await self._session(stop)
                failures = 0
            except (TimeoutError, OSError, websockets.WebSocketException):
                failures += 1
            finally:
                self.connected.clear()
            if stop.is_set() or self.fatal is not None:
                return
            low, cap = self.backoff_s
            delay = random.uniform(low, min(cap, low * 2**failures))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    def drop(self) -> None:
        """Cut the connection abruptly (no close frame), as a crash or a lost network would."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def _session(self, stop: asyncio.Event) -> None:
        async with websockets.connect(self.url, open_timeout=10, ping_interval=None,
                                      max_size=2**20) as ws:  # fmt: skip
            self._ws = ws
            await ws.send(self._hello())
            beats = asyncio.create_task(self._heartbeats(ws))
            stopping = asyncio.create_task(stop.wait())
            try:
                while True:
                    receiving = asyncio.create_task(ws.recv())
                    done, _ = await asyncio.wait(
                        {receiving, stopping}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if stopping in done:
                        receiving.cancel()
                        await ws.close()
                        return
                    await self._on_frame(ws, receiving.result())
            finally:
                beats.cancel()
                stopping.cancel()
                for chunk in self._chunks:  # chunks live on a connection
                    chunk.cancel()
                self._ws = None

    def _hello(self) -> str:
        creds = self.credentials
        if creds.device_id and creds.device_secret:
            ts, nonce = int(time.time() * 1000), secrets.token_hex(12)
            signature = sign(creds.device_secret, creds.device_id, ts, nonce)
            data = {"device_id": creds.device_id, "ts": ts, "nonce": nonce, "signature": signature}
            return json.dumps({"type": "RESUME", "data": data})
        if not self.token:
            raise SystemExit("no saved credentials and no invite token: `join` with one")
        return json.dumps({"type": "JOIN", "data": {"invite_token": self.token}})

    async def _heartbeats(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await ws.send("ping")

    async def _on_frame(self, ws: Any, raw: str | bytes) -> None:
        if raw == "pong":
            return
        message = json.loads(raw)
        kind, data = message["type"], message["data"]
        if kind == "WELCOME":
            if "device_secret" in data:
                self.credentials.device_id = data["device_id"]
                self.credentials.device_secret = data["device_secret"]
                self.credentials.save(self.credentials_path)
            register = {"name": self.name, "capabilities": self.capabilities}
            await ws.send(json.dumps({"type": "DEVICE_REGISTER", "data": register}))
            if self.score is not None:
                await ws.send(
                    json.dumps({"type": "BENCHMARK_RESULT", "data": {"score": self.score}})
                )
            self.connected.set()
        elif kind == "STATE":
            self.state_version = data["version"]
        elif kind == "JOB_ASSIGN":
            task = asyncio.create_task(self._run_chunk(ws, data))
            self._chunks.add(task)
            task.add_done_callback(self._chunks.discard)
        elif kind == "ERROR" and data.get("code") == "auth_failed":
            # A refused JOIN, or credentials that will never work again, end the agent.
            refused = data.get("message") in FATAL or not self.credentials.device_id
            if refused:
                self.fatal = data.get("message")
                await ws.close()

    async def _run_chunk(self, ws: Any, assignment: dict[str, Any]) -> None:
        started = time.monotonic()
        report: dict[str, Any] = {"chunkId": assignment["chunkId"]}
        try:
            result = self.handler(assignment["payload"])
            if inspect.isawaitable(result):
                result = await result
            report["result"] = result
        except Exception as exc:  # the handler's failure is the chunk's, not the agent's
            report["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        report["durationMs"] = int((time.monotonic() - started) * 1000)
        with contextlib.suppress(websockets.WebSocketException):
            await ws.send(json.dumps({"type": "JOB_COMPLETE", "data": report}))
            if "error" not in report:
                self.completed.append(assignment["chunkId"])


def _handler(spec: str | None) -> Handler:
    if not spec:
        return echo
    module, _, name = spec.partition(":")
    return cast(Handler, getattr(importlib.import_module(module), name))  # named by the user


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # `--token SECRET` must not be read as `--token-file`
        prog="apiary device",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument("mode", choices=["join", "resume"])
    parser.add_argument("base_url")
    parser.add_argument("--swarm", required=True)
    parser.add_argument(
        "--token-file", type=Path, help="a mode-600 file holding the invite token (join)"
    )
    parser.add_argument("--credentials", type=Path, default=Path(".apiary/device.json"))
    parser.add_argument("--name", default=os.uname().nodename)
    parser.add_argument("--handler", help="module:function run for each chunk (default: echo)")
    parser.add_argument("--score", type=float, help="benchmark score to report")
    parser.add_argument("--heartbeat-s", type=float, default=10.0)
    args = parser.parse_args(argv)
    invite = read_token(INVITE_TOKEN_ENV, args.token_file) if args.mode == "join" else None
    agent = DeviceAgent(
        base_url=args.base_url, swarm_id=args.swarm, token=invite,
        credentials_path=args.credentials, name=args.name, score=args.score,
        handler=_handler(args.handler), heartbeat_s=args.heartbeat_s,
    )  # fmt: skip
    if args.mode == "join" and agent.credentials.device_id:
        agent.token = invite  # saved credentials win; the token is the fallback
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(agent.run())
    if agent.fatal:
        print(f"refused: {agent.fatal}")
        return 1
    return 0
