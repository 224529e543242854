"""The local account's records as the store reads them back (immutable values)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ScriptRow:
    namespace: str
    name: str
    tag: str
    created_on: str
    modified_on: str
    script_settings: dict[str, Any]
    subdomain: dict[str, bool]


@dataclass(frozen=True, slots=True)
class VersionRow:
    id: str
    namespace: str
    script: str
    number: int
    created_on: str
    source: str
    metadata: dict[str, Any]
    etag: str
    runnable: bool
    reason: str | None

    @property
    def bindings(self) -> list[dict[str, Any]]:
        return list(self.metadata.get("bindings") or [])

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.metadata.get("annotations") or {})


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    id: str
    namespace: str
    script: str
    created_on: str
    source: str
    versions: list[dict[str, Any]]  # [{"version_id", "percentage"}]
    annotations: dict[str, str]


@dataclass(frozen=True, slots=True)
class NamespaceRow:
    name: str
    id: str
    created_on: str
    modified_on: str


def script_of(row: sqlite3.Row) -> ScriptRow:
    return ScriptRow(
        row["namespace"], row["name"], row["tag"], row["created_on"], row["modified_on"],
        json.loads(row["script_settings"]), json.loads(row["subdomain"]),
    )  # fmt: skip


def version_of(row: sqlite3.Row) -> VersionRow:
    return VersionRow(
        row["id"], row["namespace"], row["script"], row["number"], row["created_on"],
        row["source"], json.loads(row["metadata"]), row["etag"], bool(row["runnable"]),
        row["reason"],
    )  # fmt: skip


def deployment_of(row: sqlite3.Row) -> DeploymentRow:
    return DeploymentRow(
        row["id"], row["namespace"], row["script"], row["created_on"], row["source"],
        json.loads(row["versions"]), json.loads(row["annotations"]),
    )  # fmt: skip
