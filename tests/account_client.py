"""Real clients of apiary dev's local Cloudflare account, for tests and benchmarks: wrangler
(`npx --no-install wrangler`, pointed at the account by environment variables) and plain HTTP
for the deployed Workers (by Host) and GraphQL."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.harness import JWT_SECRET, ROOT, DevServer, project_config, write_dev_vars

ACCOUNT_ID = "0000000000000000000000000000a1c0"  # the local account's default id


@contextlib.contextmanager
def account_server(directory: Path, **dev_vars: str) -> Iterator[DevServer]:
    """A fresh `apiary dev` (no crons) with only JWT_SECRET (and `dev_vars`) configured."""
    project = directory / "project"
    project.mkdir(parents=True)
    config = project_config(project)
    server = DevServer(directory / "state", config=config, args=("--no-cron",))
    write_dev_vars(project, JWT_SECRET=JWT_SECRET, PUBLIC_URL=server.url, **dev_vars)
    server.start(timeout_s=30)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def account_of(server: DevServer) -> Iterator[Account]:
    account = Account(server)
    try:
        yield account
    finally:
        account.client.close()


@dataclass
class Account:
    server: DevServer
    _client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        """One keep-alive client for the Workers' requests (a test sends hundreds)."""
        if self._client is None:
            self._client = httpx.Client(timeout=30)
        return self._client

    @property
    def token(self) -> str:
        return (self.server.state / "local-token").read_text().strip()

    @property
    def api(self) -> str:
        return f"{self.server.url}/client/v4"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CLOUDFLARE_API_BASE_URL": self.api,
            "CLOUDFLARE_API_TOKEN": self.token,
            "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID,
            "WRANGLER_SEND_METRICS": "false",
            # No banner, so no update check against the npm registry on every command.
            "WRANGLER_HIDE_BANNER": "true",
            "WRANGLER_LOG_PATH": str(self.server.state.parent / "wrangler-logs"),
            "CI": "true",
        }

    def wrangler(self, project: Path, *args: str, check: bool = True) -> str:
        """Runs the pinned wrangler (this checkout's) on `project`; its combined output."""
        done = subprocess.run(
            ["npx", "--no-install", "wrangler", *args, "--cwd", str(project)],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = done.stdout + done.stderr
        if check and done.returncode != 0:
            raise AssertionError(f"wrangler {' '.join(args)} failed:\n{output}")
        return output

    def get(self, script: str, path: str = "/", **headers: str) -> httpx.Response:
        """A request to a deployed Worker, addressed by Host as on workers.dev."""
        return self.client.get(
            f"{self.server.url}{path}",
            headers={"Host": f"{script}.localhost:{self.server.port}", **headers},
        )

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.api}/graphql",
            headers=self.headers,
            json={"query": query, "variables": {"account": ACCOUNT_ID, **variables}},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def invocations(self, script: str, **filters: str) -> list[dict[str, Any]]:
        """workersInvocationsAdaptive for `script` since 2000, by version and status."""
        query = """query($account: string, $script: string) { viewer {
          accounts(filter: {accountTag: $account}) {
            workersInvocationsAdaptive(limit: 1000, filter: {
                scriptName: $script, datetime_geq: "2000-01-01T00:00:00Z"}) {
              sum { requests errors subrequests }
              quantiles { cpuTimeP50 cpuTimeP99 }
              dimensions { scriptName scriptVersion status }
            } } } }"""
        answer = self.graphql(query, script=script)
        assert answer["errors"] is None, answer
        return answer["data"]["viewer"]["accounts"][0]["workersInvocationsAdaptive"]  # type: ignore[no-any-return]


def write_worker(directory: Path, name: str, source: str, extra: str = "") -> Path:
    """A wrangler project: `index.js` and a wrangler.toml naming it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.js").write_text(source)
    (directory / "wrangler.toml").write_text(
        f'name = "{name}"\nmain = "index.js"\ncompatibility_date = "2025-01-01"\n{extra}'
    )
    return directory


def wait_until(predicate: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


__all__ = ["ACCOUNT_ID", "ROOT", "Account", "account_server", "wait_until", "write_worker"]
