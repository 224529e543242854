"""A new user's `make dev`: nothing configured but JWT_SECRET (and the credentials an auth check
logs in with), and every browser check type runs, on apiary dev's own Browser Rendering API
and a step runner it starts itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.account_client import account_server
from tests.fixtures.site import FixtureSite
from tests.harness import DevServer
from tests.integration.test_browser_checks import credentials, results, submit, wait

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site() -> Iterator[FixtureSite]:
    with FixtureSite() as fixture:
        yield fixture


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, site: FixtureSite) -> Iterator[DevServer]:
    directory: Path = tmp_path_factory.mktemp("fresh")
    stored = json.dumps(credentials(site))
    with account_server(directory, BROWSER_CREDENTIALS=stored) as server:
        yield server


@pytest.mark.timeout(240)
def test_every_check_type_runs_with_no_configuration(fresh: DevServer, site: FixtureSite) -> None:
    login = {"login_url": f"{site.url}/login", "submit_selector": "#submit"}
    runs = {
        "smoke": submit(fresh, "smoke", f"{site.url}/", required_selectors=["#hello"]),
        "auth": submit(
            fresh, "auth", f"{site.url}/login", credentials="alice",
            expect_selector="#welcome", **login,
        ),
        "security_session": submit(
            fresh, "security_session", f"{site.url}/", session_cookie="sid",
            login={"credentials": "alice", **login}, logged_in_selector="#welcome",
            protected_url=f"{site.url}/account", logout_url=f"{site.url}/logout",
        ),
        "user_journey": submit(
            fresh, "user_journey", f"{site.url}/journey/1",
            steps=[
                {"action": "goto", "url": f"{site.url}/journey/1"},
                {"action": "click", "selector": "#next"},
                {"action": "expect_url", "contains": "/journey/2"},
            ],
        ),
    }  # fmt: skip
    for kind, run_id in runs.items():
        run = wait(fresh, run_id, timeout_s=90)
        assert run["status"] == "passed", (kind, run.get("error"), results(run))
    log = fresh.log()
    assert "BROWSER_RUNNER_URL is not set" not in log
    assert (fresh.state / "step-runner.log").exists()  # its own step runner did the journeys
    # No Worker is deployed, so no Worker runner (Node, workerd) was started.
    assert not (fresh.state / "account" / "runner.log").exists()
