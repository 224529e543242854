"""The dashboard in real Chromium against a real `apiary dev`: sign-in and its safety, the
live swarm page, the join page running chunks, the invite's QR code, every page clean (no
console error, no request leaving 127.0.0.1, usable at 375 px), offline /docs, the budget."""

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from websockets.sync.client import connect

from apiary_local.browser_engine import chromium_args, chromium_path
from tests.dashboard_browser import PHONE, first_load_bytes, session_context, sign_in, watch
from tests.fleet_client import GOOD, Fleet
from tests.harness import ROOT, DevServer, admin_token

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": f"Bearer {admin_token()}"}
INTERVAL_MS = 1000  # the test swarms' broadcast interval
SHOTS = os.environ.get("APIARY_SCREENSHOTS")  # `make screenshots` sets docs/screenshots


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=chromium_args())
        yield chromium
        chromium.close()


@pytest.fixture
def dashboard(dev_server: Callable[..., DevServer]) -> DevServer:
    return dev_server(args=("--no-cron",))


def new_swarm(server: DevServer, name: str = "render farm") -> str:
    body = {"name": name, "settings": {"broadcast_interval_ms": INTERVAL_MS}}
    response = httpx.post(f"{server.url}/api/swarms", headers=ADMIN, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def shot(page: Page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@pytest.mark.timeout(120)
def test_sign_in_refuses_a_wrong_token_needs_csrf_and_sign_out_revokes(
    browser: Browser, dashboard: DevServer
) -> None:
    context = browser.new_context()
    watched = watch(context)
    page = watched.page
    page.goto(f"{dashboard.url}/tasks")
    expect(page).to_have_url(f"{dashboard.url}/signin?next=%2Ftasks")
    page.locator("#token").fill("not.a.token")
    page.locator("#submit").click()
    expect(page.get_by_role("alert")).to_contain_text("malformed token")
    expect(page.get_by_role("alert")).to_contain_text("correlation id")
    token = admin_token()
    page.locator("#subject").fill("someone-else")
    page.locator("#token").fill(token)
    page.locator("#submit").click()
    expect(page.get_by_role("alert")).to_contain_text("another subject")
    page.locator("#subject").fill("tests")
    page.locator("#submit").click()
    expect(page.locator("#signed-in-as")).to_have_text("signed in as tests")
    expect(page).to_have_url(f"{dashboard.url}/tasks")
    # The JWT is nowhere a script can read, and the cookie is HttpOnly and SameSite=Strict.
    readable = page.evaluate(
        "() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie"
    )
    assert token not in readable
    assert "apiary_session" not in readable
    (cookie,) = [c for c in context.cookies() if c["name"] == "apiary_session"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    # A state-changing request on the cookie alone is refused without the CSRF token.
    refused = page.evaluate(
        """async () => { const r = await fetch('/api/swarms', {method: 'POST',
             headers: {'Content-Type': 'application/json'}, body: JSON.stringify({name: 'x'})});
           return [r.status, (await r.json()).error.code]; }"""
    )
    assert refused == [403, "csrf_failed"]
    allowed = page.evaluate(
        """async () => { const s = await (await fetch('/api/auth/session')).json();
           const r = await fetch('/api/swarms', {method: 'POST', body: JSON.stringify({name: 'x'}),
             headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf_token}});
           return r.status; }"""
    )
    assert allowed == 201
    # Bearer requests need no CSRF token.
    assert (
        httpx.post(f"{dashboard.url}/api/swarms", headers=ADMIN, json={"name": "y"}).status_code
        == 201
    )
    # Sign-out revokes on the server: the old cookie is refused afterwards.
    page.get_by_role("link", name="Sign out").click()
    expect(page.locator("#signed-out")).to_be_visible()
    old = {"Cookie": f"apiary_session={cookie['value']}"}
    assert httpx.get(f"{dashboard.url}/api/overview", headers=old).status_code == 401
    assert httpx.get(f"{dashboard.url}/api/auth/session", headers=old).json() == {
        "signed_in": False, "subject": None, "scopes": [], "expires_at": None, "csrf_token": None
    }  # fmt: skip
    page.goto(f"{dashboard.url}/")
    expect(page).to_have_url(f"{dashboard.url}/signin?next=%2F")
    watched.expect_clean(allow=("401", "403"))  # the refused requests above, and nothing else


@pytest.mark.timeout(120)
def test_a_device_appears_live_and_goes_offline_when_it_leaves(
    browser: Browser, dashboard: DevServer
) -> None:
    swarm_id = new_swarm(dashboard)
    operator = sign_in(browser, dashboard)
    operator.page.goto(f"{dashboard.url}/swarms/{swarm_id}")
    expect(operator.page.locator("#live")).to_have_text("live")
    expect(operator.page.locator("#devices")).to_contain_text("No devices yet")
    invite = httpx.post(f"{dashboard.url}/api/swarms/{swarm_id}/invites", headers=ADMIN, json={})
    url = f"ws://127.0.0.1:{dashboard.port}/api/swarms/{swarm_id}/ws?persistentId=t1"
    with connect(url) as ws:
        ws.send(json.dumps({"type": "JOIN", "data": {"invite_token": invite.json()["token"]}}))
        welcome = json.loads(ws.recv(timeout=10))
        assert welcome["type"] == "WELCOME"
        device_id = welcome["data"]["device_id"]
        row = operator.page.locator("#devices tr", has_text=device_id)
        expect(row).to_contain_text("online", timeout=2 * INTERVAL_MS)
    expect(row).to_contain_text("offline", timeout=2 * INTERVAL_MS)
    operator.expect_clean()


def decode_qr(browser: Browser, svg: str) -> str:
    """Render the page's QR code SVG on a canvas and read it back with jsQR (pinned, npm)."""
    page = browser.new_page()
    page.add_script_tag(path=str(ROOT / "node_modules" / "jsqr" / "dist" / "jsQR.js"))
    text = page.evaluate(
        """async (svg) => {
          const img = new Image();
          img.src = 'data:image/svg+xml;base64,' + btoa(svg);
          await img.decode();
          const canvas = document.createElement('canvas');
          canvas.width = canvas.height = 400;
          const g = canvas.getContext('2d');
          g.drawImage(img, 0, 0, 400, 400);
          const found = jsQR(g.getImageData(0, 0, 400, 400).data, 400, 400);
          return found && found.data;
        }""",
        svg,
    )
    page.close()
    return text


@pytest.mark.timeout(180)
def test_join_pages_join_run_chunks_and_the_job_reaches_100_percent(
    browser: Browser, dashboard: DevServer
) -> None:
    swarm_id = new_swarm(dashboard)
    operator = sign_in(browser, dashboard)
    page = operator.page
    page.goto(f"{dashboard.url}/swarms/{swarm_id}")
    expect(page.locator("#live")).to_have_text("live")
    page.locator("#invite-uses").fill("2")
    page.get_by_role("button", name="Create invite").click()
    link = page.locator("#invite-link")
    expect(link).to_be_visible()
    invite_url = link.get_attribute("href")
    assert invite_url.startswith(f"{dashboard.url}/join#swarm={swarm_id}&invite=")
    svg = page.locator("#invite svg").evaluate("el => new XMLSerializer().serializeToString(el)")
    assert decode_qr(browser, svg) == invite_url
    shot(page, "swarm-invite")

    phones = [watch(browser.new_context(viewport=PHONE, is_mobile=True)) for _ in range(2)]
    for phone in phones:
        phone.page.goto(invite_url)
        expect(phone.page.locator("#join-status")).to_contain_text("joined as")
        # The invite left the address bar (and history) once read.
        assert "invite=" not in phone.page.url
    # Each window shows the other within a broadcast interval or two.
    for phone in phones:
        expect(phone.page.locator("#swarm-devices li")).to_have_count(2, timeout=3 * INTERVAL_MS)
    expect(page.locator("#devices tbody tr")).to_have_count(2)

    page.locator("#job-chunks").fill("12")
    page.locator("#job-size").fill("150")
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator("progress[data-job]")).to_have_attribute("value", "100", timeout=60_000)
    done = sum(int(p.page.locator("#chunks-done").inner_text()) for p in phones)
    assert done >= 12
    shot(page, "swarm")
    shot(phones[0].page, "join-phone")
    # A reload RESUMEs with the saved credentials (WebCrypto HMAC, as the server checks it).
    phones[0].page.reload()
    expect(phones[0].page.locator("#join-status")).to_contain_text("resumed as")
    for watched in (operator, *phones):
        watched.expect_clean()


PAGES = ["/", "/swarms", "/swarms/{swarm}", "/tasks", "/tasks/{task}", "/servers", "/cron",
         "/cron/runs/{run}", "/browser", "/fleet", "/fleet/{worker}", "/signin",
         "/join"]  # fmt: skip


def a_fleet(server: DevServer) -> str:
    """A managed Worker in the middle of a rollout, with usage: real traffic today, and (for
    the charts: a fresh account has only today) two weeks of earlier days seeded into D1."""
    fleet = Fleet(server, alerts=None, token=admin_token())  # type: ignore[arg-type]
    fleet.create("shop-api", label="v1")
    for i in range(40):
        fleet.worker("shop-api", "/throw" if i % 8 == 0 else "/")
    two = fleet.new_version("shop-api", GOOD, "v2")
    spec = {"version_id": two, "steps": [10, 50, 100], "step_interval_s": 3600}
    fleet.ok(fleet.api.post("/api/workers/shop-api/rollouts", json=spec), 201)
    fleet.wait_rollout("shop-api", lambda r: r["phase"] == "observing")
    fleet.poll_usage()
    database = sqlite3.connect(server.state / "d1" / "apiary-dev.sqlite")
    today = datetime.now(UTC).date()
    with database:
        for back in range(1, 15):
            day = (today - timedelta(days=back)).isoformat()
            requests, errors = 1500 + 120 * (back % 5), 40 + 45 * (back % 4)
            database.execute(
                "INSERT INTO worker_usage VALUES ('shop-api', 'daily', ?, ?, ?, 0, ?, ?, ?)",
                (day, requests, errors, requests * 0.8, requests * 3e-7, day),
            )
    database.close()
    fleet.close()
    return "shop-api"


@pytest.mark.timeout(240)
def test_every_page_renders_clean_at_desktop_and_phone_width(
    browser: Browser, dashboard: DevServer
) -> None:
    swarm_id = new_swarm(dashboard)
    task = httpx.post(
        f"{dashboard.url}/api/task", headers=ADMIN, json={"type": "render", "payload": {}}
    )
    trigger = httpx.post(f"{dashboard.url}/trigger", headers=ADMIN, json={"job": "every5min"})
    ids = {"swarm": swarm_id, "task": task.json()["id"], "run": trigger.json()["runs"][0]["id"],
           "worker": a_fleet(dashboard)}  # fmt: skip
    for name, options in (("desktop", {"viewport": {"width": 1280, "height": 900}}),
                          ("phone", {"viewport": PHONE, "is_mobile": True})):  # fmt: skip
        watched = sign_in(browser, dashboard, **options)
        page = watched.page
        for template in PAGES:
            page.goto(dashboard.url + template.format(**ids))
            expect(page.locator("main h1")).to_be_visible()
            expect(page.locator("main")).not_to_contain_text("Something went wrong")
            page.wait_for_load_state("networkidle")
            overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 1, f"{template} is {overflow}px too wide at {name}"
            if name == "desktop" or template in ("/", "/swarms/{swarm}"):
                label = template.strip("/").replace("/", "-").replace("{", "").replace("}", "")
                shot(page, f"{label or 'overview'}{'-phone' if name == 'phone' else ''}")
        watched.expect_clean()


@pytest.mark.timeout(60)
def test_docs_list_the_api_operations_offline(browser: Browser, dashboard: DevServer) -> None:
    watched = watch(browser.new_context())
    page = watched.page
    page.goto(f"{dashboard.url}/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    spec = httpx.get(f"{dashboard.url}/openapi.json").json()
    operations = sum(len(methods) for methods in spec["paths"].values())
    assert len(paths) == operations >= 30
    assert "/api/swarms/{swarm_id}/invites" in {p.replace("\u200b", "") for p in paths}
    shot(page, "docs")
    watched.expect_clean()


@pytest.mark.timeout(90)
def test_budget_first_load_and_an_idle_dashboard(browser: Browser, dashboard: DevServer) -> None:
    swarm_id = new_swarm(dashboard)
    watched = watch(session_context(browser, dashboard))
    page = watched.page
    page.goto(f"{dashboard.url}/")
    expect(page.locator("#overview .card").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    shipped = [
        r.url for r in watched.responses if r.request.resource_type in ("script", "stylesheet")
    ]
    assert any(u.endswith("/js/views/overview.js") for u in shipped), shipped
    assert not any(u.endswith("/js/chart.js") for u in shipped), (
        "the fleet's charts load there only"
    )
    _, compressed = first_load_bytes(dashboard, shipped)
    assert compressed <= 150 * 1024, f"overview ships {compressed} bytes of compressed JS+CSS"
    # An idle swarm page: its watcher socket is open, and nothing is billed while it idles.
    page.goto(f"{dashboard.url}/swarms/{swarm_id}")
    expect(page.locator("#live")).to_have_text("live")
    time.sleep(1.0)  # let the page's own loading requests finish before counting
    dashboard.reset_meter()
    time.sleep(6.0)  # measuring an interval of idleness is the point here
    totals = dashboard.meter()["totals"]
    assert totals.get("worker_requests", 0) == 0, totals
    assert totals.get("do_requests", 0) == 0, totals
    assert totals.get("do_alarms", 0) == 0, totals
    assert totals.get("do_ws_messages", 0) == 0, totals
    watched.expect_clean()
