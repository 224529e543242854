"""Worker templates, kept in R2 (`templates/{name}.json`: the modules and default bindings)
and listed from D1 (`worker_templates`), and the deploys made from them."""

from __future__ import annotations

import json
from typing import Any

from clock import rfc3339
from errors import InvalidInput, NotFound
from fleet.models import TemplateIn
from fleet.settings import TEMPLATES_BUCKET, TEMPLATES_PREFIX
from ports import Row, first, query
from services import Services


def key_of(name: str) -> str:
    return f"{TEMPLATES_PREFIX}{name}.json"


async def save(services: Services, body: TemplateIn) -> dict[str, Any]:
    key = key_of(body.name)
    blob = {
        "name": body.name,
        "type": body.type,
        "main_module": body.main_module,
        "modules": body.modules,
        "default_bindings": [b.model_dump() for b in body.default_bindings],
    }
    await services.bucket(TEMPLATES_BUCKET).put(key, json.dumps(blob).encode(), "application/json")
    now = rfc3339(services.clock.now())
    # The bindings listed in D1 are names and types only: a default secret stays in R2.
    shape = [{"name": b.name, "type": b.type} for b in body.default_bindings]
    await services.database.execute(
        "INSERT INTO worker_templates (name, type, r2_key, main_module, modules,"
        " default_bindings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET type = excluded.type, r2_key = excluded.r2_key,"
        " main_module = excluded.main_module, modules = excluded.modules, default_bindings ="
        " excluded.default_bindings, updated_at = excluded.updated_at",
        body.name, body.type, key, body.main_module, json.dumps(sorted(body.modules)),
        json.dumps(shape), now, now,
    )  # fmt: skip
    return {"name": body.name, "type": body.type, "r2_key": key, "main_module": body.main_module,
            "modules": sorted(body.modules), "default_bindings": shape}  # fmt: skip


def _listed(row: Row) -> dict[str, Any]:
    return {**row, "modules": json.loads(row["modules"]),
            "default_bindings": json.loads(row["default_bindings"])}  # fmt: skip


async def listing(services: Services) -> list[dict[str, Any]]:
    rows = await query(services.database, "SELECT * FROM worker_templates ORDER BY name")
    return [_listed(r) for r in rows]


async def load(services: Services, r2_key: str) -> dict[str, Any]:
    """A template's blob from R2 (only under `templates/`: no other object is a template)."""
    if not r2_key.startswith(TEMPLATES_PREFIX) or ".." in r2_key:
        raise InvalidInput(f"templates live under {TEMPLATES_PREFIX}: {r2_key!r} is not one")
    data = await services.bucket(TEMPLATES_BUCKET).get(r2_key)
    if data is None:
        raise NotFound(f"no template at {r2_key}")
    try:
        blob = json.loads(data)
    except ValueError:
        raise InvalidInput(f"{r2_key} is not a template") from None
    parsed = TemplateIn.model_validate(blob)  # a blob edited in R2 is checked like a new one
    return parsed.model_dump()


async def load_named(services: Services, name: str) -> dict[str, Any]:
    row = await first(services.database, "SELECT r2_key FROM worker_templates WHERE name = ?",
                      name)  # fmt: skip
    if row is None:
        raise NotFound(f"no template named {name!r}")
    return await load(services, row["r2_key"])
