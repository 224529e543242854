"""Workers for Platforms: dispatch namespaces (create, list, get, delete). The scripts of a
namespace are served by `scripts_api` under `.../dispatch/namespaces/{namespace}/scripts`.
https://developers.cloudflare.com/cloudflare-for-platforms/workers-for-platforms/
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from apiary_local.account import shapes
from apiary_local.account.context import AccountContext, api, json_body
from apiary_local.account.envelope import (
    NAMESPACE_EXISTS,
    VALIDATION,
    ApiError,
    not_found,
    success,
)

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def routes(ctx: AccountContext, prefix: str) -> list[Route]:
    def described(name: str) -> dict[str, object]:
        row = ctx.store.namespace(name)
        if row is None:
            raise not_found(f"dispatch namespace {name}")
        return shapes.namespace(row, len(ctx.store.scripts(name)))

    @api
    async def create(request: Request) -> Response:
        name = (await json_body(request)).get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ApiError(
                400, VALIDATION, "name: lower-case letters, digits and '-', up to 63 characters"
            )
        if ctx.store.namespace(name) is not None:
            raise ApiError(409, NAMESPACE_EXISTS, f"dispatch namespace {name} already exists")
        ctx.store.add_namespace(name, now=shapes.now())
        return success(described(name))

    @api
    async def list_all(request: Request) -> Response:
        return success([described(n.name) for n in ctx.store.namespaces()])

    @api
    async def get(request: Request) -> Response:
        return success(described(request.path_params["namespace"]))

    @api
    async def delete(request: Request) -> Response:
        if not await ctx.service.delete_namespace(request.path_params["namespace"]):
            raise not_found(f"dispatch namespace {request.path_params['namespace']}")
        return success(None)

    return [
        Route(prefix, create, methods=["POST"]),
        Route(prefix, list_all, methods=["GET"]),
        Route(f"{prefix}/{{namespace}}", get, methods=["GET"]),
        Route(f"{prefix}/{{namespace}}", delete, methods=["DELETE"]),
    ]
