"""The local account's bearer token when none is configured.

With `CF_API_TOKEN` unset, apiary dev makes one (32 random bytes, URL-safe), uses it for its
own calls (apiary's config sees it as `CF_API_TOKEN`) and keeps it in `STATE/local-token`,
mode 600, so that wrangler and SDK users on this machine can read it. The file is reused on
the next start (delete it to get a new token). The token is never printed or logged: apiary
dev prints the file's path.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_NAME = "local-token"
_MIN_LENGTH = 32


def path_in(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def load_or_create(state_dir: Path) -> str:
    path = path_in(state_dir)
    try:
        token = path.read_text().strip()
        if len(token) >= _MIN_LENGTH and path.stat().st_mode & 0o077 == 0:
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    state_dir.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(staging, 0o600)
    os.replace(staging, path)
    return token
