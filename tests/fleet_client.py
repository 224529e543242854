"""A client of apiary's fleet API for tests and benchmarks: one `apiary dev` (real workerd
under its local account), an admin token, a Slack-compatible alert receiver, and the JavaScript
Workers the tests deploy."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from tests.account_client import Account
from tests.cron_backend import CronBackend
from tests.harness import JWT_SECRET, DevServer, admin_token, project_config, write_dev_vars

USAGE_CRON = "0 * * * *"

# A good Worker: /health answers 200, /throw throws, anything else says which code it is.
GOOD = """export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    if (path === "/health") return new Response("ok");
    if (path === "/throw") throw new Error("asked to throw");
    console.log("served", path);
    return new Response("LABEL");
  },
};
"""
# A bad one: /health fails, and every other request throws.
BAD = """let served = 0;
export default {
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/health") return new Response("broken", { status: 500 });
    served += 1;
    if (served % 2 === 0) throw new Error("bad version broke");
    return new Response("BAD");
  },
};
"""


def code(source: str, label: str) -> dict[str, Any]:
    return {"main_module": "index.js", "modules": {"index.js": source.replace("LABEL", label)}}


@dataclass
class Fleet:
    server: DevServer
    alerts: CronBackend
    token: str

    @property
    def api(self) -> httpx.Client:
        if not hasattr(self, "_api"):
            self._api = httpx.Client(
                base_url=self.server.url,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=60,
            )
        return self._api

    @property
    def account(self) -> Account:
        if not hasattr(self, "_account"):
            self._account = Account(self.server)
        return self._account

    def close(self) -> None:
        for name in ("_api",):
            if hasattr(self, name):
                getattr(self, name).close()
        if hasattr(self, "_account"):
            self._account.client.close()

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    def create(self, name: str, source: str = GOOD, label: str = "v1", **extra: Any) -> Any:
        body = {"name": name, **code(source, label),
                "metadata": {"type": "service", "environment": "development"}, **extra}  # fmt: skip
        return self.ok(self.api.post("/api/workers", json=body), 201)

    def new_version(self, name: str, source: str, label: str) -> str:
        body = {**code(source, label), "deploy": False, "message": f"{label} for a rollout"}
        answer = self.ok(self.api.put(f"/api/workers/{name}", json=body))
        return str(answer["version_id"])

    def worker(self, script: str, path: str = "/", **headers: str) -> httpx.Response:
        return self.account.get(script, path, **headers)

    def rollout(self, name: str) -> Any:
        return self.ok(self.api.get(f"/api/workers/{name}/rollouts"))

    def poll_usage(self) -> None:
        url = f"{self.server.url}/__scheduled?cron={quote(USAGE_CRON)}"
        assert httpx.get(url, timeout=60).status_code == 200

    def wait_rollout(self, name: str, until: Callable[[Any], bool], timeout_s: float = 60) -> Any:
        deadline = time.monotonic() + timeout_s
        seen = None
        while time.monotonic() < deadline:
            seen = self.rollout(name)
            if until(seen):
                return seen
            time.sleep(0.1)
        raise AssertionError(f"rollout of {name} did not get there: {seen}")

    def alerts_of(self, kind: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts.alerts if a["apiary"]["kind"] == kind]

    def wait_alert(self, kind: str, timeout_s: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.alerts_of(kind)
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {kind} alert: {self.alerts.alerts}")

    def audit(self, name: str) -> list[dict[str, Any]]:
        answer = self.ok(self.api.get("/api/fleet/audit", params={"worker": name, "limit": 200}))
        return list(reversed(answer["audit"]))


@contextlib.contextmanager
def fleet_server(directory: Path, **dev_vars: str) -> Iterator[Fleet]:
    """A fresh `apiary dev` (crons fired by hand) with an alert receiver and an admin token."""
    alerts = CronBackend().start()
    project = directory / "project"
    project.mkdir(parents=True)
    server = DevServer(directory / "state", config=project_config(project), args=("--no-cron",))
    write_dev_vars(
        project, JWT_SECRET=JWT_SECRET, PUBLIC_URL=server.url,
        SLACK_WEBHOOK_URL=f"{alerts.url}/slack", **dev_vars,
    )  # fmt: skip
    server.start(timeout_s=30)
    fleet = Fleet(server, alerts, admin_token())
    try:
        yield fleet
    finally:
        fleet.close()
        server.stop()
        alerts.stop()
