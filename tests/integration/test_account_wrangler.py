"""Deployed Workers really run: real wrangler against apiary dev's local account, then real
requests to the Workers on workerd, and the counts GraphQL gives for them."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.account_client import (
    ACCOUNT_ID,
    Account,
    account_of,
    account_server,
    wait_until,
    write_worker,
)

pytestmark = pytest.mark.slow
ACCOUNT = ACCOUNT_ID

GREETER = """export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    console.log("greeting", url.pathname);
    if (url.pathname === "/throw") throw new TypeError("greeter broke");
    if (url.pathname === "/loop") { while (true) {} }
    return Response.json({ greeting: env.GREETING, secretSet: env.SECRET !== undefined });
  },
};
"""
DISPATCHER = """export default {
  async fetch(request, env) {
    const customer = new URL(request.url).hostname.split(".")[0];
    try {
      const answer = await env.CUSTOMERS.get(customer).fetch(request);
      return new Response(`dispatched: ${await answer.text()}`, { status: answer.status });
    } catch (error) {
      if (error.message.startsWith("Worker not found")) {
        return new Response(`no customer ${customer}`, { status: 404 });
      }
      return new Response(`customer failed: ${error.message}`, { status: 502 });
    }
  },
};
"""
CUSTOMER = """export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname === "/throw") throw new Error("customer broke");
    return new Response(`customer ${env.WHO}`);
  },
};
"""


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    with account_server(tmp_path_factory.mktemp("account")) as server, account_of(server) as a:
        yield a


def greeter(directory: Path, greeting: str, extra: str = "") -> Path:
    return write_worker(directory, "greeter", GREETER, f'[vars]\nGREETING = "{greeting}"\n{extra}')


def version_ids(account: Account, script: str) -> list[str]:
    out = account.wrangler(
        account.server.state.parent, "versions", "list", "--name", script, "--json"
    )
    versions = json.loads(out[out.index("[") :])
    return [v["id"] for v in sorted(versions, key=lambda v: v["number"])]


@pytest.mark.timeout(240)
def test_deploy_versions_split_override_and_rollback(account: Account, tmp_path: Path) -> None:
    project = greeter(tmp_path / "greeter", "one")
    out = account.wrangler(project, "deploy")
    assert "Uploaded greeter" in out
    assert account.get("greeter").json() == {"greeting": "one", "secretSet": False}
    # Same worker, addressed as wrangler prints it.
    assert account.get("greeter", Host="greeter.local.workers.dev").json()["greeting"] == "one"

    greeter(project, "two")
    account.wrangler(project, "versions", "upload")
    assert account.get("greeter").json()["greeting"] == "one"  # uploaded, not deployed
    first, second = version_ids(account, "greeter")

    account.wrangler(project, "versions", "deploy", f"{first}@50%", f"{second}@50%", "--yes")
    seen = Counter(account.get("greeter").json()["greeting"] for _ in range(400))
    assert set(seen) == {"one", "two"}
    assert abs(seen["one"] - 200) <= 32, seen  # within ±8 points of 50%

    pinned = {"Cloudflare-Workers-Version-Overrides": f'greeter="{second}"'}
    assert {account.get("greeter", **pinned).json()["greeting"] for _ in range(20)} == {"two"}
    # GraphQL counts exactly the requests each version served.
    rows = account.invocations("greeter")
    served = Counter()
    for row in rows:
        assert row["dimensions"]["status"] == "success"
        served[row["dimensions"]["scriptVersion"]] += row["sum"]["requests"]
    assert served[first] == 3 + seen["one"]  # the three requests before the split
    assert served[second] == seen["two"] + 20

    account.wrangler(project, "rollback", first, "--message", "back to one", "--yes")
    assert {account.get("greeter").json()["greeting"] for _ in range(20)} == {"one"}
    listed = httpx.get(
        f"{account.api}/accounts/{ACCOUNT}/workers/scripts/greeter/deployments",
        headers=account.headers,
    ).json()["result"]["deployments"]
    assert [d["versions"] for d in listed[:2]] == [
        [{"version_id": first, "percentage": 100.0}],
        [
            {"version_id": first, "percentage": 50.0},
            {"version_id": second, "percentage": 50.0},
        ],
    ]
    assert listed[0]["annotations"]["workers/message"] == "back to one"


@pytest.mark.timeout(180)
def test_errors_and_runaways_are_counted_and_never_hang(account: Account, tmp_path: Path) -> None:
    project = write_worker(
        tmp_path / "flaky", "flaky", GREETER, '[vars]\nGREETING = "hi"\n[limits]\ncpu_ms = 500\n'
    )
    account.wrangler(project, "deploy")
    for _ in range(3):
        thrown = account.get("flaky", "/throw")
        assert thrown.status_code == 500
        assert thrown.text == "error code: 1101"
    assert account.get("flaky", "/fine").status_code == 200
    # Console lines and the exception are kept per invocation (fleet management's logs).
    database = account.server.state / "account" / "invocations.sqlite"
    ray = thrown.headers["cf-ray"]

    def stored() -> tuple[str, str] | None:
        with closing(sqlite3.connect(database)) as conn:
            row = conn.execute(
                "SELECT logs, exception FROM invocations WHERE ray = ?", (ray,)
            ).fetchone()
        return row if row and row[1] and row[0] != "[]" else None

    logs, exception = wait_until(stored)
    assert json.loads(logs)[0]["message"] == ["greeting", "/throw"]
    assert json.loads(exception)["message"] == "greeter broke"
    looped = account.get("flaky", "/loop")
    assert looped.status_code == 503
    assert looped.text == "error code: 1102"
    # workerd was stuck in that loop; the runner got a fresh one and everything answers again.
    assert wait_until(lambda: account.get("flaky", "/after").status_code == 200, 20)
    by_status = Counter()
    errors = 0
    for row in account.invocations("flaky"):
        by_status[row["dimensions"]["status"]] += row["sum"]["requests"]
        errors += row["sum"]["errors"]
    assert by_status == {"scriptThrewException": 3, "success": 2, "exceededResources": 1}
    assert errors == 4


@pytest.mark.timeout(180)
def test_dispatch_namespace_workers_are_reached_by_name(account: Account, tmp_path: Path) -> None:
    created = httpx.post(
        f"{account.api}/accounts/{ACCOUNT}/workers/dispatch/namespaces",
        headers=account.headers,
        json={"name": "customers"},
    )
    assert created.status_code == 200, created.text
    customer = write_worker(tmp_path / "acme", "acme", CUSTOMER, '[vars]\nWHO = "acme"\n')
    out = account.wrangler(customer, "deploy", "--dispatch-namespace", "customers")
    assert "Dispatch Namespace: customers" in out
    # A namespace's Workers are not on workers.dev: only a dispatcher reaches them.
    assert account.get("acme").status_code == 404
    dispatcher = write_worker(
        tmp_path / "dispatcher",
        "dispatcher",
        DISPATCHER,
        '[[dispatch_namespaces]]\nbinding = "CUSTOMERS"\nnamespace = "customers"\n',
    )
    account.wrangler(dispatcher, "deploy")
    host = {"Host": f"acme.dispatcher.localhost:{account.server.port}"}
    answer = httpx.get(f"{account.server.url}/", headers=host)
    assert answer.text == "dispatched: customer acme"
    broken = httpx.get(f"{account.server.url}/throw", headers=host)
    assert (broken.status_code, broken.text) == (502, "customer failed: customer broke")
    missing = httpx.get(
        f"{account.server.url}/",
        headers={"Host": f"nobody.dispatcher.localhost:{account.server.port}"},
    )
    assert (missing.status_code, missing.text) == (404, "no customer nobody")
    [dispatched] = [
        r for r in account.invocations("acme") if r["dimensions"]["status"] == "success"
    ]
    assert dispatched["sum"]["requests"] == 1
    outer = account.invocations("dispatcher")
    assert sum(r["sum"]["subrequests"] for r in outer) == 3  # eventually, from the reports


@pytest.mark.timeout(180)
def test_restart_and_sigkill_keep_scripts_versions_and_deployments(
    account: Account, tmp_path: Path
) -> None:
    project = greeter(tmp_path / "keeper", "kept")
    (project / "wrangler.toml").write_text(
        (project / "wrangler.toml").read_text().replace('name = "greeter"', 'name = "keeper"')
    )
    account.wrangler(project, "deploy")
    api = f"{account.api}/accounts/{ACCOUNT}/workers/scripts"

    def snapshot() -> tuple[object, ...]:
        scripts = httpx.get(api, headers=account.headers).json()["result"]
        versions = httpx.get(f"{api}/keeper/versions", headers=account.headers).json()
        deployments = httpx.get(f"{api}/keeper/deployments", headers=account.headers).json()
        return (
            sorted(s["id"] for s in scripts),
            versions["result"]["items"],
            deployments["result"]["deployments"],
        )

    before = snapshot()
    account.server.stop()
    account.server.start(timeout_s=30)
    assert snapshot() == before
    assert account.get("keeper").json()["greeting"] == "kept"
    account.server.kill()
    account.server.start(timeout_s=30)
    assert snapshot() == before
    assert account.get("keeper").json()["greeting"] == "kept"
