"""An object's one document: JSON in a single-row table, versioned, written only when changed.

Most objects keep their state as one document (a task, a server's health, a browser run, a
swarm's settings and bookkeeping) plus rows for what grows (attempts, devices, chunks). The
document carries a `version` that `save` bumps, so each write is distinguishable downstream (a
D1 projection upserts only a newer version); `save(doc, new_version=False)` keeps it for a
document whose version means something else (a swarm's is the broadcast version). A save that
would write what is already stored writes nothing: most events change nothing durable.
"""

from __future__ import annotations

import json
from typing import Any

from ports import ObjectStorage

SCHEMA = "CREATE TABLE IF NOT EXISTS doc (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT)"

type Doc = dict[str, Any]


class Document:
    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage
        self._stored: str | None = None  # as last read or written

    def load(self) -> Doc | None:
        rows = self.storage.exec("SELECT body FROM doc WHERE id = 1")
        self._stored = rows[0]["body"] if rows else None
        return None if self._stored is None else dict(json.loads(self._stored))

    def save(self, doc: Doc, *, new_version: bool = True) -> None:
        if new_version:
            doc["version"] = int(doc.get("version", 0)) + 1
        text = json.dumps(doc, separators=(",", ":"))
        if text == self._stored:
            return
        self.storage.exec(
            "INSERT INTO doc (id, body) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET"
            " body = excluded.body",
            text,
        )
        self._stored = text

    def delete(self) -> None:
        self.storage.exec("DELETE FROM doc")
        self._stored = None
