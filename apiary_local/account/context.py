"""What the account's routes share, and the small helpers every route uses."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from apiary_local.account.envelope import VALIDATION, ApiError, failure, not_found
from apiary_local.account.invocations import InvocationLog
from apiary_local.account.rows import ScriptRow
from apiary_local.account.service import AccountService
from apiary_local.account.store import AccountStore

type Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class AccountContext:
    account_id: str
    subdomain: str  # the account's workers.dev subdomain, as the API reports it
    service: AccountService
    invocations: InvocationLog
    public_port: int

    @property
    def store(self) -> AccountStore:
        return self.service.store

    def worker_url(self, script: str) -> str:
        return f"http://{script}.localhost:{self.public_port}/"


def api(handler: Handler) -> Handler:
    """Answers an `ApiError` raised by `handler` in Cloudflare's failure envelope."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return failure(exc.status, exc.code, exc.message)

    wrapped.__name__ = handler.__name__
    return wrapped


def source_of(request: Request) -> str:
    """Cloudflare records where a version came from; wrangler says who it is."""
    return "wrangler" if "wrangler" in request.headers.get("user-agent", "") else "api"


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, VALIDATION, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, VALIDATION, "the body must be a JSON object")
    return body


def existing(ctx: AccountContext, namespace: str, name: str) -> ScriptRow:
    row = ctx.store.script(namespace, name)
    if row is None:
        raise not_found(f"script {name}")
    return row


def paging(request: Request, *, default_per_page: int = 20) -> tuple[int, int]:
    try:
        page = int(request.query_params.get("page", "1"))
        per_page = int(request.query_params.get("per_page", str(default_per_page)))
    except ValueError:
        raise ApiError(400, VALIDATION, "page and per_page must be integers") from None
    if page < 1 or not 1 <= per_page <= 1000:
        raise ApiError(400, VALIDATION, "page >= 1 and 1 <= per_page <= 1000")
    return page, per_page
