"""Store rows as Cloudflare's JSON objects (the shapes the SDK's models and wrangler read)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apiary_local.account import bindings
from apiary_local.account.rows import DeploymentRow, NamespaceRow, ScriptRow, VersionRow

LOCAL_NOTE = "apiary_local"  # the one extra key: whether this machine can run the Worker


def now() -> str:
    """Cloudflare's timestamp format: RFC 3339, UTC, microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def runnability(version: VersionRow | None) -> dict[str, Any]:
    if version is None:
        return {"runnable": False, "reason": "no version is deployed"}
    return {"runnable": version.runnable, "reason": version.reason}


def script(
    row: ScriptRow, latest: VersionRow | None, *, deployed: VersionRow | None
) -> dict[str, Any]:
    metadata = latest.metadata if latest else {}
    settings = row.script_settings
    return {
        "id": row.name,
        "tag": row.tag,
        "etag": latest.etag if latest else "",
        "handlers": ["fetch"],
        "named_handlers": [],
        "created_on": row.created_on,
        "modified_on": row.modified_on,
        "compatibility_date": metadata.get("compatibility_date") or "",
        "compatibility_flags": list(metadata.get("compatibility_flags") or []),
        "usage_model": "standard",
        "has_modules": "main_module" in metadata,
        "has_assets": False,
        "last_deployed_from": latest.source if latest else "api",
        "logpush": bool(settings.get("logpush", False)),
        "tags": list(settings.get("tags") or []),
        "tail_consumers": list(settings.get("tail_consumers") or []),
        LOCAL_NOTE: runnability(deployed),
    }


def version_item(version: VersionRow) -> dict[str, Any]:
    return {
        "id": version.id,
        "number": version.number,
        "metadata": {
            "author_email": "local@apiary.invalid",
            "author_id": "local",
            "created_on": version.created_on,
            "modified_on": version.created_on,
            "hasPreview": False,
            "source": version.source,
        },
        "annotations": version.annotations,
    }


def version_full(version: VersionRow) -> dict[str, Any]:
    metadata = version.metadata
    return {
        **version_item(version),
        "resources": {
            "bindings": [bindings.public(b) for b in version.bindings],
            "script": {
                "etag": version.etag,
                "handlers": ["fetch"],
                "last_deployed_from": version.source,
            },
            "script_runtime": {
                "compatibility_date": metadata.get("compatibility_date") or "",
                "compatibility_flags": list(metadata.get("compatibility_flags") or []),
                "usage_model": "standard",
                "limits": dict(metadata.get("limits") or {}),
            },
        },
        "startup_time_ms": 0,
        LOCAL_NOTE: runnability(version),
    }


def deployment(row: DeploymentRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "created_on": row.created_on,
        "source": row.source,
        "strategy": "percentage",
        "versions": row.versions,
        "author_email": "local@apiary.invalid",
        "annotations": row.annotations,
    }


def settings(version: VersionRow, row: ScriptRow) -> dict[str, Any]:
    """`scripts/{name}/settings`: the deployed version's settings and the script's."""
    metadata = version.metadata
    answer = {
        "bindings": [bindings.public(b) for b in version.bindings],
        "compatibility_date": metadata.get("compatibility_date") or "",
        "compatibility_flags": list(metadata.get("compatibility_flags") or []),
        "limits": dict(metadata.get("limits") or {}),
        "usage_model": "standard",
        **script_settings(row),
    }
    if metadata.get("placement"):  # Cloudflare leaves it out when none is set
        answer["placement"] = metadata["placement"]
    return answer


def script_settings(row: ScriptRow) -> dict[str, Any]:
    settings = row.script_settings
    return {
        "logpush": bool(settings.get("logpush", False)),
        "observability": settings.get("observability") or {"enabled": False},
        "tags": list(settings.get("tags") or []),
        "tail_consumers": list(settings.get("tail_consumers") or []),
    }


def namespace(row: NamespaceRow, script_count: int) -> dict[str, Any]:
    return {
        "namespace_id": row.id,
        "namespace_name": row.name,
        "created_on": row.created_on,
        "modified_on": row.modified_on,
        "created_by": "local",
        "modified_by": "local",
        "script_count": script_count,
        "trusted_workers": False,
    }


def page_info(page: int, per_page: int, count: int, total: int) -> dict[str, int]:
    return {"page": page, "per_page": per_page, "count": count, "total_count": total}
