"""Fleet management end to end: apiary's API against `apiary dev`'s local Cloudflare account,
with the Workers really running on workerd (one server for the module)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.account_client import ACCOUNT_ID, wait_until, write_worker
from tests.fleet_client import BAD, GOOD, Fleet, code, fleet_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet_server(tmp_path_factory.mktemp("fleet")) as running:
        yield running


def healthy(fleet: Fleet, name: str) -> dict:
    return wait_until(
        lambda: (w := fleet.ok(fleet.api.get(f"/api/workers/{name}")))["status"] == "healthy" and w
    )


@pytest.mark.timeout(120)
def test_a_template_in_r2_deploys_and_answers(fleet: Fleet) -> None:
    template = {
        "name": "hello", "type": "service", "main_module": "index.js",
        "modules": {"index.js": GOOD.replace("LABEL", "hello from r2")},
        "default_bindings": [{"type": "plain_text", "name": "GREETING", "text": "hi"}],
    }  # fmt: skip
    saved = fleet.ok(fleet.api.post("/api/templates", json=template), 201)
    assert saved["r2_key"] == "templates/hello.json"
    listed = fleet.ok(fleet.api.get("/api/templates"))["templates"]
    assert [t["name"] for t in listed] == ["hello"]

    body = {"r2_key": saved["r2_key"], "worker_name": "from-r2", "environment": "development"}
    worker = fleet.ok(fleet.api.post("/api/deploy/from-r2", json=body), 201)
    assert worker["url"] == f"http://from-r2.localhost:{fleet.server.port}"
    answer = fleet.worker("from-r2")
    assert (answer.status_code, answer.text) == (200, "hello from r2")

    checked = fleet.ok(fleet.api.post("/api/workers/from-r2/health_check"))
    assert (checked["worker"], checked["status"]) == ("from-r2", "healthy")
    detail = fleet.ok(fleet.api.get("/api/workers/from-r2"))
    assert detail["status"] == "healthy"
    assert detail["bindings"] == [{"name": "GREETING", "type": "plain_text"}]
    [version] = detail["versions"]
    assert version["author"] == "tests"  # the token's subject
    assert version["percentage"] == 100
    assert detail["health"]["changes"][0]["to_status"] == "healthy"
    listed = fleet.ok(fleet.api.get("/api/workers", params={"status": "healthy"}))["workers"]
    assert "from-r2" in [w["name"] for w in listed]
    # a name that exists is a 409, an R2 key outside templates/ a 422
    assert fleet.api.post("/api/deploy/from-r2", json=body).status_code == 409
    bad_key = {**body, "worker_name": "elsewhere", "r2_key": "screenshots/x.png"}
    assert fleet.api.post("/api/deploy/from-r2", json=bad_key).status_code == 422
    # Cloudflare's refusal reaches the caller as a 502 with the upstream code, no stack trace
    bogus = {"versions": [{"version_id": "not-a-version", "percentage": 100}]}
    refused = fleet.api.post("/api/workers/from-r2/deployments", json=bogus)
    assert refused.status_code == 502
    error = refused.json()["error"]
    assert error["code"] == "cloudflare_error"
    assert error["upstream"]["code"] == 10146
    assert "Traceback" not in refused.text


@pytest.mark.timeout(180)
def test_a_bad_version_is_rolled_back_within_the_first_step(fleet: Fleet) -> None:
    fleet.create("roll-bad", label="stable")
    healthy(fleet, "roll-bad")
    stable = fleet.ok(fleet.api.get("/api/workers/roll-bad"))["last_version_id"]
    bad = fleet.new_version("roll-bad", BAD, "bad")
    assert fleet.worker("roll-bad").text == "stable"  # uploaded, not deployed
    spec = {"version_id": bad, "steps": [10, 50, 100], "step_interval_s": 4,
            "min_requests": 5, "max_error_rate": 0.05}  # fmt: skip
    started = fleet.ok(fleet.api.post("/api/workers/roll-bad/rollouts", json=spec), 201)
    assert (started["status"], started["stable_version"]) == ("running", stable)
    # one rollout at a time
    again = fleet.api.post("/api/workers/roll-bad/rollouts", json=spec)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "rollout_in_progress"
    # ... and no other deployment while it runs
    manual = {"versions": [{"version_id": stable, "percentage": 100}]}
    assert fleet.api.post("/api/workers/roll-bad/deployments", json=manual).status_code == 409

    fleet.wait_rollout("roll-bad", lambda r: r["phase"] == "observing")
    assert fleet.ok(fleet.api.get("/api/workers/roll-bad"))["status"] == "deploying"
    served = Counter(fleet.worker("roll-bad", f"/r{i}").status_code for i in range(200))
    assert served[500] > 0  # the new version's 10% threw about half of what it got
    done = fleet.wait_rollout("roll-bad", lambda r: r["status"] != "running")
    assert done["status"] == "rolled_back"
    [judged] = done["history"]
    assert (judged["step"], judged["percentage"], judged["verdict"]) == (1, 10, "roll_back")
    assert "/health failed 3 of 3 probes" in done["reason"]
    assert "error rate" in done["reason"]
    assert judged["new"]["errors"] > 0
    assert judged["stable"]["errors"] == 0

    # the stable version serves everything again
    assert {fleet.worker("roll-bad", "/after").text for _ in range(30)} == {"stable"}
    worker = fleet.ok(fleet.api.get("/api/workers/roll-bad"))
    assert worker["active_deployment"] == [{"version_id": stable, "percentage": 100}]
    assert worker["status"] != "deploying"
    # one alert, with the reason
    alert = fleet.wait_alert("rollout_rolled_back")
    assert alert["apiary"]["reason"] == done["reason"]
    assert alert["apiary"]["to_version"] == stable
    time.sleep(0.3)
    assert len(fleet.alerts_of("rollout_rolled_back")) == 1
    # the audit has every step
    steps = [(a["action"], a["outcome"]) for a in fleet.audit("roll-bad")]
    assert steps[-4:] == [
        ("rollout.start", "ok"),
        ("rollout.step", "deployed"),
        ("rollout.step", "failed"),
        ("rollout.rollback", "rolled_back"),
    ]
    assert all(a["actor"] == "tests" for a in fleet.audit("roll-bad"))


@pytest.mark.timeout(120)
def test_a_health_change_alerts_once(fleet: Fleet) -> None:
    fleet.create("flaky")
    healthy(fleet, "flaky")
    fleet.ok(fleet.api.put("/api/workers/flaky", json=code(BAD, "bad")))  # deployed at once
    for _ in range(2):
        checked = fleet.ok(fleet.api.post("/api/workers/flaky/health_check"))
        assert checked["status"] == "unhealthy"
    alert = fleet.wait_alert("worker_unhealthy")
    assert (alert["apiary"]["worker"], alert["apiary"]["reason"]) == (
        "flaky", "/health answered 500",
    )  # fmt: skip
    time.sleep(0.3)
    assert len([a for a in fleet.alerts_of("worker_unhealthy")
                if a["apiary"]["worker"] == "flaky"]) == 1  # fmt: skip
    changes = fleet.ok(fleet.api.get("/api/workers/flaky"))["health"]["changes"]
    assert [c["to_status"] for c in changes] == ["unhealthy", "healthy"]


@pytest.mark.timeout(120)
def test_usage_after_a_poll_counts_requests_errors_and_cost(fleet: Fleet) -> None:
    fleet.create("metered")
    healthy(fleet, "metered")  # its first health check is one request too
    for i in range(200):
        assert fleet.worker("metered", "/throw" if i % 10 == 0 else "/").status_code in (200, 500)
    fleet.poll_usage()
    usage = fleet.ok(fleet.api.get("/api/workers/metered/usage"))
    totals = usage["totals"]
    assert totals["requests"] == 201
    assert totals["errors"] == 20
    # the published prices (Workers Paid): $0.30 per million requests, $0.02 per million CPU ms
    assert totals["cost_usd"] > 0
    expected = 201 * 0.30 / 1e6 + totals["cpu_time_ms"] * 0.02 / 1e6
    assert totals["cost_usd"] == pytest.approx(expected, abs=1e-9)  # rounded to 1e-9 USD
    [today] = usage["rows"]
    assert today["requests"] == 201
    weekly = fleet.ok(fleet.api.get("/api/workers/metered/usage", params={"period": "weekly"}))
    assert weekly["rows"][0]["requests"] == 201
    assert usage["month"]["forecast_requests"] >= 201
    # a poll that changes nothing writes nothing (but the scheduled event's own record)
    before = fleet.server.meter()["totals"].get("d1_rows_written", 0)
    fleet.poll_usage()
    assert fleet.server.meter()["totals"].get("d1_rows_written", 0) == before + 1
    metrics = fleet.ok(fleet.api.get("/api/monitor/metered/metrics"))
    assert (metrics["requests"], metrics["errors"]) == (201, 20)
    assert metrics["error_rate"] == pytest.approx(20 / 201, abs=1e-5)
    logs = fleet.ok(fleet.api.get("/api/monitor/metered/logs", params={"limit": 5}))
    assert len(logs["invocations"]) == 5
    thrown = fleet.ok(fleet.api.get("/api/monitor/metered/logs", params={"limit": 200}))
    failures = [i for i in thrown["invocations"] if i["outcome"] == "exception"]
    assert failures
    assert "asked to throw" in failures[0]["exceptions"][0]
    served = [i for i in thrown["invocations"] if i["outcome"] == "ok" and i["logs"]]
    assert served[0]["logs"][0]["message"].startswith("served")


@pytest.mark.timeout(180)
def test_sync_imports_a_wrangler_deploy_and_reports_drift(fleet: Fleet, tmp_path: Path) -> None:
    project = write_worker(tmp_path / "outside", "outside", GOOD.replace("LABEL", "wrangled"),
                           '[vars]\nMODE = "outside"\n')  # fmt: skip
    fleet.account.wrangler(project, "deploy")
    synced = fleet.ok(fleet.api.post("/api/fleet/sync"))
    assert "outside" in synced["imported"]
    imported = fleet.ok(fleet.api.get("/api/workers/outside"))
    assert (imported["managed_by"], imported["bindings"]) == (
        "sync", [{"name": "MODE", "type": "plain_text"}],
    )  # fmt: skip
    assert fleet.ok(fleet.api.post("/api/workers/outside/health_check"))["status"] == "healthy"
    # a setting changed through the API, outside apiary
    patched = fleet.account.client.patch(
        f"{fleet.account.api}/accounts/{ACCOUNT_ID}/workers/scripts/outside/settings",
        headers=fleet.account.headers,
        json={"limits": {"cpu_ms": 1234}},
    )
    assert patched.status_code == 200, patched.text
    synced = fleet.ok(fleet.api.post("/api/fleet/sync"))
    [report] = [d for d in synced["drift"] if d["name"] == "outside"]
    fields = {d["field"]: d for d in report["drift"]}
    assert fields["limits"]["actual"] == {"cpu_ms": 1234}
    assert fields["limits"]["expected"] == {}
    assert fleet.ok(fleet.api.get("/api/workers/outside"))["drift"] == report["drift"]
    assert "outside" not in synced["imported"]


@pytest.mark.timeout(120)
def test_customer_workers_by_subdomain_share_nothing(fleet: Fleet) -> None:
    shop = """export default {
      async fetch(request, env) {
        return Response.json({ shop: env.SHOP, keys: Object.keys(env).sort(),
                               path: new URL(request.url).pathname });
      },
    };"""
    template = {"name": "shop", "type": "customer", "main_module": "shop.js",
                "modules": {"shop.js": shop}}  # fmt: skip
    fleet.ok(fleet.api.post("/api/templates", json=template), 201)
    for customer, extra in (("a", {"TOKEN": "only-for-a"}), ("b", {})):
        body = {
            "customer_id": f"cus-{customer}",
            "subdomain": f"shop-{customer}",
            "template": "shop",
            "configuration": {"vars": {"SHOP": customer, **extra}, "cpu_limit_ms": 5000},
        }
        created = fleet.ok(fleet.api.post("/api/deploy/customer-worker", json=body), 201)
        assert (created["namespace"], created["customer_id"]) == ("customers", f"cus-{customer}")
    port = fleet.server.port
    a = fleet.account.client.get(
        f"{fleet.server.url}/hello", headers={"Host": f"shop-a.customers.localhost:{port}"}
    ).json()
    b = fleet.account.client.get(
        f"{fleet.server.url}/hello", headers={"Host": f"shop-b.customers.localhost:{port}"}
    ).json()
    assert a == {"shop": "a", "keys": ["SHOP", "TOKEN"], "path": "/hello"}
    assert b == {"shop": "b", "keys": ["SHOP"], "path": "/hello"}
    # and by path prefix, locally
    by_path = fleet.account.client.get(f"{fleet.server.url}/customers/shop-b/x/y").json()
    assert by_path == {"shop": "b", "keys": ["SHOP"], "path": "/x/y"}
    unknown = fleet.account.client.get(
        f"{fleet.server.url}/", headers={"Host": f"nobody.customers.localhost:{port}"}
    )
    assert unknown.status_code == 404
    assert fleet.account.client.get(f"{fleet.server.url}/customers/nobody/").status_code == 404
    # a customer Worker gets no binding that reaches anything but its own values
    shared = {
        **template,
        "name": "shared",
        "default_bindings": [{"type": "service", "name": "OTHER", "service": "from-r2"}],
    }
    fleet.ok(fleet.api.post("/api/templates", json=shared), 201)
    body = {"customer_id": "cus-c", "subdomain": "shop-c", "template": "shared"}
    refused = fleet.api.post("/api/deploy/customer-worker", json=body)
    assert refused.status_code == 422
    assert "shares no bindings" in refused.json()["error"]["message"]
    listed = fleet.ok(fleet.api.get("/api/workers", params={"customer_id": "cus-a"}))["workers"]
    assert [w["name"] for w in listed] == ["cust-shop-a"]


@pytest.mark.timeout(120)
def test_a_customer_worker_is_held_to_its_subrequest_limit(fleet: Fleet) -> None:
    fetcher = """export default {
      async fetch(request, env) {
        for (let i = 0; i < 2; i++) await fetch(env.HOME + "/health");
        return new Response("fetched twice");
      },
    };"""
    template = {"name": "fetcher", "type": "customer", "main_module": "f.js",
                "modules": {"f.js": fetcher}}  # fmt: skip
    fleet.ok(fleet.api.post("/api/templates", json=template), 201)
    for subdomain, cap in (("one-fetch", 1), ("two-fetches", 2)):
        configuration = {"vars": {"HOME": fleet.server.url}, "subrequest_limit": cap,
                         "cpu_limit_ms": 5000}  # fmt: skip
        body = {"customer_id": "cus-f", "subdomain": subdomain, "template": "fetcher",
                "configuration": configuration}  # fmt: skip
        fleet.ok(fleet.api.post("/api/deploy/customer-worker", json=body), 201)
    capped = fleet.account.client.get(f"{fleet.server.url}/customers/one-fetch/")
    assert capped.status_code == 502
    assert capped.json()["error"]["code"] == "customer_worker_failed"
    allowed = fleet.account.client.get(f"{fleet.server.url}/customers/two-fetches/")
    assert (allowed.status_code, allowed.text) == (200, "fetched twice")


@pytest.mark.timeout(120)
def test_scale_sets_what_workers_have_and_explains_what_they_do_not(fleet: Fleet) -> None:
    fleet.create("scaled")
    for field, value in (("instances", 3), ("memory_limit", 256)):
        refused = fleet.api.post("/api/scale/scaled", json={field: value})
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "not_scalable"
    scaled = fleet.ok(fleet.api.post("/api/scale/scaled", json={"cpu_limit_ms": 50}))
    assert scaled["settings"] == {"limits": {"cpu_ms": 50}}
    assert fleet.ok(fleet.api.get("/api/workers/scaled"))["limits"] == {"cpu_ms": 50}
    advice = fleet.ok(fleet.api.post("/api/scale/auto", json={}))
    [mine] = [w for w in advice["workers"] if w["worker"] == "scaled"]
    assert (mine["current_cpu_ms"], mine["applied"]) == (50, False)
    assert [a["action"] for a in fleet.audit("scaled")][-1] == "scale"
    status = fleet.ok(fleet.api.get("/api/status", headers={"Authorization": ""}))
    assert status["fleet"]["healthy"] + status["fleet"]["unknown"] >= 1
    assert "rollouts.health_gated" in status["capabilities"]


@pytest.mark.timeout(120)
def test_browser_checks_can_target_a_managed_worker(fleet: Fleet) -> None:
    fleet.create("checked")
    run = fleet.ok(
        fleet.api.post("/api/browser_tests", json={"test_type": "smoke", "worker": "checked"}),
        201,
    )["test_run"]
    assert run["worker"] == "checked"
    assert run["target_url"] == f"http://checked.localhost:{fleet.server.port}"
    stored = fleet.ok(fleet.api.get(f"/api/browser_tests/{run['id']}"))
    assert stored["worker"] == "checked"
    unknown = fleet.api.post("/api/browser_tests", json={"test_type": "smoke", "worker": "nope"})
    assert unknown.status_code == 404
