"""`/accounts/{account_id}/workers/scripts/...`: upload, list, get, delete, content, settings,
script settings and the workers.dev subdomain of a script, plus what `wrangler deploy` also
asks (`workers/services/{name}`, `workers/subdomain`). The same handlers serve the scripts of a
dispatch namespace (`.../dispatch/namespaces/{namespace}/scripts/{name}`).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from apiary_local.account import shapes, uploads
from apiary_local.account.context import (
    AccountContext,
    api,
    existing,
    json_body,
    source_of,
)
from apiary_local.account.envelope import (
    SERVICE_NOT_FOUND,
    VALIDATION,
    ApiError,
    not_found,
    success,
)
from apiary_local.account.rows import VersionRow
from apiary_local.account.store import ACCOUNT

SCRIPT_SETTINGS = ("logpush", "observability", "tags", "tail_consumers")


async def read_upload(request: Request) -> uploads.Upload:
    return uploads.parse(request.headers.get("content-type", ""), await request.body())


def namespace_of(request: Request) -> str:
    namespace = request.path_params.get("namespace")
    return str(namespace) if namespace is not None else ACCOUNT


def _latest(ctx: AccountContext, namespace: str, name: str) -> VersionRow | None:
    versions = ctx.store.versions(namespace, name, limit=1)
    return versions[0] if versions else None


def _deployed(ctx: AccountContext, namespace: str, name: str) -> VersionRow | None:
    deployment = ctx.store.current_deployment(namespace, name)
    if deployment is None:
        return None
    top = max(deployment.versions, key=lambda v: v["percentage"])["version_id"]
    return ctx.store.version(namespace, name, top)


def script_json(ctx: AccountContext, namespace: str, name: str) -> dict[str, Any]:
    row = existing(ctx, namespace, name)
    return shapes.script(
        row, _latest(ctx, namespace, name), deployed=_deployed(ctx, namespace, name)
    )


def _local_messages(ctx: AccountContext, version: VersionRow, namespace: str) -> list[str]:
    if not version.runnable:
        return [f"stored, not run locally: {version.reason}"]
    if namespace == ACCOUNT:
        return [f"runs locally at {ctx.worker_url(version.script)}"]
    return [f"runs locally for the dispatchers of namespace {namespace}"]


def routes(ctx: AccountContext, prefix: str) -> list[Route]:
    """Routes for the scripts under `prefix` (the account's, or a namespace's)."""

    @api
    async def list_scripts(request: Request) -> Response:
        namespace = namespace_of(request)
        if namespace != ACCOUNT and ctx.store.namespace(namespace) is None:
            raise not_found(f"dispatch namespace {namespace}")
        return success([script_json(ctx, namespace, s.name) for s in ctx.store.scripts(namespace)])

    @api
    async def upload(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        if namespace != ACCOUNT and ctx.store.namespace(namespace) is None:
            raise not_found(f"dispatch namespace {namespace}")
        version, _ = await ctx.service.upload(
            namespace,
            name,
            await read_upload(request),
            deploy=True,
            source=source_of(request),
            strict_inherit=request.query_params.get("bindings_inherit") == "strict",
        )
        result = {
            **script_json(ctx, namespace, name),
            "startup_time_ms": 0,
            "deployment_id": version.id,  # wrangler reads the new version's id here
        }
        return success(result, messages=_local_messages(ctx, version, namespace))

    @api
    async def get_script(request: Request) -> Response:
        """The raw main module; in a dispatch namespace, the script's description."""
        namespace, name = namespace_of(request), request.path_params["name"]
        row = existing(ctx, namespace, name)
        if namespace != ACCOUNT:
            return success(
                {
                    "created_on": row.created_on,
                    "modified_on": row.modified_on,
                    "dispatch_namespace": namespace,
                    "script": script_json(ctx, namespace, name),
                }
            )
        version = _deployed(ctx, namespace, name) or _latest(ctx, namespace, name)
        if version is None:
            raise not_found(f"script {name}")
        main = version.metadata.get("main_module") or version.metadata.get("body_part")
        module = next(m for m in ctx.store.modules(version.id) if m.name == main)
        return Response(module.content, media_type="application/javascript")

    @api
    async def delete_script(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        if not await ctx.service.delete_script(namespace, name):
            raise not_found(f"script {name}")
        return success(None)

    @api
    async def put_content(request: Request) -> Response:
        """New code, same settings: a new version of the modules, deployed."""
        namespace, name = namespace_of(request), request.path_params["name"]
        base = _deployed(ctx, namespace, name)
        if base is None:
            raise not_found(f"script {name}")
        upload = await read_upload(request)
        merged = {
            **{k: v for k, v in base.metadata.items() if k not in ("main_module", "body_part")},
            **{k: v for k, v in upload.metadata.items() if k in ("main_module", "body_part")},
            "bindings": base.bindings,  # the deployed version's, secrets included
        }
        await ctx.service.upload(
            namespace,
            name,
            uploads.Upload(merged, upload.modules),
            deploy=True,
            source=source_of(request),
        )
        return success(script_json(ctx, namespace, name))

    @api
    async def get_content(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        version = _deployed(ctx, namespace, name)
        if version is None:
            raise not_found(f"script {name}")
        main = version.metadata.get("main_module") or version.metadata.get("body_part")
        module = next(m for m in ctx.store.modules(version.id) if m.name == main)
        return Response(module.content, media_type=module.content_type)

    @api
    async def get_settings(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        row = existing(ctx, namespace, name)
        version = _deployed(ctx, namespace, name)
        if version is None:
            raise not_found(f"a deployment of {name}")
        return success(shapes.settings(version, row))

    @api
    async def patch_settings(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        existing(ctx, namespace, name)
        patch = await _settings_patch(request)
        unversioned = {k: patch[k] for k in SCRIPT_SETTINGS if k in patch}
        if unversioned:
            _update_script_settings(ctx, namespace, name, unversioned)
        if set(patch) - set(SCRIPT_SETTINGS):
            await ctx.service.patch_settings(namespace, name, patch, source=source_of(request))
        row = existing(ctx, namespace, name)
        version = _deployed(ctx, namespace, name)
        assert version is not None
        return success(shapes.settings(version, row))

    @api
    async def get_script_settings(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        return success(shapes.script_settings(existing(ctx, namespace, name)))

    @api
    async def patch_script_settings(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        existing(ctx, namespace, name)
        patch = await json_body(request)
        unknown = set(patch) - set(SCRIPT_SETTINGS) - {"streaming_tail_consumers"}
        if unknown:
            raise ApiError(400, VALIDATION, f"not script settings: {', '.join(sorted(unknown))}")
        _update_script_settings(ctx, namespace, name, patch)
        return success(shapes.script_settings(existing(ctx, namespace, name)))

    @api
    async def get_subdomain(request: Request) -> Response:
        row = existing(ctx, namespace_of(request), request.path_params["name"])
        return success(row.subdomain)

    @api
    async def set_subdomain(request: Request) -> Response:
        namespace, name = namespace_of(request), request.path_params["name"]
        existing(ctx, namespace, name)
        body = await json_body(request)
        enabled = body.get("enabled", True)
        previews = body.get("previews_enabled", enabled)
        if type(enabled) is not bool or type(previews) is not bool:
            raise ApiError(400, VALIDATION, "enabled and previews_enabled are booleans")
        state = {"enabled": enabled, "previews_enabled": previews}
        if request.method == "DELETE":
            state = {"enabled": False, "previews_enabled": False}
        ctx.store.update_script(namespace, name, now=shapes.now(), subdomain=state)
        return success(state)

    base = f"{prefix}/{{name}}"
    return [
        Route(prefix, list_scripts, methods=["GET"]),
        Route(base, upload, methods=["PUT"]),
        Route(base, get_script, methods=["GET"]),
        Route(base, delete_script, methods=["DELETE"]),
        Route(f"{base}/content", put_content, methods=["PUT"]),
        Route(f"{base}/content", get_content, methods=["GET"]),
        Route(f"{base}/content/v2", get_content, methods=["GET"]),
        Route(f"{base}/settings", get_settings, methods=["GET"]),
        Route(f"{base}/settings", patch_settings, methods=["PATCH"]),
        Route(f"{base}/script-settings", get_script_settings, methods=["GET"]),
        Route(f"{base}/script-settings", patch_script_settings, methods=["PATCH"]),
        Route(f"{base}/subdomain", get_subdomain, methods=["GET"]),
        Route(f"{base}/subdomain", set_subdomain, methods=["POST", "DELETE"]),
    ]


def account_routes(ctx: AccountContext, prefix: str) -> list[Route]:
    """`workers/subdomain` and `workers/services/{name}` (what wrangler deploy reads)."""

    @api
    async def account_subdomain(request: Request) -> Response:
        return success({"subdomain": ctx.subdomain})

    @api
    async def service(request: Request) -> Response:
        name = request.path_params["name"]
        row = ctx.store.script(ACCOUNT, name)
        if row is None:
            raise ApiError(404, SERVICE_NOT_FOUND, "This Worker does not exist on your account.")
        return success(
            {
                "id": name,
                "default_environment": {
                    "environment": "production",
                    "created_on": row.created_on,
                    "modified_on": row.modified_on,
                    "script": script_json(ctx, ACCOUNT, name),
                },
                "created_on": row.created_on,
                "modified_on": row.modified_on,
            }
        )

    return [
        Route(f"{prefix}/subdomain", account_subdomain, methods=["GET"]),
        Route(f"{prefix}/services/{{name}}", service, methods=["GET"]),
    ]


async def _settings_patch(request: Request) -> dict[str, Any]:
    """PATCH settings takes a multipart body with a `settings` part (the SDK) or JSON."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/"):
        return await json_body(request)
    for headers, content in uploads.parts(content_type, await request.body()):
        if 'name="settings"' in headers.get("content-disposition", ""):
            try:
                settings = json.loads(content)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            if isinstance(settings, dict):
                return settings
    raise ApiError(400, VALIDATION, "the body needs a settings part holding a JSON object")


def _update_script_settings(
    ctx: AccountContext, namespace: str, name: str, patch: dict[str, Any]
) -> None:
    row = existing(ctx, namespace, name)
    ctx.store.update_script(
        namespace, name, now=shapes.now(), script_settings={**row.script_settings, **patch}
    )
