"""Browser checks: smoke checks per minute through apiary with a warm browser, against a bare
Playwright script doing the same page load (a fresh context, load, title, content, console
errors, screenshot) on the same Chromium, in the same run.
"""

import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from apiary_local.browser_engine import chromium_path
from tests.fixtures.site import FixtureSite
from tests.harness import (
    APIARY,
    JWT_SECRET,
    DevServer,
    admin_token,
    free_port,
    project_config,
    wait_up,
    write_dev_vars,
)

CHECKS = 40
WARMUP = 4
CONCURRENCY = 2
ADMIN = {"Authorization": f"Bearer {admin_token()}"}


async def _bare(url: str) -> float:
    """Checks per minute for a bare Playwright loop (2 at a time, one warm browser)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )

        async def check() -> None:
            context = await browser.new_context()
            page = await context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            response = await page.goto(url)
            assert response is not None
            assert response.ok
            assert await page.title()
            await page.content()
            await page.screenshot()
            await context.close()

        for _ in range(WARMUP):
            await check()
        slots = asyncio.Semaphore(CONCURRENCY)

        async def limited() -> None:
            async with slots:
                await check()

        started = time.perf_counter()
        await asyncio.gather(*(limited() for _ in range(CHECKS)))
        elapsed = time.perf_counter() - started
        await browser.close()
    return CHECKS / elapsed * 60


def _apiary(server: DevServer, url: str) -> float:
    """Checks per minute through the API: submit, then wait for every run to finish."""
    with httpx.Client(base_url=server.url, headers=ADMIN, timeout=60) as client:

        def run_all(count: int) -> float:
            started = time.perf_counter()
            ids = set()
            for _ in range(count):
                body = {"test_type": "smoke", "target_url": url}
                ids.add(client.post("/api/browser_tests", json=body).json()["test_run"]["id"])
            while True:
                page = client.get("/api/browser_tests", params={"limit": 200}).json()
                done = {r["id"] for r in page["test_runs"] if r["status"] == "passed"}
                failed = {r["id"] for r in page["test_runs"] if r["status"] in ("failed", "error")}
                assert not (failed & ids), failed & ids
                if ids <= done:
                    return time.perf_counter() - started
                time.sleep(0.05)

        run_all(WARMUP)
        return CHECKS / run_all(CHECKS) * 60


def run() -> dict:
    work = Path(tempfile.mkdtemp())
    port = free_port()
    runner = subprocess.Popen(
        [str(APIARY), "browser-runner", "--port", str(port), "--max-concurrency", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "EGRESS_ALLOW": "loopback"},
    )
    project = work / "project"
    project.mkdir()
    server = DevServer(project / "state", config=project_config(project), args=("--no-cron",))
    write_dev_vars(
        project,
        JWT_SECRET=JWT_SECRET,
        PUBLIC_URL=server.url,
        CF_API_BASE=f"{server.url}/client/v4",
        CF_ACCOUNT_ID="local",
        CF_API_TOKEN="bench-browser-token-0123456789",
        BROWSER_RUNNER_URL=f"http://127.0.0.1:{port}",
        BROWSER_MAX_CONCURRENCY=str(CONCURRENCY),
        BROWSER_REQUESTS_PER_MINUTE="100000",
        LOCAL_BROWSER_RATE_PER_MINUTE="100000",
    )
    with FixtureSite() as site:
        try:
            wait_up(f"http://127.0.0.1:{port}/health", timeout_s=30)
            server.start()
            url = f"{site.url}/"
            bare = asyncio.run(_bare(url))
            apiary = _apiary(server, url)
        finally:
            server.stop()
            runner.terminate()
            runner.wait(10)
    return {
        "benchmark": "smoke checks per minute, warm browser, 2 at a time",
        "checks": CHECKS,
        "apiary_checks_per_minute": round(apiary, 1),
        "bare_playwright_checks_per_minute": round(bare, 1),
        "apiary_over_bare": round(apiary / bare, 3),
        "note": "an apiary smoke check is one step-runner page load (status, content, "
        "selectors, screenshot, console errors, load time), as the bare script's is",
    }
