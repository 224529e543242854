"""Browser checks end to end: `apiary dev` (serving the Browser Rendering REST subset on a real
Chromium), `apiary browser-runner` (the step runner, real Chromium) and a fixture site."""

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.fixtures.site import PASSWORD, USERNAME, FixtureSite
from tests.harness import APIARY, DevServer, admin_token, free_port, wait_up
from tests.security.sites import RecordingSite, Reply, page

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": f"Bearer {admin_token()}"}
MALLORY_PASSWORD = "wrong-password-123"


def credentials(site: FixtureSite) -> dict[str, Any]:
    """Each credential is bound to the sites it may be typed into."""
    return {
        "alice": {"username": USERNAME, "password": PASSWORD, "origins": [site.url]},
        "mallory": {"username": USERNAME, "password": MALLORY_PASSWORD, "origins": [site.url]},
    }


DONE = {"passed", "failed", "error"}
PNG = b"\x89PNG\r\n\x1a\n"
RUNNER_TOKEN = "runner-token-0123456789-abcdef"


class Runner:
    """`apiary browser-runner` as a real subprocess."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [str(APIARY), "browser-runner", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # The fixture site is on loopback, which a runner refuses unless told.
            env={**os.environ, "BROWSER_RUNNER_TOKEN": RUNNER_TOKEN, "EGRESS_ALLOW": "loopback"},
        )
        wait_up(f"{self.url}/health", timeout_s=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture(scope="module")
def site() -> Iterator[FixtureSite]:
    with FixtureSite() as fixture:
        yield fixture


@pytest.fixture
def runner() -> Iterator[Runner]:
    process = Runner()
    yield process
    process.kill()


@pytest.fixture
def apiary(
    dev_server: Callable[..., DevServer], runner: Runner, site: FixtureSite
) -> Callable[..., DevServer]:
    def start(**dev_vars: str) -> DevServer:
        values = {
            "CF_API_BASE": "{url}/client/v4",
            "CF_ACCOUNT_ID": "local",
            "CF_API_TOKEN": "local-browser-token-0123456789",
            "BROWSER_RUNNER_URL": runner.url,
            "BROWSER_RUNNER_TOKEN": RUNNER_TOKEN,
            "BROWSER_CREDENTIALS": json.dumps(credentials(site)),
        }
        return dev_server(args=("--no-cron",), **(values | dev_vars))

    return start


def submit(server: DevServer, test_type: str, url: str, **options: Any) -> str:
    body = {"test_type": test_type, "target_url": url, "options": options}
    response = httpx.post(f"{server.url}/api/browser_tests", headers=ADMIN, json=body)
    assert response.status_code == 201, response.text
    run = response.json()["test_run"]
    assert run["status"] == "pending"
    return run["id"]


def wait(server: DevServer, run_id: str, timeout_s: float = 50) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = httpx.get(f"{server.url}/api/browser_tests/{run_id}", headers=ADMIN).json()
        if run["status"] in DONE:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still {run['status']}")


def results(run: dict[str, Any]) -> dict[str, bool]:
    return {a["name"]: a["passed"] for a in run["assertions"]}


def screenshot(server: DevServer, run_id: str) -> bytes:
    response = httpx.get(f"{server.url}/api/browser_tests/{run_id}/screenshot", headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    return response.content


@pytest.mark.timeout(180)
def test_smoke_passes_and_fails_for_the_right_reasons(apiary: Callable, site: FixtureSite) -> None:
    server = apiary()
    good = submit(
        server,
        "smoke",
        f"{site.url}/",
        required_text=["Welcome to the fixture"],
        required_selectors=["#hello"],
    )
    cases = {
        ("no console errors",): submit(server, "smoke", f"{site.url}/console-error"),
        # Chromium also logs the failed load of a 500 page as a console error.
        ("status is 2xx", "no console errors"): submit(server, "smoke", f"{site.url}/status/500"),
        ("title is not empty",): submit(server, "smoke", f"{site.url}/untitled"),
        ("load time",): submit(server, "smoke", f"{site.url}/slow?ms=1500", max_load_ms=500),
        ("selector: #nope",): submit(server, "smoke", f"{site.url}/", required_selectors=["#nope"]),
    }
    run = wait(server, good)
    assert run["status"] == "passed", run
    assert all(results(run).values())
    assert run["duration_ms"] > 0
    assert run["started_at"] < run["completed_at"]
    assert screenshot(server, good).startswith(PNG)
    for failing, run_id in cases.items():
        run = wait(server, run_id)
        assert run["status"] == "failed", (failing, run)
        assert tuple(name for name, ok in results(run).items() if not ok) == failing


@pytest.mark.timeout(120)
def test_a_smoke_check_loads_its_page_once(apiary: Callable) -> None:
    """Status, content, selectors, screenshot, console errors and load time all come from one
    page load: the site is asked for the page once per check."""
    with RecordingSite() as site:
        site.pages["/"] = page(
            "Counted", "<h1 id='hello'>Hello</h1><p>Welcome</p><script>console.error('x')</script>"
        )
        site.pages["/favicon.ico"] = Reply(204)  # Chromium asks for it; it is not the page
        server = apiary()
        options = {"required_text": ["Welcome"], "required_selectors": ["#hello"]}
        run_id = submit(server, "smoke", f"{site.url}/", **options)
        run = wait(server, run_id)
        assert [s.path for s in site.seen if s.path != "/favicon.ico"] == ["/"]
    assert run["status"] == "failed", run
    assert {name for name, ok in results(run).items() if not ok} == {"no console errors"}
    load = next(a for a in run["assertions"] if a["name"] == "load time")
    assert isinstance(load["actual"], int)
    assert screenshot(server, run_id).startswith(PNG)


@pytest.mark.timeout(120)
def test_auth_logs_in_and_never_keeps_the_password(apiary: Callable, site: FixtureSite) -> None:
    server = apiary()
    login = {"login_url": f"{site.url}/login", "submit_selector": "#submit"}
    good = submit(
        server,
        "auth",
        f"{site.url}/login",
        credentials="alice",
        expect_selector="#welcome",
        expect_cookie="sid",
        screenshots_after_secrets=True,
        **login,
    )
    bad = submit(
        server,
        "auth",
        f"{site.url}/login",
        credentials="mallory",
        expect_selector="#welcome",
        expect_url_contains="/account",
        **login,
    )
    passed, failed = wait(server, good), wait(server, bad)
    assert passed["status"] == "passed", passed
    assert failed["status"] == "failed"
    assert results(failed) == {
        "login form submitted": True,
        "selector after login: #welcome": False,
        "url after login": False,
    }
    assert screenshot(server, good).startswith(PNG)  # it opted in
    # No screenshot once a secret was typed, not even of the failure, unless opted in.
    missing = httpx.get(f"{server.url}/api/browser_tests/{bad}/screenshot", headers=ADMIN)
    assert missing.status_code == 404
    listing = httpx.get(f"{server.url}/api/browser_tests", headers=ADMIN).text
    for secret in (PASSWORD, MALLORY_PASSWORD):
        assert secret not in json.dumps(passed) + json.dumps(failed) + listing
        assert secret not in server.log()


@pytest.mark.timeout(120)
def test_security_session_tells_a_safe_site_from_a_weak_one(
    apiary: Callable, site: FixtureSite
) -> None:
    server = apiary()

    def options(kind: str) -> dict[str, Any]:
        return {
            "session_cookie": "sid",
            "login": {
                "credentials": "alice",
                "login_url": f"{site.url}/login{kind}",
                "submit_selector": "#submit",
            },
            "logged_in_selector": "#welcome",
            "protected_url": f"{site.url}/account",
            "logout_url": f"{site.url}/logout{kind}",
        }

    safe = submit(server, "security_session", f"{site.url}/", **options(""))
    weak = submit(server, "security_session", f"{site.url}/bare", **options("-weak"))
    # Without login steps: the cookie the page itself sets, as it declares it.
    plain = submit(server, "security_session", f"{site.url}/login-weak", session_cookie="sid")
    run = wait(server, plain)
    assert {name for name, ok in results(run).items() if not ok} == {
        "HSTS", "Content-Security-Policy", "X-Content-Type-Options", "frame protection",
        "sid Secure", "sid HttpOnly", "sid SameSite",
    }  # fmt: skip
    assert next(a for a in run["assertions"] if a["name"] == "sid SameSite")["actual"] == "not set"
    run = wait(server, safe)
    assert run["status"] == "passed", run
    run = wait(server, weak)
    assert run["status"] == "failed"
    assert {name for name, ok in results(run).items() if not ok} == {
        "HSTS",
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "frame protection",
        "sid Secure",
        "sid HttpOnly",
        "sid SameSite",
        "sid changes at login",
        "sid refused after logout",
    }


@pytest.mark.timeout(120)
def test_user_journey_reports_every_step(
    apiary: Callable, site: FixtureSite, runner: Runner
) -> None:
    server = apiary()
    steps = [
        {"action": "goto", "url": f"{site.url}/journey/1"},
        {"action": "click", "selector": "#next"},
        {"action": "fill", "selector": "#q", "value": "bees"},
        {"action": "click", "selector": "#go"},
        {"action": "expect_text", "text": "You searched: bees"},
        {"action": "expect_url", "contains": "/journey/3"},
        {"action": "screenshot"},
    ]
    good = submit(server, "user_journey", f"{site.url}/journey/1", steps=steps)
    wrong = [*steps[:4], {"action": "expect_text", "text": "You searched: wasps"}, *steps[5:]]
    bad = submit(server, "user_journey", f"{site.url}/journey/1", steps=wrong)
    run = wait(server, good)
    assert run["status"] == "passed", run
    assert len(run["assertions"]) == 7
    assert screenshot(server, good).startswith(PNG)
    run = wait(server, bad)
    assert [a["passed"] for a in run["assertions"]] == [True] * 4 + [False] * 3
    assert run["assertions"][5]["actual"] == "not reached"
    # The runner serves only apiary: without its token, no browser.
    anonymous = httpx.post(f"{runner.url}/run", json={"steps": steps[:1]})
    assert anonymous.status_code == 401
    refused = apiary(BROWSER_RUNNER_TOKEN="not-the-runner-token")
    run = wait(refused, submit(refused, "user_journey", f"{site.url}/journey/1", steps=steps))
    assert run["status"] == "error"
    assert run["error"] == "the step runner refused BROWSER_RUNNER_TOKEN"


@pytest.mark.timeout(120)
def test_suites_run_their_tests_as_children(apiary: Callable, site: FixtureSite) -> None:
    server = apiary()
    suite = {
        "name": "fixture",
        "tests": [
            {"test_type": "smoke", "target_url": f"{site.url}/"},
            {"test_type": "smoke", "target_url": f"{site.url}/status/404"},
        ],
    }
    assert (
        httpx.post(f"{server.url}/api/browser_tests/suites", headers=ADMIN, json=suite).status_code
        == 201
    )
    listed = httpx.get(f"{server.url}/api/browser_tests/suites", headers=ADMIN).json()
    assert [s["name"] for s in listed["suites"]] == ["fixture"]
    response = httpx.post(
        f"{server.url}/api/browser_tests/run_suite", headers=ADMIN, json={"suite_name": "fixture"}
    )
    assert response.status_code == 201
    suite_run = response.json()["suite_run"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view = httpx.get(f"{server.url}/api/browser_tests/{suite_run['id']}", headers=ADMIN).json()
        if view["status"] != "running":
            break
        time.sleep(0.2)
    assert view["status"] == "failed"
    assert sorted(c["status"] for c in view["children"]) == ["failed", "passed"]
    missing = httpx.post(
        f"{server.url}/api/browser_tests/run_suite", headers=ADMIN, json={"suite_name": "nope"}
    )
    assert missing.status_code == 404


@pytest.mark.timeout(120)
def test_a_runner_that_dies_mid_run_gives_error_not_a_hang(
    apiary: Callable, site: FixtureSite, runner: Runner
) -> None:
    server = apiary()
    slow = [{"action": "goto", "url": f"{site.url}/slow?ms=20000"}]
    run_id = submit(server, "user_journey", f"{site.url}/", steps=slow)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        run = httpx.get(f"{server.url}/api/browser_tests/{run_id}", headers=ADMIN).json()
        if run["status"] == "running":
            break
        time.sleep(0.05)
    time.sleep(0.5)
    runner.kill()
    run = wait(server, run_id, timeout_s=30)
    assert run["status"] == "error"
    assert "step runner" in run["error"] or "network" in run["error"]


@pytest.mark.timeout(180)
def test_twenty_concurrent_runs_queue_under_the_plan_limit(
    apiary: Callable, site: FixtureSite
) -> None:
    server = apiary(BROWSER_MAX_CONCURRENCY="2")
    ids = [submit(server, "smoke", f"{site.url}/?n={n}") for n in range(20)]
    seen_in_use, warned = 0, False
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        usage = httpx.get(f"{server.url}/api/browser_tests/limits", headers=ADMIN).json()
        seen_in_use = max(seen_in_use, usage["browsers_in_use"])
        warned = warned or usage["warning"]
        page = httpx.get(
            f"{server.url}/api/browser_tests",
            headers=ADMIN,
            params={"status": "passed", "limit": 50},
        ).json()
        if len(page["test_runs"]) == 20:
            break
        time.sleep(0.1)
    assert sorted(r["id"] for r in page["test_runs"]) == sorted(ids)
    assert seen_in_use == 2  # the cap held, and was used
    assert warned  # at 2 of 2 browsers the plan is over 85%
    assert usage["max_concurrency"] == 2


class _TooManyRequestsOnce(BaseHTTPRequestHandler):
    """In front of the step runner: the first run gets 429 Retry-After: 2."""

    upstream = ""
    refused: list[float] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path == "/run" and not self.refused:
            self.refused.append(time.monotonic())
            self.send_response(429)
            self.send_header("Retry-After", "2")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        upstream = httpx.post(
            self.upstream + self.path,
            content=body,
            timeout=60,
            headers={
                "authorization": self.headers["authorization"],
                "content-type": "application/json",
            },
        )
        self.send_response(upstream.status_code)
        self.send_header("content-type", upstream.headers["content-type"])
        self.send_header("content-length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)


@pytest.mark.timeout(120)
def test_a_429_from_a_runner_is_waited_out(
    apiary: Callable, site: FixtureSite, runner: Runner
) -> None:
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _TooManyRequestsOnce)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        server = apiary(BROWSER_RUNNER_URL=f"http://127.0.0.1:{proxy.server_address[1]}")
        _TooManyRequestsOnce.upstream = runner.url
        started = time.monotonic()
        run = wait(server, submit(server, "smoke", f"{site.url}/"))
        assert run["status"] == "passed", run
        assert _TooManyRequestsOnce.refused
        assert time.monotonic() - started >= 2
    finally:
        proxy.shutdown()
        proxy.server_close()
