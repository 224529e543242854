"""Drift: what the account has that the inventory says otherwise (pure).

The inventory records each managed Worker as apiary last deployed it: its code's etag, its
bindings (names and types: secret values are never readable back), compatibility date,
limits and placement. `diff` compares that with the script's settings in the account now; a
change made outside apiary (the dashboard, wrangler, the API) is drift, reported field by
field. A script the inventory has never seen is imported, and one that is gone is `missing`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

FIELDS = ("etag", "bindings", "compatibility_date", "limits", "placement")


def bindings_shape(bindings: Sequence[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """Bindings as compared: name and type, sorted by name."""
    return sorted(
        ({"name": str(b.get("name")), "type": str(b.get("type"))} for b in bindings or []),
        key=lambda b: b["name"],
    )


def expected_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the inventory expects of a Worker, in the compared shape."""
    return {
        "etag": record.get("etag") or None,
        "bindings": bindings_shape(record.get("bindings")),
        "compatibility_date": record.get("compatibility_date") or None,
        "limits": dict(record.get("limits") or {}),
        "placement": dict(record.get("placement") or {}),
    }


def actual_of(script: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """What the account has, from its script listing and the script's settings."""
    return {
        "etag": script.get("etag") or None,
        "bindings": bindings_shape(settings.get("bindings")),
        "compatibility_date": settings.get("compatibility_date")
        or script.get("compatibility_date")
        or None,
        "limits": dict(settings.get("limits") or {}),
        "placement": dict(settings.get("placement") or {}),
    }


def diff(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each field whose value differs, with both values."""
    return [
        {"field": name, "expected": expected.get(name), "actual": actual.get(name)}
        for name in FIELDS
        if expected.get(name) != actual.get(name)
    ]


def changed_outside(last_deployed_at: str | None, modified_on: str | None) -> bool:
    """Whether the account's script changed after apiary last deployed it (RFC 3339 times
    compare as text once both are UTC)."""
    if not last_deployed_at or not modified_on:
        return False
    return modified_on[:19] > last_deployed_at[:19]
