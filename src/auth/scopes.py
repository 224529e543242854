"""The scopes a token can carry. `admin` grants every scope."""

from enum import StrEnum


class Scope(StrEnum):
    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"
    SERVERS_ADMIN = "servers:admin"
    SWARMS_ADMIN = "swarms:admin"
    CRON_RUN = "cron:run"
    BROWSER_TESTS_READ = "browser_tests:read"
    BROWSER_TESTS_WRITE = "browser_tests:write"
    CLOUDFLARE_READ = "cloudflare:read"
    CLOUDFLARE_ADMIN = "cloudflare:admin"
    ADMIN = "admin"


KNOWN = frozenset(s.value for s in Scope)


def grants(held: frozenset[str], any_of: tuple[str, ...]) -> bool:
    """True when `held` satisfies at least one of `any_of` (no requirement: any token)."""
    if Scope.ADMIN in held or not any_of:
        return True
    return any(scope in held for scope in any_of)


def unknown(scopes: list[str]) -> list[str]:
    return [s for s in scopes if s not in KNOWN]
