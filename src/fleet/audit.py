"""The fleet's audit: every create, deploy, rollback, rollout step, scale and delete is a row
in D1 (`fleet_audit`): who (the token's subject), when, what, from which version to which,
and the outcome. Rows are keyed by id, so an object's outbox can deliver one twice."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clock import rfc3339_ms
from ids import new_id
from ports import Database, Row, Statement, query


@dataclass(frozen=True, slots=True)
class Entry:
    actor: str
    action: str  # create, update, deploy, rollback, rollout.start, rollout.step, ...
    worker: str
    outcome: str  # ok, failed, rolled_back, promoted, ...
    from_version: str | None = None
    to_version: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def row(self, at_ms: int, entry_id: str | None = None) -> dict[str, Any]:
        return {
            "id": entry_id or new_id(at_ms, prefix="aud_"),
            "at": rfc3339_ms(at_ms),
            "actor": self.actor,
            "action": self.action,
            "worker": self.worker,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "outcome": self.outcome,
            "detail": json.dumps(dict(self.detail)),
        }


def statement(row: Mapping[str, Any]) -> Statement:
    columns = list(row)
    return Statement(
        f"INSERT INTO fleet_audit ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        " ON CONFLICT (id) DO NOTHING",
        tuple(row[c] for c in columns),
    )


async def record(db: Database, entry: Entry, at_ms: int) -> None:
    await db.batch([statement(entry.row(at_ms))])


async def recent(db: Database, *, worker: str | None, limit: int) -> list[Row]:
    where, params = ("WHERE worker = ?", [worker]) if worker else ("", [])
    rows = await query(
        db, f"SELECT * FROM fleet_audit {where} ORDER BY id DESC LIMIT ?", *params, limit
    )
    return [{**r, "detail": json.loads(r["detail"] or "{}")} for r in rows]
