"""Run one browser check: observe through the runners, then judge with `browser.checks`.

- smoke: one page load. With a step runner, one run (`goto`, `content`, `screenshot`, a
  `count` per required selector) gives the status, content, screenshot, selectors, console
  errors and load time of that load. Without one, the REST `snapshot` (content, screenshot,
  plus `scrape` for selectors) and a direct fetch for the status; the REST API reports no
  console, so console errors are not judged.
- auth, user_journey: the step runner.
- security_session: a direct fetch for the headers, the step runner for the session cookie
  (flags, rotation at login, refusal after logout).

Credentials come from the `BROWSER_CREDENTIALS` secret at run time and are bound to their
origins (`browser.credentials`): a plan that would type one elsewhere is refused before the
browser starts, and the step runner blocks navigation away from those origins once one was
typed. The step runner never echoes a filled value, and every form of every credential is
scrubbed from what the run stores.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

from browser import checks
from browser.clients import BrowserError, Busy, Rendering, StepRunner
from browser.credentials import Credential, CredentialError, lookup, parse, plan_refusal
from logs import redact_value, scrub
from ports import HttpError
from services import Services

STEP_TIMEOUT_MS = 30_000
EXPECT_TIMEOUT_MS = 5_000  # how long a page may take to show what a login should bring
FETCH_TIMEOUT_S = 30.0


@dataclass
class Outcome:
    status: str  # passed | failed | error
    assertions: list[dict[str, Any]] = field(default_factory=list)
    screenshot: bytes | None = None
    error: str | None = None


@dataclass
class Plan:
    """What a check may do with the stored credentials, for one run."""

    credentials: dict[str, Credential]
    screenshots_after_secrets: bool = False

    @classmethod
    def of(cls, services: Services, options: dict[str, Any]) -> Plan:
        try:
            found = parse(services.config.get("BROWSER_CREDENTIALS"))
        except CredentialError as exc:
            raise BrowserError(str(exc)) from None
        return cls(found, bool(options.get("screenshots_after_secrets")))

    def resolve(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Steps for the runner, once the plan passed: `secret: "name.field"` becomes the
        value (here and nowhere else) and the origins the runner keeps the page on after."""
        try:
            refused = plan_refusal(
                steps, self.credentials, screenshots_after_secrets=self.screenshots_after_secrets
            )
        except CredentialError as exc:
            raise BrowserError(str(exc)) from None
        if refused is not None:
            raise BrowserError(f"refused before the browser started: {refused}")
        resolved = []
        for step in steps:
            step = {k: v for k, v in step.items() if v is not None}
            if step["action"] != "screenshot":
                step.pop("full_page", None)
            secret = step.pop("secret", None)
            if secret is not None:
                name, _, part = secret.partition(".")
                credential = lookup(self.credentials, name)
                step["value"] = getattr(credential, part or "password")
                step["secret_origins"] = credential.origins
            resolved.append(step)
        return resolved

    def runner_options(self) -> dict[str, Any]:
        return {"timeout_ms": STEP_TIMEOUT_MS, "secret_screenshots": self.screenshots_after_secrets}

    def scrubbed(self, outcome: Outcome) -> Outcome:
        forms = set().union(*(c.forms() for c in self.credentials.values()))
        outcome.assertions = redact_value(outcome.assertions, forms)
        outcome.error = None if outcome.error is None else scrub(outcome.error, forms)
        return outcome


def _last_screenshot(run: dict[str, Any]) -> bytes | None:
    shots = [s["screenshot"] for s in run.get("steps", []) if s.get("screenshot")]
    return base64.b64decode(shots[-1]) if shots else None


async def _fetch(services: Services, url: str) -> tuple[int, dict[str, str], int]:
    started = time.monotonic()
    try:
        response = await services.http.request("GET", url, timeout_s=FETCH_TIMEOUT_S)
    except HttpError as exc:
        raise BrowserError(f"fetch {url}: {exc.kind}: {exc}") from exc
    return response.status, dict(response.headers), int((time.monotonic() - started) * 1000)


def _login_steps(login: dict[str, Any], url: str) -> list[dict[str, Any]]:
    """Open the login page, type the named credential, submit (the plan checks the origin)."""
    name = login["credentials"]
    return [
        {"action": "goto", "url": login.get("login_url") or url},
        {"action": "fill", "selector": login["username_selector"], "secret": f"{name}.username"},
        {"action": "fill", "selector": login["password_selector"], "secret": f"{name}.password"},
        {"action": "click", "selector": login["submit_selector"]},
    ]


def _smoke_steps(url: str, selectors: list[str]) -> list[dict[str, Any]]:
    return [
        {"action": "goto", "url": url},
        {"action": "content"},
        {"action": "screenshot"},
        *({"action": "count", "selector": s} for s in selectors),
    ]


async def smoke(services: Services, url: str, options: dict[str, Any], plan: Plan) -> Outcome:
    """One page load. The step runner's, when there is one: the REST API reports neither
    console errors nor the page's status, so going through it would need a second load."""
    runner, selectors = StepRunner(services), options.get("required_selectors", [])
    if not runner.configured:
        return await _smoke_over_rest(services, url, options)
    run = await runner.run(_smoke_steps(url, selectors), timeout_ms=STEP_TIMEOUT_MS)
    failed = next((s for s in run["steps"] if not s["ok"]), None)
    if failed is not None:  # as the REST API's 422: the page could not be loaded and read
        raise BrowserError(f"{url}: {failed.get('error') or failed['action'] + ' failed'}")
    _, content, shot, *counts = run["steps"]
    found_checks = checks.smoke(
        options,
        status=run.get("status"),
        html=content["actual"] or "",
        found={s: count["actual"] for s, count in zip(selectors, counts, strict=True)},
        load_ms=run.get("load_ms"),
        console_errors=run.get("console_errors", []),
    )
    return Outcome(checks.verdict(found_checks), found_checks, base64.b64decode(shot["screenshot"]))


