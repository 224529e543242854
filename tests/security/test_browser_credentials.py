"""Finding 1: stored credentials go only to the sites they are bound to.

Every attack here is made by a check author (scope `browser_tests:write`) against a real
`apiary dev`, a real step runner and Chromium, with a trusted site and an attacker's site on
loopback; each asserts that the attacker's site never received the credential (or anything).
"""

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.harness import DevServer, admin_token
from tests.security.conftest import RUNNER_TOKEN, Runner
from tests.security.sites import RecordingSite, login_form, page

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
ADMIN = {"Authorization": f"Bearer {admin_token()}"}
USERNAME = "alice@example.com"
PASSWORD = "pa ss/word+1&x"  # every encoding of it differs from the text
DONE = {"passed", "failed", "error"}


@pytest.fixture
def world(
    dev_server: Callable[..., DevServer],
    runner: Callable[..., Runner],
    sites: Callable[..., RecordingSite],
) -> tuple[DevServer, RecordingSite, RecordingSite]:
    trusted, attacker = sites(), sites()
    trusted.pages |= {
        "/login": login_form("/done"),
        "/login-get": login_form("/done", method="get"),
        "/done": page("Welcome", "<p id='welcome'>Welcome</p>"),
        "/box": page("Box", "<input id='box'>"),
        "/login-elsewhere": lambda _: login_form(f"{attacker.url}/collect"),
    }
    attacker.pages |= {"/login": login_form("/collect"), "/collect": page("Thanks", "")}
    credentials = {"alice": {"username": USERNAME, "password": PASSWORD, "origins": [trusted.url]}}
    server = dev_server(
        args=("--no-cron",),
        CF_API_BASE="{url}/client/v4",
        CF_ACCOUNT_ID="local",
        CF_API_TOKEN="local-browser-token-0123456789",
        BROWSER_RUNNER_URL=runner().url,
        BROWSER_RUNNER_TOKEN=RUNNER_TOKEN,
        BROWSER_CREDENTIALS=json.dumps(credentials),
    )
    return server, trusted, attacker


