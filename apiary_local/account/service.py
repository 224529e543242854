"""What the account does, behind its routes: uploads, deployments, deletions, and keeping the
Worker runner in step with the current deployments.

A change that alters what runs (a deployment, a deletion) is tried on workerd before it is
committed: a Worker that workerd will not start is refused with a 400 and nothing is stored,
and the Workers already running keep running. Changes are serialized by one lock, so the
store and the runner agree. `route(namespace, script)` is what the router reads per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from apiary_local.account import bindings, uploads
from apiary_local.account.envelope import BAD_BINDING, BAD_DEPLOYMENT, VALIDATION, ApiError
from apiary_local.account.rows import DeploymentRow, VersionRow
from apiary_local.account.runner import RunnerError, RunnerUnavailable, WorkerRunner, WorkerSpec
from apiary_local.account.shapes import now
from apiary_local.account.store import ACCOUNT, AccountStore
from logs import get_logger

log = get_logger("account")
DEFAULT_CPU_MS = 30_000  # Cloudflare's default CPU limit per invocation
MAX_DEPLOYMENT_VERSIONS = 2


@dataclass(frozen=True, slots=True)
class RoutedVersion:
    version_id: str
    percentage: float
    runnable: bool
    reason: str | None
    limit_ms: int


@dataclass(frozen=True, slots=True)
class Route:
    versions: tuple[RoutedVersion, ...]

    def get(self, version_id: str) -> RoutedVersion:
        return next(v for v in self.versions if v.version_id == version_id)


def check_deployment(versions: Any) -> list[dict[str, Any]]:
    """A deployment's versions: one or two distinct ids whose percentages sum to 100."""
    if not isinstance(versions, list) or not 1 <= len(versions) <= MAX_DEPLOYMENT_VERSIONS:
        raise ApiError(400, BAD_DEPLOYMENT, "a deployment has one or two versions")
    checked: list[dict[str, Any]] = []
    for item in versions:
        version_id = item.get("version_id") if isinstance(item, dict) else None
        percentage = item.get("percentage") if isinstance(item, dict) else None
        if (
            not isinstance(version_id, str)
            or not isinstance(percentage, int | float)
            or isinstance(percentage, bool)
        ):
            raise ApiError(400, BAD_DEPLOYMENT, "every version needs version_id and percentage")
        if not 0 <= percentage <= 100:
            raise ApiError(400, BAD_DEPLOYMENT, "a percentage is from 0 to 100")
        checked.append({"version_id": version_id, "percentage": float(percentage)})
    if len({v["version_id"] for v in checked}) != len(checked):
        raise ApiError(400, BAD_DEPLOYMENT, "a version appears twice in the deployment")
    total = sum(v["percentage"] for v in checked)
    if abs(total - 100.0) > 1e-9:
        raise ApiError(400, BAD_DEPLOYMENT, f"the percentages sum to {total:g}, not 100")
    return checked


def _etag(modules: Sequence[uploads.Module]) -> str:
    digest = hashlib.sha256()
    for module in modules:
        digest.update(module.name.encode() + b"\0" + module.content)
    return digest.hexdigest()


