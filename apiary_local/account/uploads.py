"""A Worker upload as Cloudflare receives it: a multipart body with a `metadata` part (JSON)
and one part per module, keyed by the part's filename.

wrangler names each module part after its file and the SDK names them all `files`: either way
the filename is the module's name. `parse` reads the body (python-multipart), `check` decides
whether the metadata describes a Worker; both raise `ApiError` (400) and store nothing.
https://developers.cloudflare.com/workers/configuration/multipart-upload-metadata/
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError

from apiary_local.account.envelope import VALIDATION, ApiError

# Part content type -> the module type workerd (miniflare) loads it as; None: stored, not run.
MODULE_TYPES: dict[str, str | None] = {
    "application/javascript+module": "ESModule",
    "text/javascript+module": "ESModule",
    "application/javascript": "CommonJS",
    "text/javascript": "CommonJS",
    "application/wasm": "CompiledWasm",
    "text/plain": "Text",
    "application/octet-stream": "Data",
    "application/source-map": None,
    "text/x-python": None,
    "text/x-python-requirement": None,
}
PYTHON_TYPES = frozenset({"text/x-python", "text/x-python-requirement"})
MAX_MODULES = 1000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_CPU_MS = 300_000


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Upload:
    metadata: dict[str, Any]
    modules: tuple[Module, ...]

    def module(self, name: str) -> Module | None:
        return next((m for m in self.modules if m.name == name), None)


def _invalid(message: str) -> ApiError:
    return ApiError(400, VALIDATION, message)


def _boundary(content_type: str) -> bytes:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise _invalid("a Worker upload must be multipart/form-data")
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary" and value:
            return value.strip('"').encode("latin-1")
    raise _invalid("the multipart body has no boundary")


def _disposition(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in value.split(";")[1:]:
        key, _, raw = item.strip().partition("=")
        params[key.lower()] = raw.strip().strip('"')
    return params


def parts(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    parts: list[tuple[dict[str, str], bytes]] = []
    headers: dict[str, str] = {}
    field: list[bytes] = []
    value: list[bytes] = []
    data: list[bytes] = []

    def header_end() -> None:
        headers[b"".join(field).decode("latin-1").lower()] = b"".join(value).decode("latin-1")
        field.clear()
        value.clear()

    def part_begin() -> None:
        headers.clear()
        data.clear()

    def part_end() -> None:
        parts.append((dict(headers), b"".join(data)))

    callbacks: Any = {
        "on_part_begin": part_begin,
        "on_header_field": lambda b, s, e: field.append(b[s:e]),
        "on_header_value": lambda b, s, e: value.append(b[s:e]),
        "on_header_end": header_end,
        "on_part_data": lambda b, s, e: data.append(b[s:e]),
        "on_part_end": part_end,
    }
    parser = MultipartParser(_boundary(content_type), callbacks)
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise _invalid(f"the multipart body cannot be read: {exc}") from None
    return parts


def parse(content_type: str, body: bytes) -> Upload:
    metadata: dict[str, Any] | None = None
    modules: list[Module] = []
    for headers, content in parts(content_type, body):
        disposition = _disposition(headers.get("content-disposition", ""))
        name, filename = disposition.get("name", ""), disposition.get("filename")
        part_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if name == "metadata" and filename in (None, "", "blob"):
            try:
                metadata = json.loads(content)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise _invalid("the metadata part is not JSON") from None
            continue
        module_name = filename or name
        if not module_name:
            raise _invalid("every module part needs a filename")
        if not _safe_name(module_name):
            raise _invalid(f"module name {module_name!r} is not a relative path inside the Worker")
        if part_type not in MODULE_TYPES:
            known = ", ".join(sorted(MODULE_TYPES))
            raise _invalid(f"module {module_name!r} has content type {part_type!r} ({known})")
        if any(m.name == module_name for m in modules):
            raise _invalid(f"module {module_name!r} is uploaded twice")
        modules.append(Module(module_name, part_type, content))
    if not isinstance(metadata, dict):
        raise _invalid("the upload needs a metadata part holding a JSON object")
    if len(modules) > MAX_MODULES:
        raise _invalid(f"at most {MAX_MODULES} modules")
    return Upload(metadata, tuple(modules))


def _safe_name(name: str) -> bool:
    """Module names become files of the runner: no absolute paths, no `..`, nothing of ours."""
    parts = name.split("/")
    return (
        len(name) <= 512
        and not name.startswith("/")
        and "\\" not in name
        and "\0" not in name
        and all(part not in ("", ".", "..") for part in parts)
        and not name.startswith("__apiary")
    )


@dataclass(frozen=True, slots=True)
class Runnability:
    runnable: bool
    reason: str | None = None


def check(upload: Upload) -> Runnability:
    """Raises `ApiError` if the metadata does not describe a Worker; else says whether this
    machine can run it (a Python Worker or a service-worker script is stored, not run)."""
    metadata = upload.metadata
    main, body_part = metadata.get("main_module"), metadata.get("body_part")
    if not isinstance(main, str) and not isinstance(body_part, str):
        raise _invalid("metadata needs main_module (ES modules) or body_part (service worker)")
    entry = main if isinstance(main, str) else body_part
    module = upload.module(str(entry))
    if module is None:
        raise _invalid(f"the main module {entry!r} is not among the uploaded modules")
    date = metadata.get("compatibility_date")
    if date is not None and (not isinstance(date, str) or not _DATE.match(date)):
        raise _invalid("compatibility_date must be YYYY-MM-DD")
    flags = metadata.get("compatibility_flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise _invalid("compatibility_flags must be a list of strings")
    cpu_ms = (metadata.get("limits") or {}).get("cpu_ms")
    if cpu_ms is not None and (type(cpu_ms) is not int or not 1 <= cpu_ms <= MAX_CPU_MS):
        raise _invalid(f"limits.cpu_ms must be an integer from 1 to {MAX_CPU_MS}")
    if module.content_type in PYTHON_TYPES or "python_workers" in flags:
        return Runnability(
            False,
            "Python Workers cannot run locally: workerd fetches its Pyodide bundle from the "
            "internet, which this machine cannot reach",
        )
    if not isinstance(main, str):
        return Runnability(False, "service-worker scripts (body_part) are not run locally")
    if module.content_type not in ("application/javascript+module", "text/javascript+module"):
        raise _invalid(f"the main module {main!r} must be a JavaScript module")
    return Runnability(True)