def run(server: DevServer, test_type: str, url: str, **options: Any) -> dict[str, Any]:
    body = {"test_type": test_type, "target_url": url, "options": options}
    response = httpx.post(f"{server.url}/api/browser_tests", headers=ADMIN, json=body)
    assert response.status_code == 201, response.text
    run_id = response.json()["test_run"]["id"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = httpx.get(f"{server.url}/api/browser_tests/{run_id}", headers=ADMIN).json()
        if found["status"] in DONE:
            return found
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not end")


def login(url: str, **extra: Any) -> dict[str, Any]:
    return {"credentials": "alice", "login_url": url, "submit_selector": "#submit", **extra}


def test_a_login_on_another_origin_is_refused_before_the_browser_starts(world: Any) -> None:
    server, trusted, attacker = world
    found = run(server, "auth", f"{attacker.url}/login", **login(f"{attacker.url}/login",
                expect_url_contains="/collect"))  # fmt: skip
    assert found["status"] == "error"
    assert f"may not be used on {attacker.url}" in found["error"]
    assert attacker.seen == []  # the browser never went there
    assert trusted.seen == []


def test_a_journey_cannot_carry_a_secret_to_another_origin(world: Any) -> None:
    server, trusted, attacker = world
    steps = [
        {"action": "goto", "url": f"{trusted.url}/box"},
        {"action": "fill", "selector": "#box", "secret": "alice.password"},
        {"action": "goto", "url": f"{attacker.url}/collect"},
    ]
    found = run(server, "user_journey", f"{trusted.url}/box", steps=steps)
    assert found["status"] == "error"
    assert "after a secret was filled" in found["error"]
    assert attacker.seen == []


def test_a_form_that_submits_to_another_origin_is_blocked(world: Any) -> None:
    server, trusted, attacker = world
    steps = [
        {"action": "goto", "url": f"{trusted.url}/login-elsewhere"},
        {"action": "fill", "selector": "#username", "secret": "alice.username"},
        {"action": "fill", "selector": "#password", "secret": "alice.password"},
        {"action": "click", "selector": "#submit"},
        {"action": "expect_url", "contains": "/collect"},
    ]
    found = run(server, "user_journey", f"{trusted.url}/login-elsewhere", steps=steps)
    assert found["status"] == "failed"
    failed = [a for a in found["assertions"] if not a["passed"]]
    assert "blocked: a secret was typed on this page" in failed[0]["actual"]
    assert attacker.seen == []  # no POST with the password, no request at all


def test_no_screenshot_after_a_secret_unless_the_check_opts_in(world: Any) -> None:
    server, trusted, _ = world
    steps = [
        {"action": "goto", "url": f"{trusted.url}/box"},
        {"action": "fill", "selector": "#box", "secret": "alice.password"},
        {"action": "screenshot"},
    ]
    refused = run(server, "user_journey", f"{trusted.url}/box", steps=steps)
    assert refused["status"] == "error"
    assert "no screenshot after a secret was filled" in refused["error"]
    assert refused["screenshot_key"] is None
    allowed = run(
        server, "user_journey", f"{trusted.url}/box", steps=steps, screenshots_after_secrets=True
    )
    assert allowed["status"] == "passed", allowed
    assert allowed["screenshot_key"] is not None


def test_every_form_of_a_credential_is_scrubbed_from_results(world: Any) -> None:
    """A GET form puts both values, URL-encoded, in the URL an assertion reports."""
    server, trusted, _ = world
    found = run(
        server,
        "auth",
        f"{trusted.url}/login-get",
        **login(f"{trusted.url}/login-get", expect_url_contains="/done"),
    )
    assert found["status"] == "passed", found
    url_after = next(a for a in found["assertions"] if a["name"] == "url after login")
    assert "[redacted]" in url_after["actual"]
    everything = (
        json.dumps(found) + httpx.get(f"{server.url}/api/browser_tests", headers=ADMIN).text
    )
    for secret in (USERNAME, PASSWORD):
        for form in (secret, httpx.URL("", params={"x": secret}).query.decode()[2:]):
            assert form not in everything, form
            assert form not in server.log(), form
    assert any(b"password=" in s.path.encode() for s in trusted.seen)  # it did go there


def test_session_checks_keep_the_cookie_on_the_login_site(world: Any) -> None:
    server, trusted, attacker = world
    options = {
        "session_cookie": "sid",
        "login": login(f"{trusted.url}/login"),
        "logged_in_selector": "#welcome",
        "protected_url": f"{attacker.url}/collect",
        "logout_url": f"{trusted.url}/logout",
    }
    body = {"test_type": "security_session", "target_url": trusted.url, "options": options}
    response = httpx.post(f"{server.url}/api/browser_tests", headers=ADMIN, json=body)
    assert response.status_code == 422
    assert "protected_url must be on the login's origin" in response.text
    assert attacker.seen == []


def test_a_credential_without_origins_is_never_used(
    dev_server: Callable[..., DevServer], runner: Callable[..., Runner], sites: Callable
) -> None:
    trusted = sites()
    trusted.pages["/login"] = login_form("/done")
    server = dev_server(
        args=("--no-cron",),
        BROWSER_RUNNER_URL=runner().url,
        BROWSER_RUNNER_TOKEN=RUNNER_TOKEN,
        BROWSER_CREDENTIALS=json.dumps({"alice": {"username": "a", "password": PASSWORD}}),
    )
    found = run(server, "auth", f"{trusted.url}/login", **login(f"{trusted.url}/login",
                expect_selector="#welcome"))  # fmt: skip
    assert found["status"] == "error"
    assert "needs username, password and origins" in found["error"]
    assert trusted.seen == []
