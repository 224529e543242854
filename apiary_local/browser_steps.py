"""The step runner behind `BrowserEngine.run_steps` (served as `POST /run` by
`apiary_local.browser_runner`, where the request and report are described).

`parse_steps`/`parse_cookies` check a request before any browser work, raising
`InvalidRequest`; `StepRun` executes parsed steps on one page, stopping at the first failure,
and builds the report. Expectations (`expect_text`, `expect_url`) retry for up to
`EXPECT_TIMEOUT_MS` (or the step's own `timeout_ms`) because a click's navigation completes
after the click returns; other steps may use whatever remains of the run's `timeout_ms`.
Every text of the report is scrubbed of `fill` values, which may be passwords; a fill that
carries `secret_origins` is a stored credential: every encoded form of it is scrubbed, the page
is sealed to those origins from then on, and no screenshot is taken (not even of a failure)
unless the run allows `secret_screenshots`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, ConsoleMessage, Page
from playwright.async_api import Error as PlaywrightError

from apiary_local.browser_seal import Seal
from logs import encoded_forms

MAX_TIMEOUT_MS = 120_000
# Reading a page after a failure must not become the new hang.
CLEANUP_S = 5.0


class InvalidRequest(ValueError):
    """The request itself is malformed (a 400, not a failed check)."""


def check_url(url: Any) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest(f"url must be an absolute http(s) URL, not {url!r:.200}")
    return cast(str, url)  # parts is None unless it is a str


def check_timeout(timeout_ms: Any, name: str = "timeout_ms") -> int:
    if type(timeout_ms) is not int or not 1 <= timeout_ms <= MAX_TIMEOUT_MS:
        raise InvalidRequest(f"{name} must be an integer from 1 to {MAX_TIMEOUT_MS}")
    return timeout_ms


def first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.strip().splitlines()[0][:500]


# action -> {field: (type, required)}; any step may also carry "timeout_ms".
_STEPS: dict[str, dict[str, tuple[type, bool]]] = {
    "goto": {"url": (str, True)},
    "click": {"selector": (str, True)},
    "fill": {"selector": (str, True), "value": (str, True), "secret_origins": (list, False)},
    "press": {"key": (str, True), "selector": (str, False)},
    "wait_for": {"selector": (str, True), "state": (str, False)},
    "expect_text": {"text": (str, True), "selector": (str, False)},
    "expect_url": {"contains": (str, True)},
    "screenshot": {"full_page": (bool, False)},
    "cookies": {},
    "content": {},
    "count": {"selector": (str, True)},
}
STATES = ("visible", "attached", "hidden", "detached")
MAX_STEPS = 100
# Expectations retry this long by default: long enough to ride out the navigation a click set
# off, short enough that a failing check reports promptly.
EXPECT_TIMEOUT_MS = 5_000
EXCERPT_CHARS = 300
COOKIE_KEYS = ("name", "value", "domain", "path", "expires", "httpOnly", "secure", "sameSite")
REDACTED = "[redacted]"


def parse_steps(steps: Any) -> list[dict[str, Any]]:
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise InvalidRequest(f"steps must be a list of 1 to {MAX_STEPS} steps")
    for i, step in enumerate(steps):
        where = f"steps[{i}]"
        action = step.get("action") if isinstance(step, dict) else None
        fields = _STEPS.get(action) if isinstance(action, str) else None
        if fields is None:
            raise InvalidRequest(f"{where}: action must be one of {', '.join(_STEPS)}")
        unknown = set(step) - set(fields) - {"action", "timeout_ms"}
        if unknown:
            raise InvalidRequest(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        for name, (kind, required) in fields.items():
            if name not in step:
                if required:
                    raise InvalidRequest(f"{where}: {action} needs {name!r}")
            elif type(step[name]) is not kind or (
                kind is str and name != "value" and not step[name]
            ):
                expected = {str: "a non-empty string", bool: "a boolean", list: "a list"}[kind]
                expected = "a string" if name == "value" else expected
                raise InvalidRequest(f"{where}.{name} must be {expected}")
        origins = step.get("secret_origins", [])
        if not all(isinstance(o, str) for o in origins) or (
            "secret_origins" in step and not origins
        ):
            raise InvalidRequest(f"{where}.secret_origins must be a non-empty list of origins")
        if "timeout_ms" in step:
            check_timeout(step["timeout_ms"], f"{where}.timeout_ms")
        if action == "goto":
            check_url(step["url"])
        if step.get("state", "visible") not in STATES:
            raise InvalidRequest(f"{where}.state must be one of {', '.join(STATES)}")
    return [dict(step) for step in steps]


def parse_cookies(cookies: Any) -> list[dict[str, str]]:
    if cookies is None:
        return []
    if not isinstance(cookies, list):
        raise InvalidRequest("cookies must be a list")
    for i, cookie in enumerate(cookies):
        if (
            not isinstance(cookie, dict)
            or set(cookie) != {"name", "value", "url"}
            or not all(isinstance(v, str) for v in cookie.values())
            or not cookie["name"]
        ):
            raise InvalidRequest(f"cookies[{i}] must be {{name, value, url}}, all strings")
        check_url(cookie["url"])
    return [dict(cookie) for cookie in cookies]


class _StepFailed(Exception):
    def __init__(self, message: str, actual: str | None = None) -> None:
        super().__init__(message)
        self.actual = actual


class StepRun:
    """One `run_steps` call: runs the steps on `page` and gathers what the report needs."""

    def __init__(
        self,
        context: BrowserContext,
        page: Page,
        timeout_ms: int,
        seal: Seal,
        secret_screenshots: bool = False,
    ) -> None:
        self.context, self.page = context, page
        self.seal, self.secret_screenshots = seal, secret_screenshots
        self.started = time.monotonic()
        self.deadline = self.started + timeout_ms / 1000
        self.navigated = False
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.load_ms: int | None = None
        self.console_errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _on_page_error(self, error: PlaywrightError) -> None:
        self.console_errors.append(f"{error.name}: {error.message}" if error.name else str(error))

    async def execute(self, steps: list[dict[str, Any]]) -> dict[str, Any]:
        reports = []
        for index, step in enumerate(steps):
            reports.append(await self._step(index, step))
            if not reports[-1]["ok"]:
                break
        title, cookies = "", []
        with contextlib.suppress(PlaywrightError, TimeoutError):
            async with asyncio.timeout(CLEANUP_S):
                title = await self.page.title()
                cookies = await self._cookies()
        result = {
            "ok": len(reports) == len(steps) and reports[-1]["ok"],
            "steps": reports,
            "status": self.status,
            "headers": self.headers,
            "final_url": self.page.url,
            "title": title,
            "cookies": cookies,
            "console_errors": self.console_errors,
            "load_ms": self.load_ms,
            "duration_ms": _ms(time.monotonic() - self.started),
        }
        # A fill value may be a password: it must not come back in any text of the report.
        # Longest first, so a value containing a shorter one is still scrubbed whole.
        secrets: set[str] = set()
        for step in steps:
            if step["action"] == "fill" and step["value"]:
                stored = "secret_origins" in step
                secrets |= encoded_forms(step["value"]) if stored else {step["value"]}
        return cast(dict[str, Any], _redact(result, sorted(secrets, key=len, reverse=True)))

    @property
    def _may_screenshot(self) -> bool:
        return not self.seal.closed or self.secret_screenshots

    async def _step(self, index: int, step: dict[str, Any]) -> dict[str, Any]:
        action = step["action"]
        report: dict[str, Any] = {"index": index, "action": action, "ok": True, "duration_ms": 0}
        report |= {"error": None, "actual": None, "screenshot": None, "cookies": None}
        started = time.monotonic()
        remaining = _ms(self.deadline - started)
        default = EXPECT_TIMEOUT_MS if action.startswith("expect_") else remaining
        timeout_ms = min(step.get("timeout_ms", default), remaining)
        try:
            if timeout_ms <= 0:
                raise _StepFailed("the run's timeout_ms ran out before this step")
            # Playwright honours timeout_ms itself; this only catches a call that would not.
            async with asyncio.timeout(timeout_ms / 1000 + 1):
                report |= await getattr(self, f"_{action}")(step, timeout_ms)
        except _StepFailed as exc:
            report |= {"ok": False, "error": str(exc), "actual": exc.actual}
        except PlaywrightError as exc:
            report |= {"ok": False, "error": first_line(exc)}
        except TimeoutError:
            report |= {"ok": False, "error": f"timed out after {timeout_ms} ms"}
        if report["ok"] and self.seal.violation is not None:
            report |= {"ok": False, "error": self.seal.violation}
        report["duration_ms"] = _ms(time.monotonic() - started)
        if not report["ok"] and self._may_screenshot:
            report["screenshot"] = await self._failure_screenshot()
        return report

    async def _failure_screenshot(self) -> str | None:
        """What the page showed when the step failed. A page still settling (an error page
        replacing a dropped load) can refuse the first try, so it gets a few within CLEANUP_S."""
        deadline = time.monotonic() + CLEANUP_S
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(PlaywrightError, TimeoutError):
                async with asyncio.timeout(left):
                    return b64(await self.page.screenshot())
            await asyncio.sleep(0.2)
        return None

    async def _goto(self, step: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
        first, self.navigated = not self.navigated, True
        started = time.monotonic()
        response = await self.page.goto(step["url"], wait_until="load", timeout=timeout_ms)
        if first:  # the check is about the page it was sent to, not where the journey went
            self.load_ms = _ms(time.monotonic() - started)
            if response is not None:
                self.status = response.status
                self.headers = await response.all_headers()
        return {"actual": self.page.url}

    async def _click(self, step: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
        await self.page.locator(step["selector"]).first.click(timeout=timeout_ms)
        return {}

    async def _fill(self, step: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
        if "secret_origins" in step:
            if not self.seal.allows(self.page.url) and self.seal.closed:
                raise _StepFailed("a secret may not be typed on this page")
            await self.seal.close_to(step["secret_origins"])
            if not self.seal.allows(self.page.url):
                raise _StepFailed("this page is not on the credential's origins")
        await self.page.locator(step["selector"]).first.fill(step["value"], timeout=timeout_ms)
        return {}

    async def _press(self, step: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
        if "selector" in step:
            await self.page.locator(step["selector"]).first.press(step["key"], timeout=timeout_ms)
        else:
            await self.page.keyboard.press(step["key"])
        return {}

    async def _wait_for(self, step: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
        state = step.get("state", "visible")
        await self.page.locator(step["selector"]).first.wait_for(state=state, timeout=timeout_ms)
        return {}

    async def _expect_text(self, step: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
        selector, text = step.get("selector", "body"), step["text"]
        locator = self.page.locator(selector).first
        found, actual = await _poll(
            lambda left_ms: locator.inner_text(timeout=left_ms), lambda a: text in a, timeout_ms
        )
        if actual is None:
            raise _StepFailed(f"no element matches {selector!r}")
        excerpt = _excerpt(actual, text)
        if not found:
            raise _StepFailed(f"{selector!r} does not contain {text!r}", excerpt)
        return {"actual": excerpt}

    async def _expect_url(self, step: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
        async def url(_: int) -> str:
            return self.page.url

        found, actual = await _poll(url, lambda a: step["contains"] in a, timeout_ms)
        if not found:
            raise _StepFailed(f"the URL does not contain {step['contains']!r}", actual)
        return {"actual": actual}

    async def _screenshot(self, step: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
        if not self._may_screenshot:
            raise _StepFailed("no screenshot after a secret was typed (not allowed for this run)")
        png = await self.page.screenshot(full_page=step.get("full_page", False), timeout=timeout_ms)
        return {"screenshot": b64(png)}

    async def _content(self, step: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
        return {"actual": await self.page.content()}

    async def _count(self, step: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
        """How many elements match now: no waiting, a smoke check reads the loaded page."""
        return {"actual": await self.page.locator(step["selector"]).count()}

    async def _cookies(self, step: dict[str, Any] | None = None, _: int = 0) -> Any:
        cookies = [{k: c.get(k) for k in COOKIE_KEYS} for c in await self.context.cookies()]
        return cookies if step is None else {"cookies": cookies}


async def _poll(
    probe: Callable[[int], Awaitable[str]], accept: Callable[[str], bool], timeout_ms: int
) -> tuple[bool, str | None]:
    """Probes until `accept`s or the timeout; probing errors (a navigation swapping the
    document, an element not there yet) are retried, not failures."""
    deadline = time.monotonic() + timeout_ms / 1000
    actual = None
    while True:
        with contextlib.suppress(PlaywrightError):
            actual = await probe(max(_ms(deadline - time.monotonic()), 1))
            if accept(actual):
                return True, actual
        if time.monotonic() >= deadline:
            return False, actual
        await asyncio.sleep(0.1)


def _excerpt(text: str, around: str) -> str:
    text = " ".join(text.split())
    at = text.find(" ".join(around.split()))
    start = max(0, min(at - EXCERPT_CHARS // 3, len(text) - EXCERPT_CHARS)) if at > 0 else 0
    return text[start : start + EXCERPT_CHARS]


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: v if k == "screenshot" else _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
    return value


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
