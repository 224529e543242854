"""Real Chromium against the fixture site, through the two public surfaces: the step runner
(`apiary browser-runner` as a subprocess) and the Browser Rendering REST subset (in process)."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from apiary_local.browser_engine import BrowserEngine
from apiary_local.browser_rendering import SlidingWindow, create_app
from egress import EgressPolicy
from tests.fixtures.site import PASSWORD, USERNAME, FixtureSite
from tests.harness import APIARY, free_port, wait_up

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"
REST = "/client/v4/accounts/acct-1/browser-rendering"


@pytest.fixture(scope="module")
def site() -> Iterator[FixtureSite]:
    with FixtureSite() as site:
        yield site


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path_factory.mktemp("runner") / "browser-runner.log"
    command = [str(APIARY), "browser-runner", "--port", url.rsplit(":", 1)[1]]
    env = {**os.environ, "EGRESS_ALLOW": "loopback"}  # the fixture site is on loopback
    with log.open("wb") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_up(f"{url}/health", timeout_s=20)
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    # uvicorn shuts down gracefully (closing the browser), then re-raises SIGTERM.
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()


def run(runner: str, steps: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    return httpx.post(f"{runner}/run", json={"steps": steps, **extra}, timeout=60)


def login(site: FixtureSite, path: str, password: str = PASSWORD) -> list[dict[str, Any]]:
    return [
        {"action": "goto", "url": f"{site.url}{path}"},
        {"action": "fill", "selector": "#username", "value": USERNAME},
        {"action": "fill", "selector": "#password", "value": password},
        {"action": "click", "selector": "#submit"},
        {"action": "expect_url", "contains": "/account", "timeout_ms": 1000},
    ]


def png(b64: str | None) -> bytes:
    assert b64 is not None
    return base64.b64decode(b64)


def sid(cookies: list[dict[str, Any]]) -> dict[str, Any]:
    return next(c for c in cookies if c["name"] == "sid")


def test_login_journey_passes_with_a_hardened_session_cookie(
    runner: str, site: FixtureSite
) -> None:
    steps = [
        *login(site, "/login"),
        {"action": "expect_text", "selector": "#welcome", "text": "Welcome"},
        {"action": "cookies"},
    ]
    response = run(runner, steps)
    assert response.status_code == 200
    report = response.json()
    assert report["ok"], report
    assert [s["ok"] for s in report["steps"]] == [True] * len(steps)
    assert report["final_url"] == f"{site.url}/account"
    assert report["title"] == "Account"
    assert report["status"] == 200
    assert isinstance(report["load_ms"], int)
    # Chromium keeps Secure cookies from http://127.0.0.1: loopback is a secure context.
    cookie = sid(report["cookies"])
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Lax")
    assert cookie["value"] in site.sessions
    assert sid(report["steps"][-1]["cookies"]) == cookie
    # Every fill value is scrubbed, even where the page echoes it back.
    assert report["steps"][5]["actual"] == "Welcome, [redacted]"
    assert PASSWORD not in response.text
    assert USERNAME not in response.text


def test_wrong_password_fails_at_the_expectation_with_a_screenshot(
    runner: str, site: FixtureSite
) -> None:
    wrong = "wrong-horse-battery"
    steps = [*login(site, "/login", password=wrong), {"action": "cookies"}]
    response = run(runner, steps)
    report = response.json()
    assert report["ok"] is False
    assert len(report["steps"]) == 5  # stopped at the failure: the cookies step never ran
    failed = report["steps"][-1]
    assert (failed["index"], failed["action"], failed["ok"]) == (4, "expect_url", False)
    assert failed["actual"] == f"{site.url}/login"
    assert "/account" in failed["error"]
    assert png(failed["screenshot"]).startswith(PNG)
    assert all(s["ok"] and s["screenshot"] is None for s in report["steps"][:4])
    assert wrong not in response.text


def test_first_goto_reports_status_headers_and_title(runner: str, site: FixtureSite) -> None:
    steps = [
        {"action": "goto", "url": f"{site.url}/"},
        {"action": "expect_text", "text": "Welcome to the fixture"},
        {"action": "goto", "url": f"{site.url}/status/404"},
    ]
    report = run(runner, steps).json()
    assert report["ok"], report
    assert report["status"] == 200  # the first goto's, not the 404 the journey went on to
    assert report["headers"]["x-frame-options"] == "DENY"
    assert report["headers"]["content-security-policy"] == "default-src 'self'"
    assert report["title"] == "Status 404"
    # Chromium logs any failed load, the main document's included, as a console error.
    assert report["console_errors"] == [
        "Failed to load resource: the server responded with a status of 404 (Not Found)"
    ]

    bare = run(runner, [{"action": "goto", "url": f"{site.url}/untitled"}]).json()
    assert bare["title"] == ""
    assert bare["console_errors"] == []
    assert "strict-transport-security" not in bare["headers"]


def test_content_and_count_read_the_loaded_page(runner: str, site: FixtureSite) -> None:
    steps = [
        {"action": "goto", "url": f"{site.url}/"},
        {"action": "content"},
        {"action": "count", "selector": "#hello"},
        {"action": "count", "selector": "p, a"},
        {"action": "count", "selector": "#nope"},
        {"action": "count", "selector": "h1[["},
    ]
    report = run(runner, steps).json()
    _, content, *counts, invalid = report["steps"]
    assert "<p>Welcome to the fixture</p>" in content["actual"]
    assert [c["actual"] for c in counts] == [1, 2, 0]
    assert (invalid["ok"], report["ok"]) == (False, False)
    assert "h1[[" in invalid["error"]


def test_console_errors_and_uncaught_exceptions_are_reported(
    runner: str, site: FixtureSite
) -> None:
    report = run(runner, [{"action": "goto", "url": f"{site.url}/console-error"}]).json()
    assert report["ok"]
    assert "boom" in report["console_errors"]
    assert any("kaboom" in e for e in report["console_errors"])


def test_dropped_connection_and_slow_page_fail_cleanly(runner: str, site: FixtureSite) -> None:
    started = time.monotonic()
    crash = run(runner, [{"action": "goto", "url": f"{site.url}/crash"}]).json()
    assert crash["ok"] is False
    assert "ERR_EMPTY_RESPONSE" in crash["steps"][0]["error"]
    assert png(crash["steps"][0]["screenshot"]).startswith(PNG)
    assert crash["status"] is None

    slow = run(runner, [{"action": "goto", "url": f"{site.url}/slow?ms=3000"}], timeout_ms=800)
    report = slow.json()
    assert report["ok"] is False
    assert "Timeout" in report["steps"][0]["error"]
    assert time.monotonic() - started < 10


def test_search_journey_with_press(runner: str, site: FixtureSite) -> None:
    steps = [
        {"action": "goto", "url": f"{site.url}/journey/1"},
        {"action": "click", "selector": "#next"},
        {"action": "wait_for", "selector": "#q"},
        {"action": "fill", "selector": "#q", "value": "bees"},
        {"action": "press", "selector": "#q", "key": "Enter"},
        {"action": "expect_url", "contains": "/journey/3"},
        {"action": "expect_text", "selector": "#result", "text": "You searched:"},
        {"action": "wait_for", "selector": "#q", "state": "detached"},
        {"action": "screenshot", "full_page": True},
    ]
    report = run(runner, steps).json()
    assert report["ok"], report
    assert report["steps"][6]["actual"] == "You searched: [redacted]"
    assert png(report["steps"][-1]["screenshot"]).startswith(PNG)


def test_sessions_replayed_after_logout(runner: str, site: FixtureSite) -> None:
    """A good logout kills the session; the weak flow keeps (and never rotates) its id."""

    def replay(cookie: dict[str, Any], expect: str) -> dict[str, Any]:
        jar = [{"name": "sid", "value": cookie["value"], "url": site.url}]
        steps = [
            {"action": "goto", "url": f"{site.url}/account"},
            {"action": "expect_url", "contains": expect, "timeout_ms": 1000},
        ]
        return run(runner, steps, cookies=jar).json()

    good_steps = [
        *login(site, "/login"),
        {"action": "cookies"},
        {"action": "click", "selector": "#logout"},
        {"action": "expect_url", "contains": "/login"},
    ]
    good = run(runner, good_steps).json()
    assert good["ok"], good
    good_sid = sid(good["steps"][5]["cookies"])
    assert good_sid["value"] not in site.sessions
    assert replay(good_sid, "/login")["ok"]

    weak_steps = [
        {"action": "goto", "url": f"{site.url}/login-weak"},
        {"action": "cookies"},
        *login(site, "/login-weak")[1:],
        {"action": "goto", "url": f"{site.url}/logout-weak"},
    ]
    weak = run(runner, weak_steps).json()
    assert weak["ok"], weak
    before = sid(weak["steps"][1]["cookies"])
    assert sid(weak["cookies"])["value"] == before["value"]  # not rotated at login
    assert (before["httpOnly"], before["secure"]) == (False, False)
    assert replay(before, "/account")["ok"]  # still logged in after "logging out"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"steps": []}',
        b'{"steps": [{"action": "teleport"}]}',
        b'{"steps": [{"action": "goto"}]}',
        b'{"steps": [{"action": "goto", "url": "file:///etc/passwd"}]}',
        b'{"steps": [{"action": "fill", "selector": "", "value": "hunter2"}]}',
        b'{"steps": [{"action": "wait_for", "selector": "a", "state": "gone"}]}',
        b'{"steps": [{"action": "cookies", "extra": 1}]}',
        b'{"steps": [{"action": "cookies"}], "timeout_ms": 0}',
        b'{"steps": [{"action": "cookies"}], "cookies": [{"name": "sid"}]}',
        b'{"steps": [{"action": "cookies"}], "verbose": true}',
    ],
)
def test_bad_bodies_are_400(runner: str, body: bytes) -> None:
    response = httpx.post(f"{runner}/run", content=body, timeout=10)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid"
    assert "hunter2" not in response.text


@contextlib.asynccontextmanager
async def rendering(**options: Any) -> AsyncIterator[httpx.AsyncClient]:
    engine = BrowserEngine(
        max_concurrency=2, timeout_ms=10_000, egress=EgressPolicy.parse("loopback")
    )
    app = create_app(engine, **({"api_token": None} | options))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://rendering") as client:
            yield client
    finally:
        await engine.close()


@pytest.mark.anyio
async def test_rest_snapshot_scrape_and_screenshot(site: FixtureSite) -> None:
    async with rendering() as client:
        snap = await client.post(
            f"{REST}/snapshot",
            json={"url": f"{site.url}/", "viewport": {"width": 800, "height": 600}},
        )
        body = snap.json()
        assert (snap.status_code, body["success"], body["errors"]) == (200, True, [])
        assert "<title>Fixture Home</title>" in body["result"]["content"]
        assert png(body["result"]["screenshot"]).startswith(PNG)

        elements = [{"selector": "#hello"}, {"selector": "a"}]
        scrape = await client.post(f"{REST}/scrape", json={"url": site.url, "elements": elements})
        hello, links = scrape.json()["result"]
        assert hello["selector"] == "#hello"
        [found] = hello["results"]
        assert found["text"] == "Hello"
        assert {"name": "id", "value": "hello"} in found["attributes"]
        assert min(found["width"], found["height"]) > 0
        assert links["results"][0]["text"] == "Log in"

        shot = await client.post(
            f"{REST}/screenshot", json={"url": site.url, "screenshotOptions": {"fullPage": True}}
        )
        assert shot.headers["content-type"] == "image/png"
        assert shot.content.startswith(PNG)

        broken = await client.post(f"{REST}/snapshot", json={"url": f"{site.url}/crash"})
        assert broken.status_code == 422
        assert broken.json()["success"] is False

        bad_selector = {"url": site.url, "elements": [{"selector": "[[["}]}
        assert (await client.post(f"{REST}/scrape", json=bad_selector)).status_code == 400
        bad_viewport = {"url": site.url, "viewport": {"width": 0, "height": 600}}
        refused = await client.post(f"{REST}/snapshot", json=bad_viewport)
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["code"] == 400


@pytest.mark.anyio
async def test_rest_auth_then_rate_limit() -> None:
    async with rendering(api_token="s3cret", rate_per_minute=3) as client:
        good = {"Authorization": "Bearer s3cret"}
        for headers in ({}, {"Authorization": "Bearer nope"}):
            denied = await client.post(f"{REST}/scrape", json={}, headers=headers)
            assert denied.status_code == 401
            assert denied.json()["errors"][0]["code"] == 10000
        # Bad bodies are admitted (and count), so no browser is needed to fill the window.
        for _ in range(3):
            bad = await client.post(f"{REST}/scrape", json={"url": "ftp://x"}, headers=good)
            assert bad.status_code == 400
        limited = await client.post(f"{REST}/scrape", json={}, headers=good)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.json()["errors"][0]["code"] == 429
        other_account = REST.replace("acct-1", "acct-2")
        assert (await client.post(f"{other_account}/scrape", headers=good)).status_code == 400


def test_sliding_window_frees_slots_as_they_age() -> None:
    now = [0.0]
    window = SlidingWindow(2, clock=lambda: now[0])
    assert window.admit("a") is None
    now[0] = 30.0
    assert window.admit("a") is None
    assert window.admit("a") == pytest.approx(30.0)
    now[0] = 60.0  # the first admission ages out
    assert window.admit("a") is None
    assert window.admit("a") == pytest.approx(30.0)
