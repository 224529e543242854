"""The Workers part of Cloudflare's API that fleet management uses: scripts, versions,
deployments, settings, the workers.dev subdomain and dispatch namespaces (Workers for
Platforms). Paths and shapes: ../shared/CLOUDFLARE-API.md, and
https://developers.cloudflare.com/api/resources/workers/subresources/scripts/ .

`namespace` (a dispatch namespace's name) addresses a script of that namespace instead of one
of the account's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from cfapi import multipart
from cfapi.client import CloudflareApi, is_not_found
from errors import Upstream

VERSIONS_PER_PAGE = 100
MAX_VERSION_PAGES = 10


class WorkersApi:
    def __init__(self, api: CloudflareApi) -> None:
        self.api = api

    def _scripts(self, namespace: str | None) -> str:
        base = f"{self.api.account_path}/workers"
        if namespace is None:
            return f"{base}/scripts"
        return f"{base}/dispatch/namespaces/{quote(namespace, safe='')}/scripts"

    def _script(self, name: str, namespace: str | None = None) -> str:
        return f"{self._scripts(namespace)}/{quote(name, safe='')}"

    # scripts

    async def list_scripts(self) -> list[dict[str, Any]]:
        result = (await self.api.call("GET", self._scripts(None))).result
        return list(result or [])

    async def upload(
        self,
        name: str,
        metadata: Mapping[str, Any],
        modules: Mapping[str, str],
        *,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """Upload and deploy at 100%: the script, with `deployment_id` (the new version)."""
        body, content_type = multipart.encode({"metadata": metadata}, modules)
        answer = await self.api.call(
            "PUT", self._script(name, namespace), body=body, content_type=content_type
        )
        return dict(answer.result or {})

    async def delete(self, name: str, *, namespace: str | None = None) -> bool:
        """False when there was nothing to delete."""
        try:
            await self.api.call("DELETE", self._script(name, namespace), params={"force": "true"})
        except Upstream as exc:
            if is_not_found(exc):
                return False
            raise
        return True

    async def settings(self, name: str, *, namespace: str | None = None) -> dict[str, Any] | None:
        """The deployed settings (bindings, compatibility, limits, placement), None if absent."""
        try:
            answer = await self.api.call("GET", f"{self._script(name, namespace)}/settings")
        except Upstream as exc:
            if is_not_found(exc):
                return None
            raise
        return dict(answer.result or {})

    async def patch_settings(
        self, name: str, patch: Mapping[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        # Cloudflare takes the patch as a multipart `settings` part.
        body, content_type = multipart.encode({"settings": patch})
        answer = await self.api.call(
            "PATCH",
            f"{self._script(name, namespace)}/settings",
            body=body,
            content_type=content_type,
        )
        return dict(answer.result or {})

    async def enable_workers_dev(self, name: str) -> None:
        await self.api.call(
            "POST",
            f"{self._script(name)}/subdomain",
            json_body={"enabled": True, "previews_enabled": False},
        )

    async def account_subdomain(self) -> str:
        answer = await self.api.call("GET", f"{self.api.account_path}/workers/subdomain")
        return str((answer.result or {}).get("subdomain") or "")

    # versions and deployments

    async def upload_version(
        self, name: str, metadata: Mapping[str, Any], modules: Mapping[str, str]
    ) -> dict[str, Any]:
        """A new version, not deployed."""
        body, content_type = multipart.encode({"metadata": metadata}, modules)
        answer = await self.api.call(
            "POST", f"{self._script(name)}/versions", body=body, content_type=content_type
        )
        return dict(answer.result or {})

    async def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version, newest first (Cloudflare pages them; a page past the end is empty)."""
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_VERSION_PAGES + 1):
            answer = await self.api.call(
                "GET",
                f"{self._script(name)}/versions",
                params={"page": page, "per_page": VERSIONS_PER_PAGE},
            )
            items = list((answer.result or {}).get("items") or [])
            found.extend(items)
            if len(items) < VERSIONS_PER_PAGE:
                break
        return sorted(found, key=lambda v: v.get("number") or 0, reverse=True)

    async def version(self, name: str, version_id: str) -> dict[str, Any] | None:
        try:
            answer = await self.api.call(
                "GET", f"{self._script(name)}/versions/{quote(version_id, safe='')}"
            )
        except Upstream as exc:
            if is_not_found(exc):
                return None
            raise
        return dict(answer.result or {})

    async def deployments(self, name: str) -> list[dict[str, Any]]:
        """Newest first; the first is the active one."""
        answer = await self.api.call("GET", f"{self._script(name)}/deployments")
        return list((answer.result or {}).get("deployments") or [])

    async def deploy(
        self, name: str, versions: list[dict[str, Any]], *, message: str
    ) -> dict[str, Any]:
        """A percentage deployment of one or two versions (summing to 100)."""
        answer = await self.api.call(
            "POST",
            f"{self._script(name)}/deployments",
            params={"force": "true"},
            json_body={
                "strategy": "percentage",
                "versions": versions,
                "annotations": {"workers/message": message[:100]},
            },
        )
        return dict(answer.result or {})

    # dispatch namespaces

    async def ensure_namespace(self, name: str) -> None:
        path = f"{self.api.account_path}/workers/dispatch/namespaces"
        try:
            await self.api.call("GET", f"{path}/{quote(name, safe='')}")
        except Upstream as exc:
            if not is_not_found(exc):
                raise
            await self.api.call("POST", path, json_body={"name": name})


def active_versions(deployment: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """A deployment's versions as `[{version_id, percentage}]`, largest share first."""
    versions = [
        {"version_id": str(v["version_id"]), "percentage": float(v["percentage"])}
        for v in (deployment or {}).get("versions") or []
    ]
    return sorted(versions, key=lambda v: -v["percentage"])
