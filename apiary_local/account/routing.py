"""Which Worker a request is for, and which of its deployed versions serves it (pure).

A deployed Worker is addressed by Host, as on workers.dev: `{script}.localhost[:port]` or
`{script}.{subdomain}.workers.dev` (what wrangler prints). Labels to the left of the script's
are the Worker's to read (`acme.dispatcher.localhost` reaches `dispatcher`, which can route
`acme` to a dispatch-namespace Worker).

Cloudflare splits a two-version deployment per request by percentage, unless the request
carries `Cloudflare-Workers-Version-Overrides: {script}="{version id}"` (an RFC 8941
dictionary) naming a version of the current deployment; an override that is malformed or
names another version is ignored, as Cloudflare ignores it.
https://developers.cloudflare.com/workers/configuration/versions-and-deployments/gradual-deployments/
"""

from __future__ import annotations

from collections.abc import Sequence

from http_sfv.dictionary import Dictionary
from http_sfv.types import Token

OVERRIDES_HEADER = "cloudflare-workers-version-overrides"


def script_of_host(host: str, subdomain: str) -> str | None:
    name = host.strip().lower()
    if name.startswith("["):
        return None
    name = name.rsplit(":", 1)[0] if ":" in name else name
    labels = name.rstrip(".").split(".")
    if len(labels) >= 2 and labels[-1] == "localhost":
        return labels[-2] or None
    suffix = [subdomain.lower(), "workers", "dev"]
    if len(labels) >= 4 and labels[-3:] == suffix:
        return labels[-4] or None
    return None


def parse_overrides(header: str | None) -> dict[str, str]:
    """Script name -> version id; {} for a missing or malformed header."""
    if not header:
        return {}
    dictionary = Dictionary()
    try:
        dictionary.parse(header.encode("latin-1"))
    except (ValueError, UnicodeEncodeError):
        return {}
    overrides: dict[str, str] = {}
    for key, member in dictionary.items():
        value = getattr(member, "value", None)
        # The value must be a String ("..."): a bare token is not a version override.
        if isinstance(value, str) and not isinstance(value, Token):
            overrides[key] = value
    return overrides


def pick_version(
    versions: Sequence[tuple[str, float]], *, override: str | None, draw: float
) -> str:
    """The version a request gets: the override if it is one of `versions`, else the one
    whose share of [0, 100) holds `draw` (uniform in [0, 100))."""
    if override is not None and any(version_id == override for version_id, _ in versions):
        return override
    upper = 0.0
    for version_id, percentage in versions:
        upper += percentage
        if draw < upper:
            return version_id
    return versions[-1][0]
