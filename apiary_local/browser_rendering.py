"""A local stand-in for a subset of Cloudflare's Browser Rendering REST API.

`create_app(engine, api_token=..., rate_per_minute=60)` is an ASGI app serving

    POST /client/v4/accounts/{account_id}/browser-rendering/snapshot
        {url, viewport?: {width, height}, screenshotOptions?: {fullPage?},
         gotoOptions?: {timeout?}}
        -> {"success": true, "result": {"screenshot": base64 PNG, "content": html},
            "errors": [], "messages": []}
    POST .../scrape      {url, elements: [{selector}], viewport?, gotoOptions?}
        -> {"success": true, "result": [{"selector", "results": [{"text", "html",
            "attributes": [{"name", "value"}], "height", "width", "top", "left"}]}], ...}
    POST .../screenshot  {url, screenshotOptions?, viewport?, gotoOptions?} -> image/png
    POST .../content     {url | html, viewport?, gotoOptions?} -> result: the rendered HTML
    POST .../links       {url | html, visibleLinksOnly?, excludeExternalLinks?, viewport?,
                          gotoOptions?} -> result: [absolute href, ...]
    POST .../markdown    {url | html, viewport?, gotoOptions?} -> result: Markdown text
    POST .../pdf         {url | html, pdfOptions?: {landscape?, printBackground?}, viewport?,
                          gotoOptions?} -> application/pdf

`content`, `links`, `markdown` and `pdf` take `html` (a page given as text) instead of `url`,
as Cloudflare's do. Shapes follow Cloudflare's documentation; where the official SDK's models
disagree (5.6.0 types `screenshot`'s answer as a JSON object and a `scrape` match's `results` as
one object, while the API answers PNG bytes and a list of matches), the documentation wins.

Failures use Cloudflare's envelope, `{"success": false, "errors": [{"code", "message"}],
"messages": [], "result": null}`: 400 for a bad body (including fields this subset does not
support, so a caller never silently loses an option), 401 when `api_token` is set and the
`Authorization: Bearer` token differs (code 10000, as Cloudflare answers), 422 when the page
cannot be loaded, 503 when no browser slot frees up, 500 when the browser cannot run, and 429
with `Retry-After` (seconds) once more than `rate_per_minute` requests were admitted for the
account in the last 60 s (a sliding window, like Cloudflare's limit). Authentication comes
before the limit, so unauthenticated requests spend no one's quota. Other codes mirror the
HTTP status. The caller owns `engine` and closes it.
"""

from __future__ import annotations

import hmac
import json
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apiary_local.browser_engine import (
    BrowserEngine,
    BrowserError,
    EngineBusy,
    InvalidRequest,
    NavigationError,
)
from apiary_local.browser_steps import check_timeout, check_url

PREFIX = "/client/v4/accounts/{account_id}/browser-rendering"
WINDOW_S = 60.0
AUTH_ERROR_CODE = 10000
# Top-level fields each endpoint accepts, and the option objects' fields.
FIELDS = {
    "snapshot": {"url", "viewport", "screenshotOptions", "gotoOptions"},
    "scrape": {"url", "elements", "viewport", "gotoOptions"},
    "screenshot": {"url", "viewport", "screenshotOptions", "gotoOptions"},
    "content": {"url", "html", "viewport", "gotoOptions"},
    "links": {
        "url", "html", "viewport", "gotoOptions", "visibleLinksOnly", "excludeExternalLinks",
    },
    "markdown": {"url", "html", "viewport", "gotoOptions"},
    "pdf": {"url", "html", "viewport", "gotoOptions", "pdfOptions"},
}  # fmt: skip
TAKES_HTML = frozenset({"content", "links", "markdown", "pdf"})
MAX_HTML_CHARS = 512 * 1024
OPTION_FIELDS = {
    "viewport": {"width", "height"},
    "screenshotOptions": {"fullPage"},
    "gotoOptions": {"timeout"},
    "pdfOptions": {"landscape", "printBackground"},
}
FLAGS = (
    ("visibleLinksOnly", None),
    ("excludeExternalLinks", None),
    ("landscape", "pdfOptions"),
    ("printBackground", "pdfOptions"),
    ("fullPage", "screenshotOptions"),
)


class SlidingWindow:
    """At most `limit` admissions per key in any `window_s`; refused calls are not counted,
    so a client that backs off as told gets in once its oldest admission ages out."""

    def __init__(
        self, limit: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._admitted: dict[str, deque[float]] = defaultdict(deque)

    def admit(self, key: str) -> float | None:
        """None when admitted, else the seconds until a slot frees."""
        now = self.clock()
        times = self._admitted[key]
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) >= self.limit:
            return times[0] + self.window_s - now
        times.append(now)
        return None


def _failure(status: int, message: str, code: int | None = None) -> JSONResponse:
    body = {
        "success": False,
        "errors": [{"code": code or status, "message": message}],
        "messages": [],
        "result": None,
    }
    return JSONResponse(body, status_code=status)


