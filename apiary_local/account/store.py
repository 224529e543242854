"""The local account's scripts, versions, deployments and dispatch namespaces, in one SQLite
file (`STATE/account/account.sqlite`).

Every change is one transaction committed before its call returns (WAL, synchronous=FULL, like
`apiary_local.d1`), so an acknowledged upload survives SIGKILL. A script belongs to the
account (namespace `""`) or to a dispatch namespace. Every upload is a version; a deployment
names one or two versions with percentages; a script's current deployment is its newest.
Versions and modules are immutable once written.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from apiary_local.account.rows import (
    DeploymentRow,
    NamespaceRow,
    ScriptRow,
    VersionRow,
    deployment_of,
    script_of,
    version_of,
)
from apiary_local.account.uploads import Module
from apiary_local.d1 import connect

ACCOUNT = ""  # the namespace of the account's own scripts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scripts(
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    tag TEXT NOT NULL,
    created_on TEXT NOT NULL,
    modified_on TEXT NOT NULL,
    script_settings TEXT NOT NULL DEFAULT '{}',
    subdomain TEXT NOT NULL DEFAULT '{"enabled": true, "previews_enabled": true}',
    PRIMARY KEY(namespace, name)
);
CREATE TABLE IF NOT EXISTS versions(
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    script TEXT NOT NULL,
    number INTEGER NOT NULL,
    created_on TEXT NOT NULL,
    source TEXT NOT NULL,
    metadata TEXT NOT NULL,
    etag TEXT NOT NULL,
    runnable INTEGER NOT NULL,
    reason TEXT,
    FOREIGN KEY(namespace, script) REFERENCES scripts(namespace, name) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS versions_by_script ON versions(namespace, script, number);
CREATE TABLE IF NOT EXISTS modules(
    version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY(version_id, name)
);
CREATE TABLE IF NOT EXISTS deployments(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL,
    script TEXT NOT NULL,
    created_on TEXT NOT NULL,
    source TEXT NOT NULL,
    versions TEXT NOT NULL,
    annotations TEXT NOT NULL,
    FOREIGN KEY(namespace, script) REFERENCES scripts(namespace, name) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS namespaces(
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    created_on TEXT NOT NULL,
    modified_on TEXT NOT NULL
);
"""


