"""The browser step runner: real Chromium journeys over HTTP, for synthetic browser checks.

    BROWSER_RUNNER_TOKEN=... apiary browser-runner [--host 127.0.0.1] [--port 8790]
        [--max-concurrency 2]

With `BROWSER_RUNNER_TOKEN` set, `POST /run` requires `Authorization: Bearer <token>` (apiary
sends its `BROWSER_RUNNER_TOKEN` secret). The browser reaches only what the egress policy
allows (`EGRESS_ALLOW`, see `src/egress.py`; unset: public addresses only).

`GET /health` -> `{"status": "ok"}`. `POST /run` with

    {"steps": [...], "cookies": [{"name", "value", "url"}]?, "timeout_ms": 30000?,
     "secret_screenshots": false?}

runs the steps in a fresh browser context (nothing is shared between runs) and answers 200
with a report whether or not the journey passed. Steps (`action` plus its fields; any step may
also carry `timeout_ms`, and `expect_*` steps retry for 5 s unless told otherwise):

    goto {url}  click {selector}  fill {selector, value, secret_origins?}  press {key, selector?}
    wait_for {selector, state?: visible|attached|hidden|detached}
    expect_text {text, selector?="body"}  expect_url {contains}
    screenshot {full_page?}  cookies {}     (records the context's cookies at that point)
    content {}         (`actual`: the page's HTML as rendered now)
    count {selector}   (`actual`: how many elements match now, without waiting)

The report:

    {"ok": bool, "steps": [{"index", "action", "ok", "duration_ms", "error", "actual",
                            "screenshot", "cookies"}],     # up to and including the first failure
     "status": int|null, "headers": {lower-case name: value},  # the first goto's response
     "final_url": str, "title": str,
     "cookies": [{"name", "value", "domain", "path", "expires", "httpOnly", "secure",
                  "sameSite"}],                            # at the end
     "console_errors": [str], "load_ms": int|null, "duration_ms": int}

A failing step carries a PNG screenshot (base64) of the page as it was. No `fill` value
appears anywhere in the report: it may be a password. A fill with `secret_origins` types a
stored credential: from then on the page may only navigate to those origins (another
navigation fails the step), and no screenshot is taken unless `secret_screenshots` is true.
A malformed request is a 400 `{"error": {"code": "invalid", "message"}}`; no free browser
slot within the timeout is a 503 (`busy`); a browser that cannot run is a 500 (`browser`).
Request bodies are never logged.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import os
import sys
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apiary_local.browser_engine import (
    DEFAULT_TIMEOUT_MS,
    BrowserEngine,
    BrowserError,
    EngineBusy,
    InvalidRequest,
)
from egress import VAR as EGRESS
from egress import EgressError, EgressPolicy

REQUEST_FIELDS = {"steps", "cookies", "timeout_ms", "secret_screenshots"}
TOKEN_ENV = "BROWSER_RUNNER_TOKEN"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(engine: BrowserEngine, *, token: str | None = None) -> Starlette:
    """The runner's ASGI app; its lifespan closes `engine` (the browser) on shutdown.

    With `token`, `POST /run` needs `Authorization: Bearer <token>`: an open runner would be a
    browser anyone who reaches it could point anywhere.
    """
    expected = f"Bearer {token}".encode() if token else None

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def run(request: Request) -> JSONResponse:
        presented = request.headers.get("authorization", "").encode()
        if expected is not None and not hmac.compare_digest(presented, expected):
            return _error(401, "unauthorized", "a valid runner token is required")
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "invalid", "the body must be a JSON object")
        if not isinstance(body, dict):
            return _error(400, "invalid", "the body must be a JSON object")
        unknown = set(body) - REQUEST_FIELDS
        if unknown:
            return _error(400, "invalid", f"unknown field(s) {', '.join(sorted(unknown))}")
        try:
            report = await engine.run_steps(
                body.get("steps"),  # type: ignore[arg-type]  # run_steps checks it
                cookies=body.get("cookies"),
                timeout_ms=body.get("timeout_ms", DEFAULT_TIMEOUT_MS),
                secret_screenshots=body.get("secret_screenshots") is True,
            )
        except InvalidRequest as exc:
            return _error(400, "invalid", str(exc))
        except EngineBusy as exc:
            return _error(503, "busy", str(exc))
        except BrowserError as exc:
            return _error(500, "browser", str(exc))
        return JSONResponse(report)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.close()

    return Starlette(
        routes=[Route("/health", health), Route("/run", run, methods=["POST"])],
        lifespan=lifespan,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,  # `--token SECRET` must not be read as `--token-file`
        prog="apiary browser-runner",
        description="Run browser journeys in real Chromium.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--max-concurrency", type=_positive, default=2)
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    token = os.environ.get(TOKEN_ENV) or None  # from the environment: argv is visible to `ps`
    # Self-hosted, the runner is an SSRF surface: private and loopback targets are refused
    # unless EGRESS_ALLOW names them.
    try:
        policy = EgressPolicy.parse(os.environ.get(EGRESS))
    except EgressError as exc:
        print(f"apiary browser-runner: {exc}", file=sys.stderr)
        return 2
    engine = BrowserEngine(max_concurrency=args.max_concurrency, egress=policy)
    app = create_app(engine, token=token)
    print(f"apiary browser-runner: http://{args.host}:{args.port}", flush=True)
    # No access log: request bodies carry passwords, and URLs may carry tokens.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        ws="none",
        lifespan="on",
    )
    return 0
