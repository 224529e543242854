"""What a browser check asserts: pure functions from what was observed to assertions.

An assertion is `{name, passed, expected, actual}`. A run passes when every assertion does.
"""

import re
from html.parser import HTMLParser
from typing import Any

type Assertion = dict[str, Any]
# What a check inspects of a page: the page is the target's to choose, and this runs on the
# event loop, so the work must stay linear and bounded (a regex over a hostile page was not).
MAX_HTML_CHARS = 1024 * 1024


def assertion(name: str, passed: bool, expected: Any, actual: Any) -> Assertion:
    return {"name": name, "passed": bool(passed), "expected": expected, "actual": actual}


class _Page(HTMLParser):
    """One linear pass: the visible text and the first <title>."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.title: list[str] | None = None
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._skip += tag in ("script", "style")
        if tag == "title" and self.title is None:
            self.title, self._in_title = [], True

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style") and self._skip > 0
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and self.title is not None:
            self.title.append(data)
        if not self._skip:
            self.parts.append(data)


def _parsed(html: str) -> _Page:
    page = _Page()
    page.feed(html[:MAX_HTML_CHARS])
    page.close()
    return page


def title_of(html: str) -> str:
    page = _parsed(html)
    return " ".join("".join(page.title or []).split())


def text_of(html: str) -> str:
    return " ".join(" ".join(_parsed(html).parts).split())


def smoke(
    options: dict[str, Any],
    *,
    status: int | None,
    html: str,
    found: dict[str, int],
    load_ms: int | None,
    console_errors: list[str] | None,
) -> list[Assertion]:
    """`found`: how many elements each required selector matched."""
    page = _parsed(html)
    text = " ".join(" ".join(page.parts).split())
    title = " ".join("".join(page.title or []).split())
    checks = [
        assertion("status is 2xx", status is not None and 200 <= status < 300, "2xx", status),
        assertion("title is not empty", bool(title), "a title", title),
    ]
    for wanted in options.get("required_text", []):
        checks.append(assertion(f"text: {wanted}", wanted in text, "present", wanted in text))
    for selector in options.get("required_selectors", []):
        count = found.get(selector, 0)
        checks.append(assertion(f"selector: {selector}", count > 0, ">= 1 match", count))
    if console_errors is not None:
        checks.append(assertion("no console errors", not console_errors, [], console_errors[:5]))
    budget = options.get("max_load_ms", 10_000)
    checks.append(
        assertion(
            "load time", load_ms is not None and load_ms <= budget, f"<= {budget} ms", load_ms
        )
    )
    return checks


def steps(run: dict[str, Any], planned: list[dict[str, Any]]) -> list[Assertion]:
    """One assertion per planned step: passed, failed (with the error), or not reached."""
    done = {step["index"]: step for step in run.get("steps", [])}
    checks = []
    for index, step in enumerate(planned):
        target = step.get("url") or step.get("selector") or step.get("text") or step.get("contains")
        name = f"{index + 1}. {step['action']}" + (f" {target}" if target else "")
        result = done.get(index)
        if result is None:
            checks.append(assertion(name, False, "ok", "not reached"))
        else:
            actual = "ok" if result["ok"] else (result.get("error") or "failed")
            if result["ok"] and result.get("actual") is not None:
                actual = result["actual"]
            checks.append(assertion(name, result["ok"], "ok", actual))
    return checks


def _cookie(cookies: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((c for c in cookies if c.get("name") == name), None)


def auth(options: dict[str, Any], run: dict[str, Any], login_steps: int) -> list[Assertion]:
    reached = [s for s in run.get("steps", []) if s["index"] < login_steps]
    login_ok = len(reached) == login_steps and all(s["ok"] for s in reached)
    failure = next((s.get("error") for s in reached if not s["ok"]), None)
    checks = [assertion("login form submitted", login_ok, "ok", "ok" if login_ok else failure)]
    after = [s for s in run.get("steps", []) if s["index"] >= login_steps]
    if options.get("expect_selector"):
        step = next((s for s in after if s["action"] == "wait_for"), None)
        checks.append(
            assertion(
                f"selector after login: {options['expect_selector']}",
                bool(step and step["ok"]),
                "visible",
                "visible" if step and step["ok"] else "not found",
            )
        )
    if options.get("expect_url_contains"):
        url = run.get("final_url", "")
        wanted = options["expect_url_contains"]
        checks.append(assertion("url after login", wanted in url, f"contains {wanted}", url))
    if options.get("expect_cookie"):
        cookie = _cookie(run.get("cookies", []), options["expect_cookie"])
        checks.append(
            assertion(
                f"cookie: {options['expect_cookie']}",
                cookie is not None,
                "set",
                "set" if cookie else "missing",
            )
        )
    return checks


def headers(response_headers: dict[str, str]) -> list[Assertion]:
    h = {k.lower(): v for k, v in response_headers.items()}
    csp = h.get("content-security-policy", "")
    frame = h.get("x-frame-options", "").upper()
    framed = frame in ("DENY", "SAMEORIGIN") or "frame-ancestors" in csp
    hsts = h.get("strict-transport-security", "")
    max_age = re.search(r"max-age=(\d+)", hsts)
    return [
        assertion("HSTS", bool(max_age and int(max_age.group(1)) > 0), "max-age > 0", hsts or None),
        assertion("Content-Security-Policy", bool(csp), "present", csp or None),
        assertion(
            "X-Content-Type-Options",
            h.get("x-content-type-options", "").lower() == "nosniff",
            "nosniff",
            h.get("x-content-type-options"),
        ),
        assertion("frame protection", framed, "X-Frame-Options or frame-ancestors", frame or None),
    ]


def cookie_flags(cookie: dict[str, Any] | None, name: str) -> list[Assertion]:
    if cookie is None:
        return [assertion(f"session cookie {name}", False, "set", "missing")]
    same_site = str(cookie.get("sameSite") or "None")
    return [
        assertion(f"{name} Secure", bool(cookie.get("secure")), True, bool(cookie.get("secure"))),
        assertion(
            f"{name} HttpOnly", bool(cookie.get("httpOnly")), True, bool(cookie.get("httpOnly"))
        ),
        assertion(f"{name} SameSite", same_site in ("Lax", "Strict"), "Lax or Strict", same_site),
    ]


def session_lifecycle(
    name: str, before: str | None, after: str | None, logged_in: bool, reused_works: bool
) -> list[Assertion]:
    return [
        assertion("logged in", logged_in, True, logged_in),
        assertion(
            f"{name} changes at login",
            after is not None and before != after,
            "a new value",
            "changed" if after is not None and before != after else "unchanged",
        ),
        assertion(
            f"{name} refused after logout",
            not reused_works,
            "refused",
            "still works" if reused_works else "refused",
        ),
    ]


def verdict(checks: list[Assertion]) -> str:
    return "passed" if checks and all(c["passed"] for c in checks) else "failed"