class AccountService:
    def __init__(self, store: AccountStore, runner: WorkerRunner) -> None:
        self.store = store
        self.runner = runner
        self._lock = asyncio.Lock()
        self._routes: dict[tuple[str, str], Route] = {}

    # what runs

    def route(self, namespace: str, script: str) -> Route | None:
        return self._routes.get((namespace, script))

    def _refresh_routes(self) -> None:
        routes: dict[tuple[str, str], Route] = {}
        for namespace in [ACCOUNT, *(n.name for n in self.store.namespaces())]:
            for script in self.store.scripts(namespace):
                deployment = self.store.current_deployment(namespace, script.name)
                if deployment is None:
                    continue
                routed = []
                for item in deployment.versions:
                    version = self.store.version(namespace, script.name, item["version_id"])
                    if version is None:
                        continue
                    limits = version.metadata.get("limits") or {}
                    routed.append(
                        RoutedVersion(
                            version.id, item["percentage"], version.runnable, version.reason,
                            int(limits.get("cpu_ms") or DEFAULT_CPU_MS),
                        )
                    )  # fmt: skip
                if routed:
                    routes[(namespace, script.name)] = Route(tuple(routed))
        self._routes = routes

    def _spec(self, version: VersionRow) -> WorkerSpec:
        return WorkerSpec(version.id, version.metadata, tuple(self.store.modules(version.id)))

    async def start(self) -> None:
        async with self._lock:
            self._refresh_routes()
            running = self.store.running()
            if running:
                try:
                    await self.runner.apply([self._spec(v) for v in running])
                except RunnerError:
                    log.exception("the deployed Workers could not be started")

    async def recover(self) -> None:
        """Starts the runner again if it died (the router calls this on a refused connection)."""
        async with self._lock:
            if not self.runner.running:
                running = self.store.running()
                if running:
                    await self.runner.apply([self._spec(v) for v in running])

    async def _try_on_runner(
        self, namespace: str, script: str, replacement: Sequence[WorkerSpec] | None
    ) -> None:
        """Runs the current set with `(namespace, script)`'s versions replaced (None: removed);
        a Worker workerd refuses raises a 400 and the set before keeps running."""
        keep = [
            self._spec(v)
            for v in self.store.running()
            if (v.namespace, v.script) != (namespace, script)
        ]
        try:
            await self.runner.apply(keep + list(replacement or []))
        except RunnerUnavailable as exc:
            raise ApiError(503, VALIDATION, str(exc)) from None
        except RunnerError as exc:
            raise ApiError(400, VALIDATION, f"the Worker failed to start: {exc}") from None

    # uploads and deployments

    def _check_upload(
        self,
        namespace: str,
        script: str,
        upload: uploads.Upload,
        *,
        strict_inherit: bool,
    ) -> tuple[dict[str, Any], uploads.Runnability]:
        runnability = uploads.check(upload)
        checked = bindings.check(upload.metadata.get("bindings"), runnable=runnability.runnable)
        previous = self.store.versions(namespace, script, limit=1)
        resolved = bindings.resolve(
            checked,
            previous[0].bindings if previous else [],
            keep_types=upload.metadata.get("keep_bindings"),
            strict=strict_inherit,
        )
        for binding in resolved:
            if (
                binding["type"] == "dispatch_namespace"
                and runnability.runnable
                and self.store.namespace(binding["namespace"]) is None
            ):
                raise ApiError(
                    400, BAD_BINDING, f"dispatch namespace {binding['namespace']!r} not found"
                )
        metadata = {**upload.metadata, "bindings": resolved}
        metadata.pop("keep_bindings", None)
        return metadata, runnability

    async def upload(
        self,
        namespace: str,
        script: str,
        upload: uploads.Upload,
        *,
        deploy: bool,
        source: str,
        strict_inherit: bool = False,
    ) -> tuple[VersionRow, DeploymentRow | None]:
        """Stores `upload` as a new version (checked first; nothing is stored if it fails) and,
        with `deploy`, deploys it at 100% once workerd runs it."""
        async with self._lock:
            metadata, runnability = self._check_upload(
                namespace, script, upload, strict_inherit=strict_inherit
            )
            annotations = {"workers/triggered_by": "upload", **(metadata.get("annotations") or {})}
            metadata["annotations"] = annotations
            version_id = str(uuid.uuid4())
            if deploy:
                spec = WorkerSpec(version_id, metadata, upload.modules)
                await self._try_on_runner(
                    namespace, script, [spec] if runnability.runnable else None
                )
            version, deployment = self.store.add_version(
                namespace,
                script,
                version_id=version_id,
                metadata=metadata,
                modules=upload.modules,
                etag=_etag(upload.modules),
                runnable=runnability.runnable,
                reason=runnability.reason,
                source=source,
                now=now(),
                deploy=deploy,
            )
            self._refresh_routes()
            return version, deployment

    async def deploy(
        self,
        namespace: str,
        script: str,
        versions: Any,
        *,
        annotations: dict[str, str],
        source: str,
    ) -> DeploymentRow:
        async with self._lock:
            checked = check_deployment(versions)
            found: list[VersionRow] = []
            for item in checked:
                version = self.store.version(namespace, script, item["version_id"])
                if version is None:
                    raise ApiError(
                        400,
                        BAD_DEPLOYMENT,
                        f"version {item['version_id']} is not a version of {script}",
                    )
                found.append(version)
            await self._try_on_runner(
                namespace, script, [self._spec(v) for v in found if v.runnable]
            )
            deployment = self.store.add_deployment(
                namespace, script, checked, annotations=annotations, source=source, now=now()
            )
            self._refresh_routes()
            return deployment

    async def delete_script(self, namespace: str, script: str) -> bool:
        async with self._lock:
            if self.store.script(namespace, script) is None:
                return False
            await self._try_on_runner(namespace, script, None)
            self.store.delete_script(namespace, script)
            self._refresh_routes()
            return True

    async def delete_namespace(self, name: str) -> bool:
        async with self._lock:
            keep = [self._spec(v) for v in self.store.running() if v.namespace != name]
            try:
                await self.runner.apply(keep)
            except RunnerError as exc:
                raise ApiError(500, VALIDATION, str(exc)) from None
            deleted = self.store.delete_namespace(name)
            self._refresh_routes()
            return deleted

    async def patch_settings(
        self, namespace: str, script: str, patch: dict[str, Any], *, source: str
    ) -> tuple[VersionRow, DeploymentRow | None]:
        """Versioned settings (bindings, compatibility, limits...): a new version of the
        deployed code with the new settings, deployed at 100%, as Cloudflare does."""
        async with self._lock:
            deployment = self.store.current_deployment(namespace, script)
            if deployment is None:
                raise ApiError(400, VALIDATION, f"{script} has no deployment to change")
            base_id = max(deployment.versions, key=lambda v: v["percentage"])["version_id"]
            base = self.store.version(namespace, script, base_id)
            assert base is not None
            metadata = dict(base.metadata)
            for key in ("compatibility_date", "compatibility_flags", "limits", "placement"):
                if key in patch:
                    metadata[key] = patch[key]
            if "bindings" in patch:
                checked = bindings.check(patch["bindings"], runnable=base.runnable)
                metadata["bindings"] = bindings.resolve(
                    checked, base.bindings, keep_types=None, strict=False
                )
            modules = tuple(self.store.modules(base.id))
            version_id = str(uuid.uuid4())
            if base.runnable:
                await self._try_on_runner(
                    namespace, script, [WorkerSpec(version_id, metadata, modules)]
                )
            version, deployed = self.store.add_version(
                namespace, script, version_id=version_id, metadata=metadata, modules=modules,
                etag=base.etag, runnable=base.runnable, reason=base.reason, source=source,
                now=now(), deploy=True,
            )  # fmt: skip
            self._refresh_routes()
            return version, deployed
