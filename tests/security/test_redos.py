"""Finding 5: a page cannot freeze the runtime. A check reads a page's title and text in one
linear, capped pass; the title regex it replaced took 5.5 s on 132 KiB of this page and grew
with the square of its size."""

import json
import time
from collections.abc import Callable

import httpx
import pytest

from browser import checks
from tests.harness import DevServer, admin_token
from tests.security.sites import RecordingSite, Reply

HOSTILE = "<titlex></titlex>" * (1024 * 1024 // 17)  # 1 MiB


@pytest.mark.timeout(10)
def test_the_title_of_a_hostile_page_is_read_in_linear_time() -> None:
    assert checks.title_of(HOSTILE) == ""
    assert checks.title_of(HOSTILE + " " * 100 + "<title>late</title>") == ""  # past the cap
    assert checks.title_of("<title>Hi</title>" + HOSTILE) == "Hi"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_smoke_check_of_a_hostile_page_completes(
    dev_server: Callable[..., DevServer], sites: Callable[..., RecordingSite]
) -> None:
    site = sites()
    site.pages["/"] = Reply(200, HOSTILE)
    server = dev_server(
        args=("--no-cron",),
        CF_API_BASE="{url}/client/v4",
        CF_ACCOUNT_ID="local",
        CF_API_TOKEN="local-browser-token-0123456789",
    )
    admin = {"Authorization": f"Bearer {admin_token()}"}
    body = {"test_type": "smoke", "target_url": f"{site.url}/", "options": {}}
    run_id = httpx.post(f"{server.url}/api/browser_tests", headers=admin, json=body).json()[
        "test_run"
    ]["id"]
    deadline = time.monotonic() + 100
    while time.monotonic() < deadline:
        run = httpx.get(f"{server.url}/api/browser_tests/{run_id}", headers=admin).json()
        if run["status"] in ("passed", "failed", "error"):
            break
        time.sleep(0.2)
    assert run["status"] == "failed", json.dumps(run)[:500]
    found = {a["name"]: a["passed"] for a in run["assertions"]}
    assert found["title is not empty"] is False
    assert found["status is 2xx"] is True
