"""Stored credentials and the sites they are bound to.

`BROWSER_CREDENTIALS` is a secret: JSON `{name: {username, password, origins: [...]}}`. A
credential is typed only into pages of its own origins, so whoever may write a check (scope
`browser_tests:write`) still cannot send it anywhere else. `plan_refusal` judges a check's
planned steps before any browser starts:

- a `fill` of a secret (`secret: "name.password"`), or a login with `name`, happens on a page
  whose origin (the last `goto`) is one of the credential's origins;
- after a secret was filled, a `goto` may only go to those origins (the step runner also blocks
  any other navigation the page itself makes, a form submitting elsewhere for one);
- after a secret was filled, no screenshot is taken unless the check opts in
  (`screenshots_after_secrets`), because a screenshot shows whatever the page shows.

What reaches a run's result is scrubbed of every form of the credential's values (as typed,
URL- and form-encoded, base64, and HTTP Basic `username:password`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from logs import encoded_forms, register_secrets

_DEFAULT_PORTS = {"http": 80, "https": 443}


class CredentialError(ValueError):
    """A credential is missing, malformed, or may not be used where a check wants it."""


class Credential(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=1000)
    password: str = Field(min_length=1, max_length=1000)
    origins: list[str] = Field(min_length=1, max_length=20)

    def forms(self) -> set[str]:
        """Every form of this credential that must never reach a result."""
        basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        found = encoded_forms(self.password) | {basic}
        if self.username:
            found |= encoded_forms(self.username)
        return found


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]`, lower-case, without a default port; None if not http(s)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    shown = "" if port in (None, _DEFAULT_PORTS[parts.scheme]) else f":{port}"
    return f"{parts.scheme}://{host}{shown}"


def parse(raw: str | None) -> dict[str, Credential]:
    """The `BROWSER_CREDENTIALS` secret; an entry without origins is refused whole."""
    try:
        entries = json.loads(raw or "{}")
    except ValueError:
        raise CredentialError("BROWSER_CREDENTIALS is not valid JSON") from None
    if not isinstance(entries, dict):
        raise CredentialError("BROWSER_CREDENTIALS must be a JSON object of named credentials")
    found = {}
    for name, entry in entries.items():
        try:
            credential = Credential.model_validate(entry)
        except ValidationError:
            raise CredentialError(
                f"credential {name!r} needs username, password and origins (a non-empty list)"
            ) from None
        origins = [origin_of(o) for o in credential.origins]
        if None in origins:
            raise CredentialError(f"credential {name!r}: origins must be http(s) origins")
        found[name] = credential.model_copy(update={"origins": origins})
    return found


def lookup(credentials: dict[str, Credential], name: str) -> Credential:
    credential = credentials.get(name)
    if credential is None:
        raise CredentialError(f"no credentials named {name!r} in BROWSER_CREDENTIALS")
    register_secrets([credential.password, credential.username])  # out of every log line
    return credential


def plan_refusal(
    steps: Iterable[dict[str, Any]],
    credentials: dict[str, Credential],
    *,
    screenshots_after_secrets: bool = False,
) -> str | None:
    """Why these planned steps may not run, or None. Steps name secrets as `"name.field"`."""
    origin: str | None = None
    sealed: set[str] | None = None  # after a secret fill: where the journey may still go
    for number, step in enumerate(steps, start=1):
        action = step["action"]
        if action == "goto":
            target = origin_of(str(step["url"]))
            if sealed is not None and target not in sealed:
                return f"step {number}: goto {target} after a secret was filled there"
            origin = target
        elif action == "fill" and step.get("secret"):
            name = str(step["secret"]).partition(".")[0]
            credential = lookup(credentials, name)
            if origin not in credential.origins:
                where = origin or "a page not yet opened"
                return f"step {number}: credential {name!r} may not be used on {where}"
            bound = set(credential.origins)
            sealed = bound if sealed is None else sealed & bound
        elif action == "screenshot" and sealed is not None and not screenshots_after_secrets:
            return (
                f"step {number}: no screenshot after a secret was filled"
                " (set screenshots_after_secrets to opt in)"
            )
    return None
