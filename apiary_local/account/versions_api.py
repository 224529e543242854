"""Versions and deployments of a script: upload a version without deploying it, list and get
versions (paged as Cloudflare pages them: a page past the end is empty), create a deployment
of one or two versions by percentage (a rollback is a deployment of an older version), list
deployments newest first, get one, delete one that is not the current one.
https://developers.cloudflare.com/workers/configuration/versions-and-deployments/
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from apiary_local.account import shapes
from apiary_local.account.context import (
    AccountContext,
    api,
    existing,
    json_body,
    paging,
    source_of,
)
from apiary_local.account.envelope import BAD_DEPLOYMENT, ApiError, not_found, success
from apiary_local.account.scripts_api import namespace_of, read_upload

DEPLOYABLE_VERSIONS = 100  # the newest versions Cloudflare lets a deployment use


def routes(ctx: AccountContext, prefix: str) -> list[Route]:
    base = f"{prefix}/{{name}}"

    @api
    async def upload_version(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        version, _ = await ctx.service.upload(
            namespace,
            name,
            await read_upload(request),
            deploy=False,
            source=source_of(request),
            strict_inherit=request.query_params.get("bindings_inherit") == "strict",
        )
        return success(shapes.version_full(version))

    @api
    async def list_versions(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        existing(ctx, namespace, name)
        page, per_page = paging(request, default_per_page=10)
        total = ctx.store.count_versions(namespace, name)
        if request.query_params.get("deployable") in ("true", "1"):
            total = min(total, DEPLOYABLE_VERSIONS)
        offset = (page - 1) * per_page
        limit = max(0, min(per_page, total - offset))
        items = ctx.store.versions(namespace, name, offset=offset, limit=limit) if limit else []
        return success(
            {"items": [shapes.version_item(v) for v in items]},
            result_info=shapes.page_info(page, per_page, len(items), total),
        )

    @api
    async def get_version(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        existing(ctx, namespace, name)
        version = ctx.store.version(namespace, name, request.path_params["version_id"])
        if version is None:
            raise not_found(f"version {request.path_params['version_id']}")
        return success(shapes.version_full(version))

    @api
    async def create_deployment(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        existing(ctx, namespace, name)
        body = await json_body(request)
        if body.get("strategy", "percentage") != "percentage":
            raise ApiError(400, BAD_DEPLOYMENT, "the only strategy is percentage")
        annotations = body.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(v, str) for v in annotations.values()
        ):
            raise ApiError(400, BAD_DEPLOYMENT, "annotations must map names to strings")
        deployment = await ctx.service.deploy(
            namespace,
            name,
            body.get("versions"),
            annotations=annotations,
            source=source_of(request),
        )
        return success(shapes.deployment(deployment))

    @api
    async def list_deployments(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        existing(ctx, namespace, name)
        deployments = ctx.store.deployments(namespace, name)
        return success({"deployments": [shapes.deployment(d) for d in deployments]})

    @api
    async def get_deployment(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        existing(ctx, namespace, name)
        wanted = request.path_params["deployment_id"]
        found = next((d for d in ctx.store.deployments(namespace, name) if d.id == wanted), None)
        if found is None:
            raise not_found(f"deployment {wanted}")
        return success(shapes.deployment(found))

    @api
    async def delete_deployment(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        existing(ctx, namespace, name)
        wanted = request.path_params["deployment_id"]
        current = ctx.store.current_deployment(namespace, name)
        if current is not None and current.id == wanted:
            raise ApiError(400, BAD_DEPLOYMENT, "the current deployment cannot be deleted")
        if not ctx.store.delete_deployment(namespace, name, wanted):
            raise not_found(f"deployment {wanted}")
        return success(None)

    return [
        Route(f"{base}/versions", upload_version, methods=["POST"]),
        Route(f"{base}/versions", list_versions, methods=["GET"]),
        Route(f"{base}/versions/{{version_id}}", get_version, methods=["GET"]),
        Route(f"{base}/deployments", create_deployment, methods=["POST"]),
        Route(f"{base}/deployments", list_deployments, methods=["GET"]),
        Route(f"{base}/deployments/{{deployment_id}}", get_deployment, methods=["GET"]),
        Route(f"{base}/deployments/{{deployment_id}}", delete_deployment, methods=["DELETE"]),
    ]
