"""One warm headless Chromium for synthetic browser checks, driven through Playwright.

`BrowserEngine` launches Debian's Chromium by path (`$APIARY_CHROMIUM`, else `chromium` on
PATH, else /usr/bin/chromium; never a Playwright-downloaded build) on first use and keeps it.
Every operation gets a fresh browser context, so cookies and storage never leak between runs.
At most `max_concurrency` operations hold a context at once; the others queue for up to their
timeout, then fail with `EngineBusy`. Every operation is bounded by its timeout: a page that
never answers, crashes or drops the connection gives a `NavigationError` (for `run_steps`, a
failed step), never a hang. Only http(s) URLs are opened, so a check cannot read the runner's
own files through file:// URLs, and every connection the browser makes goes through an egress
proxy (`apiary_local.egress_proxy`) that holds it to the egress policy: a check cannot make the
browser show it a private or loopback page (unless `EGRESS_ALLOW` names it), not even through a
redirect, an iframe or a WebSocket. Chromium runs in its sandbox where it can (not as root).

    snapshot(url, viewport=, full_page=, timeout_ms=) -> {"content": html, "screenshot": b64 PNG}
    scrape(url, selectors, viewport=, timeout_ms=) -> [{"selector", "results": [{"text", "html",
        "attributes": [{"name", "value"}], "height", "width", "top", "left"}]}]  (Cloudflare's)
    screenshot(url, viewport=, full_page=, timeout_ms=) -> PNG bytes
    content(url) -> the rendered HTML; links(url, visible_only=, internal_only=) -> [href]
    markdown(url) -> the rendered page as Markdown; pdf(url, landscape=, print_background=)
        -> PDF bytes        (each also takes viewport= and timeout_ms=; `url` may instead be
        `html=`, a page given as text)
    run_steps(steps, cookies=, timeout_ms=) -> the step runner's result; the contract is in
        `apiary_local.browser_runner`, which serves it as `POST /run`
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator
from typing import Any, TypedDict

from bs4 import BeautifulSoup
from markdownify import markdownify
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from apiary_local.browser_seal import Seal
from apiary_local.browser_steps import (
    CLEANUP_S,
    InvalidRequest,
    StepRun,
    b64,
    check_timeout,
    check_url,
    first_line,
    parse_cookies,
    parse_steps,
)
from apiary_local.egress_proxy import EgressProxy
from egress import EgressPolicy, explain, refusal
from logs import event, get_logger

__all__ = ["BrowserEngine", "BrowserError", "EngineBusy", "InvalidRequest", "NavigationError"]

DEFAULT_TIMEOUT_MS = 30_000


class _Launch(TypedDict):  # what both launches share
    executable_path: str
    headless: bool
    timeout: float


log = get_logger("browser")


class BrowserError(Exception):
    """The browser could not do the work (launch failed, the browser crashed...)."""


class NavigationError(BrowserError):
    """The page could not be loaded: a network error, a dropped connection, or a timeout."""


class EngineBusy(BrowserError):
    """Every slot stayed taken for the whole timeout."""


def chromium_args() -> list[str]:
    """Containers with a small /dev/shm; and, for a local https site with its own certificate
    (`apiary dev --tls-cert`), `$APIARY_BROWSER_TRUST_SPKI`: the base64 SHA-256 of the public
    keys whose certificate errors Chromium may ignore, that key and no other."""
    args = ["--disable-dev-shm-usage"]
    trusted = os.environ.get("APIARY_BROWSER_TRUST_SPKI", "").strip()
    if trusted:
        args.append(f"--ignore-certificate-errors-spki-list={trusted}")
    return args


def chromium_path() -> str:
    return os.environ.get("APIARY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


class BrowserEngine:
    def __init__(
        self,
        *,
        max_concurrency: int = 4,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        executable: str | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.timeout_ms = timeout_ms
        self.executable = executable
        self.egress = egress or EgressPolicy()
        self.proxy = EgressProxy(self.egress)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._launching = asyncio.Lock()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        async with self._launching:
            await self._shutdown()

    async def snapshot(
        self,
        url: str,
        *,
        viewport: dict[str, int] | None = None,
        full_page: bool = False,
        timeout_ms: int | None = None,
    ) -> dict[str, str]:
        timeout_ms = self._timeout(timeout_ms)
        async with self._page(timeout_ms, viewport=viewport) as (_, page):
            await self._open(page, url, timeout_ms)
            content = await page.content()
            png = await page.screenshot(full_page=full_page)
        return {"content": content, "screenshot": b64(png)}

    async def scrape(
        self,
        url: str,
        selectors: list[str],
        *,
        viewport: dict[str, int] | None = None,
        timeout_ms: int | None = None,
    ) -> list[dict[str, Any]]:
        timeout_ms = self._timeout(timeout_ms)
        async with self._page(timeout_ms, viewport=viewport) as (_, page):
            await self._open(page, url, timeout_ms)
            found = []
            for selector in selectors:
                try:
                    results = await page.locator(selector).evaluate_all(_SCRAPE_JS)
                except PlaywrightError as exc:
                    raise InvalidRequest(f"selector {selector!r}: {first_line(exc)}") from exc
                found.append({"selector": selector, "results": results})
        return found

    async def screenshot(
        self,
        url: str,
        *,
        viewport: dict[str, int] | None = None,
        full_page: bool = False,
        timeout_ms: int | None = None,
    ) -> bytes:
        timeout_ms = self._timeout(timeout_ms)
        async with self._page(timeout_ms, viewport=viewport) as (_, page):
            await self._open(page, url, timeout_ms)
            return await page.screenshot(full_page=full_page)

    async def content(self, url: str | None, **options: Any) -> str:
        async with self._loaded(url, **options) as page:
            return await page.content()

    async def markdown(self, url: str | None, **options: Any) -> str:
        async with self._loaded(url, **options) as page:
            html = await page.content()
        return html_to_markdown(html)

    async def links(
        self,
        url: str | None,
        *,
        visible_only: bool = False,
        internal_only: bool = False,
        **options: Any,
    ) -> list[str]:
        async with self._loaded(url, **options) as page:
            found: list[str] = await page.evaluate(_LINKS_JS, [visible_only, internal_only])
        return found

    async def pdf(
        self,
        url: str | None,
        *,
        landscape: bool = False,
        print_background: bool = False,
        **options: Any,
    ) -> bytes:
        async with self._loaded(url, **options) as page:
            return await page.pdf(landscape=landscape, print_background=print_background)

    @contextlib.asynccontextmanager
    async def _loaded(
        self,
        url: str | None,
        *,
        html: str | None = None,
        viewport: dict[str, int] | None = None,
        timeout_ms: int | None = None,
    ) -> AsyncIterator[Page]:
        """A page holding `url` (or `html`), loaded, in a fresh context."""
        timeout_ms = self._timeout(timeout_ms)
        async with self._page(timeout_ms, viewport=viewport) as (_, page):
            if html is not None:
                try:
                    await page.set_content(html, wait_until="load", timeout=timeout_ms)
                except PlaywrightError as exc:
                    raise NavigationError(first_line(exc)) from exc
            else:
                await self._open(page, str(url), timeout_ms)
            yield page

    async def run_steps(
        self,
        steps: list[dict[str, Any]],
        *,
        cookies: list[dict[str, Any]] | None = None,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        secret_screenshots: bool = False,
    ) -> dict[str, Any]:
        """Runs `steps` in one fresh context, stopping at the first failure; raises
        `InvalidRequest` before touching the browser if the steps or cookies are malformed.
        Once a secret was typed (a fill with `secret_origins`) the page is sealed to those
        origins, and no screenshot is taken unless `secret_screenshots`."""
        parsed = parse_steps(steps)
        jar = parse_cookies(cookies)
        timeout_ms = check_timeout(timeout_ms)
        for step in parsed:
            if step["action"] == "goto":
                self._check_egress(step["url"], InvalidRequest)
        async with self._page(timeout_ms) as (context, page):
            try:
                await context.add_cookies(jar)  # type: ignore[arg-type]  # SetCookieParam is private; jar is checked
            except PlaywrightError as exc:
                raise InvalidRequest(f"cookies: {first_line(exc)}") from exc
            run = StepRun(context, page, timeout_ms, Seal(context), secret_screenshots)
            return await run.execute(parsed)

    def _check_egress(self, url: str, error: type[Exception]) -> None:
        """Name the refusal of a URL a check gives (the proxy refuses it anyway, less clearly)."""
        reason = refusal(url, self.egress)
        if reason is not None:
            raise error(f"{url}: {explain(reason)}")

    def _timeout(self, timeout_ms: int | None) -> int:
        return check_timeout(self.timeout_ms if timeout_ms is None else timeout_ms)

    @contextlib.asynccontextmanager
    async def _page(
        self, timeout_ms: int, **options: Any
    ) -> AsyncIterator[tuple[BrowserContext, Page]]:
        """A page in a new context, holding a slot; the body is bounded by the timeout plus
        a cleanup allowance (the step runner spends that on its report)."""
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                await self._slots.acquire()
        except TimeoutError:
            raise EngineBusy(f"no browser slot free within {timeout_ms} ms") from None
        try:
            browser = await self._ensure_browser()
            options = {k: v for k, v in options.items() if v is not None}
            try:
                context = await browser.new_context(**options)
            except PlaywrightError as exc:
                raise BrowserError(f"could not open a browser context: {first_line(exc)}") from exc
            try:
                context.set_default_timeout(timeout_ms)
                context.set_default_navigation_timeout(timeout_ms)
                async with asyncio.timeout(timeout_ms / 1000 + 3 * CLEANUP_S):
                    yield context, await context.new_page()
            except TimeoutError:
                raise NavigationError(f"timed out after {timeout_ms} ms") from None
            except PlaywrightError as exc:
                raise BrowserError(first_line(exc)) from exc
            finally:
                with contextlib.suppress(PlaywrightError, TimeoutError):
                    async with asyncio.timeout(CLEANUP_S):
                        await context.close()
        finally:
            self._slots.release()

    async def _open(self, page: Page, url: str, timeout_ms: int) -> None:
        check_url(url)
        self._check_egress(url, NavigationError)
        try:
            await page.goto(url, wait_until="load", timeout=timeout_ms)
        except PlaywrightError as exc:
            raise NavigationError(first_line(exc)) from exc

    async def _ensure_browser(self) -> Browser:
        async with self._launching:
            if self._closed:
                raise BrowserError("the browser engine is closed")
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            await self._shutdown()  # a crashed browser: start afresh
            try:
                proxy = await self.proxy.start()
                self._playwright = await async_playwright().start()
                self._browser = await self._launch(self._playwright, proxy)
            except (PlaywrightError, OSError) as exc:
                await self._shutdown()
                raise BrowserError(f"could not launch Chromium: {first_line(exc)}") from exc
            return self._browser

    async def _launch(self, playwright: Playwright, proxy: str) -> Browser:
        args = [
            *chromium_args(),
            f"--proxy-server={proxy}",
            "--proxy-bypass-list=<-loopback>",  # loopback goes through the proxy too
        ]
        launch: _Launch = {
            "executable_path": self.executable or chromium_path(),
            "headless": True,
            "timeout": DEFAULT_TIMEOUT_MS,
        }
        if os.geteuid() != 0:
            try:
                return await playwright.chromium.launch(args=args, chromium_sandbox=True, **launch)
            except PlaywrightError as exc:  # the kernel refuses the sandbox's namespaces
                why = first_line(exc)
        else:
            why = "running as root"
        event(log, logging.WARNING, "Chromium runs without its sandbox", reason=why)
        return await playwright.chromium.launch(args=[*args, "--no-sandbox"], **launch)

    async def _shutdown(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        await self.proxy.close()
        with contextlib.suppress(PlaywrightError, TimeoutError):
            if browser is not None:
                async with asyncio.timeout(CLEANUP_S):
                    await browser.close()
        with contextlib.suppress(PlaywrightError, TimeoutError):
            if playwright is not None:
                async with asyncio.timeout(CLEANUP_S):
                    await playwright.stop()


def html_to_markdown(html: str) -> str:
    """Markdown of a rendered page: its scripts, styles and head left out (markdownify)."""
    soup = BeautifulSoup(html, "html.parser")
    for element in soup(["script", "style", "noscript", "template", "head"]):
        element.decompose()
    text = markdownify(str(soup), heading_style="ATX", bullets="-")
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


# [visibleLinksOnly, excludeExternalLinks] -> the absolute hrefs of the page's links, once each
_LINKS_JS = """([visibleOnly, internalOnly]) => {
  const seen = new Set();
  for (const a of document.querySelectorAll("a[href]")) {
    let url;
    try {
      url = new URL(a.getAttribute("href"), document.baseURI);
    } catch {
      continue;  // a relative link in a page given as html has no base to resolve against
    }
    if (!["http:", "https:"].includes(url.protocol)) continue;
    if (internalOnly && url.hostname !== location.hostname) continue;
    if (visibleOnly) {
      const box = a.getBoundingClientRect();
      const style = getComputedStyle(a);
      const hidden = style.visibility === "hidden" || style.display === "none";
      if (!box.width || !box.height || hidden) continue;
    }
    seen.add(url.href);
  }
  return [...seen];
}"""

_SCRAPE_JS = """els => els.map(e => {
  const r = e.getBoundingClientRect();
  return {
    text: e.innerText ?? e.textContent ?? "",
    html: e.innerHTML,
    attributes: Array.from(e.attributes, a => ({name: a.name, value: a.value})),
    height: r.height, width: r.width, top: r.top, left: r.left,
  };
})"""
