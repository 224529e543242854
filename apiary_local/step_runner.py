"""The browser step runner apiary dev starts itself when `BROWSER_RUNNER_URL` is unset.

It is `apiary browser-runner` as a child process on a free loopback port, started on the
first call to it (so an apiary dev that runs no browser check pays nothing) and stopped with
apiary dev. Its token (`BROWSER_RUNNER_TOKEN`, generated when unset) and its egress
allowlist (`EGRESS_ALLOW`, default `loopback` here: the checks of a local site must reach it)
go through its environment, never its command line. `GatedHttp` is the Http port apiary's
code gets: a call to the runner's URL waits for the runner to be up first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from logs import get_logger
from outbound import HttpxHttp
from ports import HttpResponse

log = get_logger("step-runner")
START_TIMEOUT_S = 60.0
APIARY = Path(sys.executable).parent / "apiary"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StepRunnerProcess:
    def __init__(self, *, token: str, egress_allow: str, log_path: Path) -> None:
        self.port = _free_port()
        self.token = token
        self.egress_allow = egress_allow
        self.log_path = log_path
        self._process: asyncio.subprocess.Process | None = None
        self._starting = asyncio.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ensure_started(self) -> None:
        async with self._starting:
            if self._process is not None and self._process.returncode is None:
                return
            env = {
                **os.environ,
                "BROWSER_RUNNER_TOKEN": self.token,
                "EGRESS_ALLOW": self.egress_allow,
            }
            command = APIARY if APIARY.exists() else Path(sys.argv[0])
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as output:
                self._process = await asyncio.create_subprocess_exec(
                    str(command), "browser-runner", "--port", str(self.port),
                    stdout=output, stderr=output, env=env,
                )  # fmt: skip
            await self._wait_healthy()
            log.info("step runner started", extra={"fields": {"url": self.url}})

    async def _wait_healthy(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        async with httpx.AsyncClient() as client:
            while loop.time() < deadline:
                if self._process is None or self._process.returncode is not None:
                    raise RuntimeError("the step runner exited at start")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/health", timeout=1)).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise RuntimeError("the step runner did not start")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


class GatedHttp:
    """The Http port, starting the step runner before the first call that needs it."""

    def __init__(self, inner: HttpxHttp, runner: StepRunnerProcess | None) -> None:
        self.inner = inner
        self.runner = runner

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        body: bytes | None = None,
        timeout_s: float = 10.0,
    ) -> HttpResponse:
        if self.runner is not None and url.startswith(self.runner.url + "/"):
            try:
                await self.runner.ensure_started()
            except RuntimeError as exc:
                log.error("the step runner could not start", extra={"fields": {"error": str(exc)}})
        return await self.inner.request(
            method, url, headers=headers, json=json, body=body, timeout_s=timeout_s
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