def _success(result: Any) -> JSONResponse:
    return JSONResponse({"success": True, "result": result, "errors": [], "messages": []})


def _parse(endpoint: str, raw: bytes) -> dict[str, Any]:
    """The checked body: raises `InvalidRequest` naming the first problem."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    unknown = set(body) - FIELDS[endpoint]
    if unknown:
        raise InvalidRequest(f"not supported here: {', '.join(sorted(unknown))}")
    if endpoint in TAKES_HTML and "html" in body:
        if "url" in body:
            raise InvalidRequest("give url or html, not both")
        if not isinstance(body["html"], str) or not 0 < len(body["html"]) <= MAX_HTML_CHARS:
            raise InvalidRequest(f"html must be a string of 1 to {MAX_HTML_CHARS} characters")
    else:
        check_url(body.get("url"))
    for name, allowed in OPTION_FIELDS.items():
        options = body.get(name, {})
        if not isinstance(options, dict) or set(options) - allowed:
            raise InvalidRequest(f"{name} may only have {', '.join(sorted(allowed))}")
    viewport = body.get("viewport")
    if viewport is not None and not (
        set(viewport) == {"width", "height"}
        and all(type(v) is int and 1 <= v <= 10_000 for v in viewport.values())
    ):
        raise InvalidRequest("viewport must be {width, height}, integers from 1 to 10000")
    for flag, within in FLAGS:
        holder = body.get(within, {}) if within else body
        if type(holder.get(flag, False)) is not bool:
            raise InvalidRequest(f"{within + '.' if within else ''}{flag} must be a boolean")
    if "timeout" in body.get("gotoOptions", {}):
        check_timeout(body["gotoOptions"]["timeout"], "gotoOptions.timeout")
    if endpoint == "scrape":
        elements = body.get("elements")
        if (
            not isinstance(elements, list)
            or not elements
            or not all(
                isinstance(e, dict) and set(e) == {"selector"} and isinstance(e["selector"], str)
                for e in elements
            )
        ):
            raise InvalidRequest("elements must be a non-empty list of {selector}")
    return body


def create_app(
    engine: BrowserEngine,
    *,
    api_token: str | None,
    rate_per_minute: int = 60,
    clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    limiter = SlidingWindow(rate_per_minute, clock=clock)

    async def endpoint(request: Request) -> Response:
        name = request.path_params["endpoint"]
        if name not in FIELDS:
            return _failure(404, f"no such endpoint: {name}")
        if api_token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_token}".encode()):
                return _failure(401, "Authentication error", AUTH_ERROR_CODE)
        retry_after = limiter.admit(request.path_params["account_id"])
        if retry_after is not None:
            response = _failure(429, "Rate limit exceeded")
            response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
            return response
        try:
            body = _parse(name, await request.body())
            return await _serve(engine, name, body)
        except InvalidRequest as exc:
            return _failure(400, str(exc))
        except NavigationError as exc:
            return _failure(422, f"could not load the page: {exc}")
        except EngineBusy as exc:
            return _failure(503, str(exc))
        except BrowserError as exc:
            return _failure(500, str(exc))

    return Starlette(routes=[Route(f"{PREFIX}/{{endpoint}}", endpoint, methods=["POST"])])


async def _serve(engine: BrowserEngine, name: str, body: dict[str, Any]) -> Response:
    url: Any = body.get("url")  # unchecked: the engine refuses what is not an http(s) URL
    common = {
        "viewport": body.get("viewport"),
        "timeout_ms": body.get("gotoOptions", {}).get("timeout"),
    }
    if name in TAKES_HTML:
        return await _serve_page(engine, name, url, body, common)
    full_page = body.get("screenshotOptions", {}).get("fullPage", False)
    if name == "snapshot":
        return _success(await engine.snapshot(url, full_page=full_page, **common))
    if name == "scrape":
        selectors = [element["selector"] for element in body["elements"]]
        return _success(await engine.scrape(url, selectors, **common))
    png = await engine.screenshot(url, full_page=full_page, **common)
    return Response(png, media_type="image/png")


async def _serve_page(
    engine: BrowserEngine,
    name: str,
    url: str | None,
    body: dict[str, Any],
    common: dict[str, Any],
) -> Response:
    common = {**common, "html": body.get("html")}
    if name == "content":
        return _success(await engine.content(url, **common))
    if name == "markdown":
        return _success(await engine.markdown(url, **common))
    if name == "links":
        found = await engine.links(
            url,
            visible_only=body.get("visibleLinksOnly", False),
            internal_only=body.get("excludeExternalLinks", False),
            **common,
        )
        return _success(found)
    options = body.get("pdfOptions", {})
    document = await engine.pdf(
        url,
        landscape=options.get("landscape", False),
        print_background=options.get("printBackground", False),
        **common,
    )
    return Response(document, media_type="application/pdf")
