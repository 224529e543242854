"""A Worker upload as Cloudflare's API takes it: `multipart/form-data` with a `metadata` part
(JSON) and one part per module, named and filed under the module's name.
https://developers.cloudflare.com/workers/configuration/multipart-upload-metadata/
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

# By extension: the content type Cloudflare reads a module part as.
MODULE_TYPES = {
    ".js": "application/javascript+module",
    ".mjs": "application/javascript+module",
    ".cjs": "application/javascript",
    ".py": "text/x-python",
    ".wasm": "application/wasm",
    ".txt": "text/plain",
    ".html": "text/plain",
    ".json": "application/json",
}


def module_type(name: str) -> str:
    dot = name.rfind(".")
    return MODULE_TYPES.get(name[dot:].lower() if dot >= 0 else "", "application/octet-stream")


def _part(boundary: str, name: str, filename: str | None, content_type: str, data: bytes) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        f"Content-Type: {content_type}\r\n\r\n"
    )
    return head.encode() + data + b"\r\n"


def encode(
    json_parts: Mapping[str, Any], modules: Mapping[str, str] | None = None
) -> tuple[bytes, str]:
    """The body and its content type: each of `json_parts` as a JSON part (`metadata`,
    `settings`), then each module as a file part."""
    boundary = f"apiary-{secrets.token_hex(12)}"
    body = b"".join(
        _part(boundary, name, None, "application/json", json.dumps(value).encode())
        for name, value in json_parts.items()
    )
    for filename, source in (modules or {}).items():
        if '"' in filename or "\r" in filename or "\n" in filename:
            raise ValueError(f"a module name cannot hold quotes or line breaks: {filename!r}")
        body += _part(boundary, filename, filename, module_type(filename), source.encode())
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
