"""The bindings of an upload's metadata: checked, inherited, and split into what workerd gets.

Locally a Worker can have plain-text, secret-text and JSON bindings (they reach `env` as they
are) and dispatch-namespace bindings (to the Workers of a namespace of this account). Every
other type Cloudflare knows is refused at upload with a message naming it, because a Worker
that starts without a binding it expects fails later and less clearly; an unknown type is
refused as Cloudflare refuses it. `inherit` bindings and `keep_bindings` take bindings from
the version before, as Cloudflare does for secrets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from apiary_local.account.envelope import BAD_BINDING, ApiError

RUNNABLE = frozenset({"plain_text", "secret_text", "json", "dispatch_namespace"})
KNOWN = RUNNABLE | frozenset(
    {
        "ai", "analytics_engine", "assets", "browser", "d1", "data_blob",
        "durable_object_namespace", "hyperdrive", "images", "inherit", "kv_namespace",
        "mtls_certificate", "pipelines",
        "queue", "r2_bucket", "ratelimit", "secret_key", "secrets_store_secret", "send_email",
        "service", "tail_consumer", "text_blob", "vectorize", "version_metadata", "wasm_module",
        "workflow", "worker_loader", "vpc_service", "media", "ai_search",
    }
)  # fmt: skip
# The field each runnable type needs, with its type.
_FIELDS: dict[str, tuple[str, type | None]] = {
    "plain_text": ("text", str),
    "secret_text": ("text", str),
    "json": ("json", None),
    "dispatch_namespace": ("namespace", str),
}
_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,127}$")


def _refuse(message: str) -> ApiError:
    return ApiError(400, BAD_BINDING, message)


def check(bindings: Any, *, runnable: bool) -> list[dict[str, Any]]:
    """The bindings list, checked: every binding has a name and a known type, and (for a
    Worker that will run here) a type this machine honours, with its field."""
    if bindings is None:
        return []
    if not isinstance(bindings, list):
        raise _refuse("bindings must be a list")
    seen: set[str] = set()
    for binding in bindings:
        if not isinstance(binding, dict):
            raise _refuse("every binding must be an object")
        name, kind = binding.get("name"), binding.get("type")
        if not isinstance(name, str) or not _NAME.match(name):
            raise _refuse(f"binding name {name!r} is not a valid JavaScript identifier")
        if name in seen:
            raise _refuse(f"binding {name} is defined twice")
        seen.add(name)
        if kind not in KNOWN:
            raise _refuse(f"binding {name} has an unknown type {kind!r}")
        if kind == "inherit" or not runnable:
            continue
        if kind not in RUNNABLE:
            supported = ", ".join(sorted(RUNNABLE))
            raise _refuse(
                f"binding {name} of type {kind} cannot be honoured by the local account "
                f"(it runs {supported})"
            )
        field, field_type = _FIELDS[kind]
        if field not in binding or (field_type and not isinstance(binding[field], field_type)):
            raise _refuse(f"binding {name} of type {kind} needs {field}")
    return list(bindings)


def resolve(
    bindings: list[dict[str, Any]],
    previous: Sequence[dict[str, Any]],
    *,
    keep_types: Any,
    strict: bool,
) -> list[dict[str, Any]]:
    """`inherit` bindings replaced by the previous version's binding of that name (refused
    under `bindings_inherit=strict` when there is none, else dropped), then the previous
    bindings of the `keep_bindings` types that the upload does not redefine."""
    before = {b["name"]: b for b in previous}
    resolved: list[dict[str, Any]] = []
    for binding in bindings:
        if binding["type"] != "inherit":
            resolved.append(binding)
            continue
        source = before.get(binding.get("old_name") or binding["name"])
        if source is None:
            if strict:
                raise _refuse(f"binding {binding['name']} inherits from nothing")
            continue
        resolved.append({**source, "name": binding["name"]})
    if keep_types is not None and not (
        isinstance(keep_types, list) and all(isinstance(t, str) for t in keep_types)
    ):
        raise _refuse("keep_bindings must be a list of binding types")
    names = {b["name"] for b in resolved}
    for binding in previous:
        if binding["type"] in (keep_types or []) and binding["name"] not in names:
            resolved.append(binding)
    return resolved


def public(binding: dict[str, Any]) -> dict[str, Any]:
    """A binding as the API shows it: a secret's text never leaves."""
    if binding["type"] == "secret_text":
        return {"name": binding["name"], "type": "secret_text"}
    return dict(binding)
