"""The dashboard's budget: the overview's first load (compressed JS+CSS, first render in
Chromium) and what an open dashboard costs while idle, measured with apiary dev's meter.

Baseline: the same page's requests with no polling at all (its load alone), so the idle figure
is what polling adds. `IDLE_S` (default 130 s) is how long the overview and a swarm page are
left open; the meter's Worker requests over it are extrapolated to an hour.
"""

import os
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import expect, sync_playwright

from apiary_local.browser_engine import chromium_args, chromium_path
from tests.dashboard_browser import first_load_bytes, session_context, watch
from tests.harness import JWT_SECRET, DevServer, admin_token, project_config, write_dev_vars

IDLE_S = float(os.environ.get("IDLE_S", "130"))
BUDGET_KB = 150
BUDGET_PER_HOUR = 120


def _idle(server: DevServer, page, path: str) -> dict:
    page.goto(f"{server.url}{path}")
    page.wait_for_load_state("networkidle")
    time.sleep(1.0)
    server.reset_meter()
    time.sleep(IDLE_S)
    totals = server.meter()["totals"]
    requests = totals.get("worker_requests", 0)
    return {
        "idle_s": IDLE_S,
        "worker_requests": requests,
        "worker_requests_per_hour": round(requests * 3600 / IDLE_S, 1),
        "do_requests": totals.get("do_requests", 0),
        "do_alarms": totals.get("do_alarms", 0),
        "do_ws_messages": totals.get("do_ws_messages", 0),
        "do_ws_auto_responses": totals.get("do_ws_auto_responses", 0),
    }


def run() -> dict:
    work = Path(tempfile.mkdtemp())
    write_dev_vars(work, JWT_SECRET=JWT_SECRET)
    server = DevServer(work / "state", config=project_config(work), args=("--no-cron",)).start()
    try:
        admin = {"Authorization": f"Bearer {admin_token()}"}
        swarm = httpx.post(f"{server.url}/api/swarms", headers=admin, json={"name": "b"}).json()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_path(), args=chromium_args()
            )
            watched = watch(session_context(browser, server))
            page = watched.page
            page.goto(f"{server.url}/")
            expect(page.locator("#overview .card").first).to_be_visible()
            render_ms = page.evaluate("() => performance.now()")
            page.wait_for_load_state("networkidle")
            timing = page.evaluate(
                "() => { const n = performance.getEntriesByType('navigation')[0]; return"
                " {dom_content_loaded_ms: n.domContentLoadedEventEnd, load_ms: n.loadEventEnd}; }"
            )
            urls = [
                r.url for r in watched.responses
                if r.request.resource_type in ("script", "stylesheet")
            ]  # fmt: skip
            raw, compressed = first_load_bytes(server, urls)
            overview = _idle(server, page, "/")
            swarm_page = _idle(server, page, f"/swarms/{swarm['id']}")
            browser.close()
    finally:
        server.stop()
    return {
        "benchmark": "dashboard budget",
        "first_load": {
            "files": len(set(urls)),
            "js_css_bytes": raw,
            "js_css_gzip_bytes": compressed,
            "budget_gzip_bytes": BUDGET_KB * 1024,
            "first_render_ms": round(render_ms, 1),
            **{k: round(v, 1) for k, v in timing.items()},
        },
        "idle_overview": overview,
        "idle_swarm_page": swarm_page,
        "budget_worker_requests_per_hour": BUDGET_PER_HOUR,
    }