async def _smoke_over_rest(services: Services, url: str, options: dict[str, Any]) -> Outcome:
    rendering = Rendering(services)
    status, _, fetch_ms = await _fetch(services, url)
    html, screenshot = await rendering.snapshot(url)
    found = await rendering.scrape(url, options.get("required_selectors", []))
    found_checks = checks.smoke(
        options, status=status, html=html, found=found, load_ms=fetch_ms, console_errors=None
    )
    return Outcome(checks.verdict(found_checks), found_checks, screenshot)


async def auth(services: Services, url: str, options: dict[str, Any], plan: Plan) -> Outcome:
    planned = _login_steps(options, url)
    if options.get("expect_selector"):
        planned.append(
            {
                "action": "wait_for",
                "selector": options["expect_selector"],
                "timeout_ms": EXPECT_TIMEOUT_MS,
            }
        )
    if plan.screenshots_after_secrets:
        planned.append({"action": "screenshot"})
    run = await StepRunner(services).run(plan.resolve(planned), **plan.runner_options())
    found = checks.auth(options, run, login_steps=4)
    return Outcome(checks.verdict(found), found, _last_screenshot(run))


async def journey(services: Services, url: str, options: dict[str, Any], plan: Plan) -> Outcome:
    planned = options["steps"]
    run = await StepRunner(services).run(plan.resolve(planned), **plan.runner_options())
    found = checks.steps(run, planned)
    return Outcome(checks.verdict(found), found, _last_screenshot(run))


def _declared(
    cookie: dict[str, Any] | None, headers: dict[str, str], name: str
) -> dict[str, Any] | None:
    """The cookie with SameSite as the site declared it, when the first page set it.

    Chromium reports a cookie set without SameSite as Lax (its default); the check is about
    what the site asks for, so the Set-Cookie attribute wins when we saw it.
    """
    if cookie is None:
        return None
    for line in headers.get("set-cookie", "").split("\n"):
        if line.strip().startswith(f"{name}=") and "samesite" not in line.lower():
            return {**cookie, "sameSite": "not set"}
    return cookie


def _value(cookies: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((c for c in cookies if c.get("name") == name), None)


async def security(services: Services, url: str, options: dict[str, Any], plan: Plan) -> Outcome:
    runner, name = StepRunner(services), options["session_cookie"]
    _, headers, _ = await _fetch(services, url)
    found = checks.headers(headers)
    login = options.get("login")
    if login is None:
        run = await runner.run([{"action": "goto", "url": url}], timeout_ms=STEP_TIMEOUT_MS)
        cookie = _declared(_value(run.get("cookies", []), name), run.get("headers", {}), name)
        found += checks.cookie_flags(cookie, name)
        return Outcome(checks.verdict(found), found, _last_screenshot(run))
    planned = [
        {"action": "goto", "url": login.get("login_url") or url},
        {"action": "cookies"},
        *_login_steps(login, url)[1:],
        {
            "action": "wait_for",
            "selector": options["logged_in_selector"],
            "timeout_ms": EXPECT_TIMEOUT_MS,
        },
        {"action": "cookies"},
        *([{"action": "screenshot"}] if plan.screenshots_after_secrets else []),
        {"action": "goto", "url": options["logout_url"]},
    ]
    if options.get("logged_out_selector"):
        planned.append(
            {
                "action": "wait_for",
                "selector": options["logged_out_selector"],
                "timeout_ms": EXPECT_TIMEOUT_MS,
            }
        )
    run = await runner.run(plan.resolve(planned), **plan.runner_options())
    jars = [s.get("cookies") or [] for s in run["steps"] if s["action"] == "cookies"]
    before = _value(jars[0], name) if jars else None
    after = _value(jars[1], name) if len(jars) > 1 else None
    logged_in = len(jars) > 1
    reused_works = False
    if after is not None:  # the old session, replayed after logout, must be refused
        replay = await runner.run(
            [
                {"action": "goto", "url": options["protected_url"]},
                {"action": "wait_for", "selector": options["logged_in_selector"]},
            ],
            cookies=[{"name": name, "value": after["value"], "url": options["protected_url"]}],
            timeout_ms=2_000,
        )
        reused_works = bool(replay.get("ok"))
    found += checks.cookie_flags(_declared(after, run.get("headers", {}), name), name)
    found += checks.session_lifecycle(
        name,
        None if before is None else before["value"],
        None if after is None else after["value"],
        logged_in,
        reused_works,
    )
    return Outcome(checks.verdict(found), found, _last_screenshot(run))


CHECKS = {"smoke": smoke, "auth": auth, "user_journey": journey, "security_session": security}


async def execute(services: Services, test_type: str, url: str, options: dict[str, Any]) -> Outcome:
    """Never raises for the browser's failures: those are an `error` outcome. What it returns
    holds no form of any stored credential."""
    try:
        plan = Plan.of(services, options)
    except BrowserError as exc:
        return Outcome("error", error=str(exc))
    try:
        outcome = await CHECKS[test_type](services, url, options, plan)
    except Busy:
        raise  # not a result: the run waits for its turn
    except BrowserError as exc:
        outcome = Outcome("error", error=str(exc))
    return plan.scrubbed(outcome)
