"""Fixtures for the attacks: the step runner as a subprocess, sites on loopback, apiary dev."""

import os
import signal
import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.harness import APIARY, free_port, wait_up
from tests.security.sites import RecordingSite

RUNNER_TOKEN = "security-runner-token-0123456789"


class Runner:
    """`apiary browser-runner` with the given egress allowlist (unset: public only)."""

    def __init__(self, egress: str | None) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "EGRESS_ALLOW"}
        env["BROWSER_RUNNER_TOKEN"] = RUNNER_TOKEN
        if egress is not None:
            env["EGRESS_ALLOW"] = egress
        self.process = subprocess.Popen(
            [str(APIARY), "browser-runner", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        wait_up(f"{self.url}/health", timeout_s=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def runner() -> Iterator[Callable[..., Runner]]:
    started: list[Runner] = []

    def start(egress: str | None = "loopback") -> Runner:
        started.append(Runner(egress))
        return started[-1]

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def sites() -> Iterator[Callable[..., RecordingSite]]:
    started: list[RecordingSite] = []

    def start(host: str = "127.0.0.1") -> RecordingSite:
        started.append(RecordingSite(host).start())
        return started[-1]

    yield start
    for site in started:
        site.stop()
