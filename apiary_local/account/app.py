"""The local account's API under `/client/v4`, as one ASGI app: the guard first (loopback
Host, own Origin, bearer token, body cap; see `apiary_local.local_guard`), then the routes.

    /client/v4/accounts/{account_id}/workers/...         scripts, versions, deployments,
                                                        subdomains, services, namespaces,
                                                        observability's telemetry query
    /client/v4/accounts/{account_id}/browser-rendering/  the Browser Rendering subset
    /client/v4/graphql                                   GraphQL analytics

Failures are Cloudflare's envelope: 401 (code 10000) without the token or with another, 403
for a foreign Host or Origin, 413 for a body over the cap (multipart uploads 10 MiB, anything
else 1 MiB), 404 (code 7003) for a route this subset does not have.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import Scope

from apiary_local import local_guard
from apiary_local.account import namespaces_api, scripts_api, telemetry_api, versions_api
from apiary_local.account.context import AccountContext
from apiary_local.account.envelope import (
    AUTHENTICATION,
    FORBIDDEN,
    ROUTE_NOT_FOUND,
    TOO_LARGE,
    failure_body,
)
from apiary_local.account.graphql_api import Analytics

PREFIX = "/client/v4"
type Asgi = Callable[..., Any]


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    await JSONResponse(body, status_code=status)({"type": "http"}, _no_receive, send)


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def _replay(body: bytes) -> Callable[[], Any]:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class AccountApi:
    def __init__(
        self,
        ctx: AccountContext,
        *,
        token: str,
        browser_rendering: Callable[[], Asgi],
    ) -> None:
        self.ctx = ctx
        self.token = token
        self.browser_rendering = browser_rendering
        self.analytics = Analytics(ctx.invocations, ctx.account_id)
        account = f"{PREFIX}/accounts/{ctx.account_id}"
        workers = f"{account}/workers"
        namespaces = f"{workers}/dispatch/namespaces"
        self.router = Router(
            routes=[
                Route(f"{PREFIX}/graphql", self._graphql, methods=["POST"]),
                *scripts_api.account_routes(ctx, workers),
                *scripts_api.routes(ctx, f"{workers}/scripts"),
                *versions_api.routes(ctx, f"{workers}/scripts"),
                *namespaces_api.routes(ctx, namespaces),
                *scripts_api.routes(ctx, f"{namespaces}/{{namespace}}/scripts"),
                *telemetry_api.routes(ctx, f"{workers}/observability"),
            ],
            default=self._not_found,
        )
        self.rendering_prefix = f"{account}/browser-rendering/"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not local_guard.loopback_host(scope) or not local_guard.own_origin(
            scope, self.ctx.public_port
        ):
            await _send_json(send, 403, failure_body(FORBIDDEN, "local-only endpoint"))
            return
        if not local_guard.bearer_matches(scope, self.token):
            await _send_json(send, 401, failure_body(AUTHENTICATION, "Authentication error"))
            return
        content_type = local_guard.header(scope, b"content-type") or ""
        limit = (
            local_guard.UPLOAD_BODY_LIMIT
            if content_type.startswith("multipart/")
            else local_guard.JSON_BODY_LIMIT
        )
        try:
            body = await local_guard.read_body(receive, scope, limit)
        except local_guard.BodyTooLarge:
            message = f"request body over {limit} bytes"
            await _send_json(send, 413, failure_body(TOO_LARGE, message))
            return
        if scope["path"].startswith(self.rendering_prefix):
            await self.browser_rendering()(scope, _replay(body), send)
        else:
            await self.router(scope, _replay(body), send)

    async def _not_found(self, scope: Scope, receive: Any, send: Any) -> None:
        await _send_json(
            send, 404, failure_body(ROUTE_NOT_FOUND, f"No route for that URI: {scope['path']}")
        )

    async def _graphql(self, request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict):
            return JSONResponse({"data": None, "errors": [{"message": "the body must be JSON"}]})
        await self.ctx.service.runner.collect()  # subrequests come with the Workers' reports
        answer = self.analytics.run(
            payload.get("query"), payload.get("variables"), payload.get("operationName")
        )
        return JSONResponse(answer)
