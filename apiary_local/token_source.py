"""Where the CLI's commands read a token from: an environment variable or a private file.

Never the command line: every user of the machine can read another's argv (`ps`). A file must
be mode 600 or stricter, as ssh insists for a key.
"""

from __future__ import annotations

import os
from pathlib import Path


class TokenError(SystemExit):
    """Why no token could be read (its message is printed, the exit status is 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"apiary: {message}")


def read_token(env_var: str, token_file: Path | None, *, required: bool = True) -> str | None:
    if token_file is not None:
        try:
            mode = token_file.stat().st_mode
        except OSError as exc:
            raise TokenError(f"cannot read {token_file}: {exc.strerror}") from None
        if mode & 0o077:
            raise TokenError(f"{token_file} is readable by others: chmod 600 it")
        return token_file.read_text().strip()
    token = os.environ.get(env_var, "").strip()
    if not token and required:
        raise TokenError(f"set {env_var} or pass a token file")
    return token or None
