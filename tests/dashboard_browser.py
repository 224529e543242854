"""Helpers for dashboard tests: real Chromium (Debian's, through Playwright's sync API), pages
that record console errors and every request that leaves 127.0.0.1, and signing in."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.harness import DevServer, admin_token

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
PHONE = {"width": 375, "height": 740}


@dataclass
class Watched:
    page: Page
    console_errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)  # requests that left the machine
    responses: list[Any] = field(default_factory=list)

    def expect_clean(self, *, allow: tuple[str, ...] = ()) -> None:
        errors = [e for e in self.console_errors if not any(a in e for a in allow)]
        assert not errors, errors
        assert not self.outside, self.outside


def watch(context: BrowserContext) -> Watched:
    page = context.new_page()
    watched = Watched(page)

    def on_console(message: Any) -> None:
        if message.type == "error":
            watched.console_errors.append(message.text)

    def on_request(request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOOPBACK:
            watched.outside.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.console_errors.append(f"pageerror: {error}"))
    page.on("request", on_request)
    page.on("response", lambda response: watched.responses.append(response))
    return watched


def sign_in(
    browser: Browser, server: DevServer, scopes: tuple[str, ...] = ("admin",), **options: Any
) -> Watched:
    """A new context signed in through the sign-in form."""
    context = browser.new_context(**options)
    watched = watch(context)
    page = watched.page
    page.goto(f"{server.url}/signin")
    page.locator("#token").fill(admin_token(scopes))
    page.locator("#submit").click()
    expect(page.locator("#signed-in-as")).to_be_visible()
    return watched


def session_context(browser: Browser, server: DevServer, **options: Any) -> BrowserContext:
    """A fresh context (cold cache) holding a session cookie opened through the API."""
    answer = httpx.post(
        f"{server.url}/api/auth/session", json={"token": admin_token()}, verify=server.verify
    )
    answer.raise_for_status()
    context = browser.new_context(**options)
    value = answer.cookies["apiary_session"]
    context.add_cookies([{"name": "apiary_session", "value": value, "url": server.url}])
    return context


def first_load_bytes(server: DevServer, urls: list[str]) -> tuple[int, int]:
    """(raw, gzip -9) bytes of these same-origin files: what a compressing edge would send."""
    raw = compressed = 0
    for url in dict.fromkeys(urls):
        body = httpx.get(url, verify=server.verify).content
        raw += len(body)
        compressed += len(gzip.compress(body, compresslevel=9))
    return raw, compressed
