"""The fleet's guards against one `apiary dev` with a low script limit: scopes, a good rollout
promoted through every step across a SIGKILL, the 85% limit warning and its one alert, and no
token in any log line. The tests share the server and run in order."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.account_client import ACCOUNT_ID
from tests.fleet_client import GOOD, Fleet, fleet_server
from tests.harness import admin_token

pytestmark = pytest.mark.slow
SCRIPT_LIMIT = 3


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp("guards")
    with fleet_server(directory, FLEET_SCRIPT_LIMIT=str(SCRIPT_LIMIT)) as running:
        yield running


def test_read_scope_cannot_deploy_and_no_token_is_401(fleet: Fleet) -> None:
    body = {"name": "nope", "main_module": "index.js", "modules": {"index.js": GOOD},
            "metadata": {"type": "service", "environment": "development"}}  # fmt: skip
    reader = {"Authorization": f"Bearer {admin_token(('cloudflare:read',))}"}
    url = fleet.server.url
    assert httpx.post(f"{url}/api/workers", json=body, headers=reader).status_code == 403
    assert httpx.get(f"{url}/api/workers", headers=reader).status_code == 200
    assert httpx.post(f"{url}/api/workers", json=body).status_code == 401
    assert httpx.get(f"{url}/api/workers").status_code == 401
    other = {"Authorization": f"Bearer {admin_token(('tasks:read',))}"}
    assert httpx.get(f"{url}/api/fleet/limits", headers=other).status_code == 403
    assert httpx.post(f"{url}/api/fleet/sync", headers=reader).status_code == 403


@pytest.mark.timeout(180)
def test_a_good_version_is_promoted_through_every_step_across_a_crash(fleet: Fleet) -> None:
    fleet.create("promo", label="one")
    two = fleet.new_version("promo", GOOD, "two")
    spec = {"version_id": two, "steps": [10, 50, 100], "step_interval_s": 2, "min_requests": 0}
    fleet.ok(fleet.api.post("/api/workers/promo/rollouts", json=spec), 201)
    fleet.wait_rollout("promo", lambda r: r["step"] == 1 and r["phase"] == "observing")
    fleet.server.kill()  # SIGKILL in the middle of the second step
    fleet.server.start(timeout_s=30)
    done = fleet.wait_rollout("promo", lambda r: r["status"] != "running")
    assert done["status"] == "succeeded"
    assert [(h["step"], h["percentage"], h["verdict"]) for h in done["history"]] == [
        (1, 10, "advance"),
        (2, 50, "advance"),
        (3, 100, "promote"),
    ]
    assert {fleet.worker("promo").text for _ in range(20)} == {"two"}
    worker = fleet.ok(fleet.api.get("/api/workers/promo"))
    assert worker["active_deployment"] == [{"version_id": two, "percentage": 100}]
    assert worker["last_version_id"] == two
    actions = [(a["action"], a["outcome"]) for a in fleet.audit("promo")]
    assert actions[-8:] == [
        ("rollout.start", "ok"),
        *[("rollout.step", "deployed"), ("rollout.step", "passed")] * 3,
        ("rollout.promote", "promoted"),
    ]
    assert not fleet.alerts_of("rollout_rolled_back")
    # a rollback to the previous stable version is a deployment of its own
    rolled = fleet.ok(fleet.api.post("/api/workers/promo/rollback", json={}), 201)
    assert rolled["versions"][0]["percentage"] == 100
    assert {fleet.worker("promo").text for _ in range(10)} == {"one"}


@pytest.mark.timeout(120)
def test_an_aborted_rollout_goes_back_to_stable(fleet: Fleet) -> None:
    three = fleet.new_version("promo", GOOD, "three")
    spec = {"version_id": three, "steps": [50, 100], "step_interval_s": 3600}
    fleet.ok(fleet.api.post("/api/workers/promo/rollouts", json=spec), 201)
    fleet.wait_rollout("promo", lambda r: r["phase"] == "observing")
    assert "three" in {fleet.worker("promo").text for _ in range(40)}  # at 50%
    fleet.ok(fleet.api.delete("/api/workers/promo/rollouts"), 202)
    done = fleet.wait_rollout("promo", lambda r: r["status"] != "running")
    assert (done["status"], done["reason"]) == ("aborted", "aborted by tests")
    assert {fleet.worker("promo").text for _ in range(20)} == {"one"}
    assert fleet.api.delete("/api/workers/promo/rollouts").status_code == 409


@pytest.mark.timeout(120)
def test_a_limit_at_85_percent_warns_and_alerts_once(fleet: Fleet) -> None:
    scripts = len(fleet.account.client.get(
        f"{fleet.account.api}/accounts/{ACCOUNT_ID}/workers/scripts",
        headers=fleet.account.headers,
    ).json()["result"])  # fmt: skip
    for i in range(SCRIPT_LIMIT - scripts):
        fleet.create(f"filler-{i}")
    limits = fleet.ok(fleet.api.get("/api/fleet/limits"))
    assert limits["limits"]["scripts"] == {
        "used": SCRIPT_LIMIT, "limit": SCRIPT_LIMIT, "percent": 100.0, "warning": True,
    }  # fmt: skip
    assert limits["warning"] is True
    fleet.poll_usage()
    fleet.poll_usage()
    alert = fleet.wait_alert("limit_warning")
    assert alert["apiary"]["limit"] == "scripts"
    time.sleep(0.3)
    fleet.poll_usage()
    assert len(fleet.alerts_of("limit_warning")) == 1
    assert fleet.ok(fleet.api.get("/api/fleet/limits"))["alerted"] == ["scripts"]


def test_no_token_reaches_a_log_line(fleet: Fleet) -> None:
    log = fleet.server.log()
    assert fleet.account.token not in log  # CF_API_TOKEN (the local account's)
    assert fleet.token not in log
    assert "Bearer" not in log