class AccountStore:
    def __init__(self, path: Path) -> None:
        self.conn = connect(path)
        self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # scripts

    def script(self, namespace: str, name: str) -> ScriptRow | None:
        row = self.conn.execute(
            "SELECT * FROM scripts WHERE namespace = ? AND name = ?", (namespace, name)
        ).fetchone()
        return script_of(row) if row else None

    def scripts(self, namespace: str) -> list[ScriptRow]:
        rows = self.conn.execute(
            "SELECT * FROM scripts WHERE namespace = ? ORDER BY name", (namespace,)
        ).fetchall()
        return [script_of(r) for r in rows]

    def delete_script(self, namespace: str, name: str) -> bool:
        with self._transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM scripts WHERE namespace = ? AND name = ?", (namespace, name)
            )
        return cursor.rowcount > 0

    def update_script(
        self,
        namespace: str,
        name: str,
        *,
        now: str,
        script_settings: dict[str, Any] | None = None,
        subdomain: dict[str, bool] | None = None,
    ) -> None:
        with self._transaction() as conn:
            if script_settings is not None:
                conn.execute(
                    "UPDATE scripts SET script_settings = ?, modified_on = ? "
                    "WHERE namespace = ? AND name = ?",
                    (json.dumps(script_settings), now, namespace, name),
                )
            if subdomain is not None:
                conn.execute(
                    "UPDATE scripts SET subdomain = ? WHERE namespace = ? AND name = ?",
                    (json.dumps(subdomain), namespace, name),
                )

    # versions

    def add_version(
        self,
        namespace: str,
        script: str,
        *,
        version_id: str,
        metadata: dict[str, Any],
        modules: Sequence[Module],
        etag: str,
        runnable: bool,
        reason: str | None,
        source: str,
        now: str,
        deploy: bool,
    ) -> tuple[VersionRow, DeploymentRow | None]:
        """Writes a version (and the script on first upload) and, with `deploy`, a deployment
        of it at 100%, in one transaction."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO scripts(namespace, name, tag, created_on, modified_on) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(namespace, name) "
                "DO UPDATE SET modified_on = excluded.modified_on",
                (namespace, script, uuid.uuid4().hex, now, now),
            )
            (number,) = conn.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM versions "
                "WHERE namespace = ? AND script = ?",
                (namespace, script),
            ).fetchone()
            conn.execute(
                "INSERT INTO versions(id, namespace, script, number, created_on, source, "
                "metadata, etag, runnable, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    version_id, namespace, script, number, now, source, json.dumps(metadata),
                    etag, int(runnable), reason,
                ),
            )  # fmt: skip
            conn.executemany(
                "INSERT INTO modules(version_id, position, name, content_type, content) "
                "VALUES (?, ?, ?, ?, ?)",
                [(version_id, i, m.name, m.content_type, m.content) for i, m in enumerate(modules)],
            )
            deployment = None
            if deploy:
                deployment = self._insert_deployment(
                    conn,
                    namespace,
                    script,
                    [{"version_id": version_id, "percentage": 100.0}],
                    annotations={},
                    source=source,
                    now=now,
                )
        version = self.version(namespace, script, version_id)
        assert version is not None
        return version, deployment

    def version(self, namespace: str, script: str, version_id: str) -> VersionRow | None:
        row = self.conn.execute(
            "SELECT * FROM versions WHERE id = ? AND namespace = ? AND script = ?",
            (version_id, namespace, script),
        ).fetchone()
        return version_of(row) if row else None

    def versions(
        self, namespace: str, script: str, *, offset: int = 0, limit: int = -1
    ) -> list[VersionRow]:
        """Newest first."""
        rows = self.conn.execute(
            "SELECT * FROM versions WHERE namespace = ? AND script = ? "
            "ORDER BY number DESC LIMIT ? OFFSET ?",
            (namespace, script, limit, offset),
        ).fetchall()
        return [version_of(r) for r in rows]

    def count_versions(self, namespace: str, script: str) -> int:
        (count,) = self.conn.execute(
            "SELECT COUNT(*) FROM versions WHERE namespace = ? AND script = ?",
            (namespace, script),
        ).fetchone()
        return int(count)

    def modules(self, version_id: str) -> list[Module]:
        rows = self.conn.execute(
            "SELECT name, content_type, content FROM modules WHERE version_id = ? "
            "ORDER BY position",
            (version_id,),
        ).fetchall()
        return [Module(r["name"], r["content_type"], bytes(r["content"])) for r in rows]

    # deployments

    @staticmethod
    def _insert_deployment(
        conn: sqlite3.Connection,
        namespace: str,
        script: str,
        versions: list[dict[str, Any]],
        *,
        annotations: dict[str, str],
        source: str,
        now: str,
    ) -> DeploymentRow:
        deployment_id = str(uuid.uuid4())
        conn.execute(
            "INSERT INTO deployments(id, namespace, script, created_on, source, versions, "
            "annotations) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                deployment_id, namespace, script, now, source, json.dumps(versions),
                json.dumps(annotations),
            ),
        )  # fmt: skip
        conn.execute(
            "UPDATE scripts SET modified_on = ? WHERE namespace = ? AND name = ?",
            (now, namespace, script),
        )
        return DeploymentRow(deployment_id, namespace, script, now, source, versions, annotations)

    def add_deployment(
        self,
        namespace: str,
        script: str,
        versions: list[dict[str, Any]],
        *,
        annotations: dict[str, str],
        source: str,
        now: str,
    ) -> DeploymentRow:
        with self._transaction() as conn:
            return self._insert_deployment(
                conn, namespace, script, versions, annotations=annotations, source=source, now=now
            )

    def deployments(self, namespace: str, script: str) -> list[DeploymentRow]:
        """Newest first."""
        rows = self.conn.execute(
            "SELECT * FROM deployments WHERE namespace = ? AND script = ? ORDER BY seq DESC",
            (namespace, script),
        ).fetchall()
        return [deployment_of(r) for r in rows]

    def current_deployment(self, namespace: str, script: str) -> DeploymentRow | None:
        row = self.conn.execute(
            "SELECT * FROM deployments WHERE namespace = ? AND script = ? "
            "ORDER BY seq DESC LIMIT 1",
            (namespace, script),
        ).fetchone()
        return deployment_of(row) if row else None

    def delete_deployment(self, namespace: str, script: str, deployment_id: str) -> bool:
        with self._transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM deployments WHERE id = ? AND namespace = ? AND script = ?",
                (deployment_id, namespace, script),
            )
        return cursor.rowcount > 0

    def running(self) -> list[VersionRow]:
        """Every runnable version in a current deployment, namespaces included."""
        rows = self.conn.execute(
            "SELECT d.versions FROM deployments d JOIN ("
            "  SELECT namespace, script, MAX(seq) AS seq FROM deployments "
            "  GROUP BY namespace, script) latest ON d.seq = latest.seq"
        ).fetchall()
        ids = [v["version_id"] for row in rows for v in json.loads(row["versions"])]
        found = [
            self.conn.execute("SELECT * FROM versions WHERE id = ?", (i,)).fetchone() for i in ids
        ]
        return [version_of(r) for r in found if r is not None and r["runnable"]]

    # dispatch namespaces

    def add_namespace(self, name: str, *, now: str) -> NamespaceRow:
        row = NamespaceRow(name, str(uuid.uuid4()), now, now)
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO namespaces(name, id, created_on, modified_on) VALUES (?, ?, ?, ?)",
                (row.name, row.id, row.created_on, row.modified_on),
            )
        return row

    def namespace(self, name: str) -> NamespaceRow | None:
        row = self.conn.execute("SELECT * FROM namespaces WHERE name = ?", (name,)).fetchone()
        return NamespaceRow(*row) if row else None

    def namespaces(self) -> list[NamespaceRow]:
        rows = self.conn.execute("SELECT * FROM namespaces ORDER BY created_on").fetchall()
        return [NamespaceRow(*r) for r in rows]

    def delete_namespace(self, name: str) -> bool:
        with self._transaction() as conn:
            conn.execute("DELETE FROM scripts WHERE namespace = ?", (name,))
            cursor = conn.execute("DELETE FROM namespaces WHERE name = ?", (name,))
        return cursor.rowcount > 0
