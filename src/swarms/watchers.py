"""Operators watching a swarm live: who may, and what a watcher socket is sent.

A watcher is the dashboard's socket on `/api/swarms/{id}/ws?watch=1`. It is authenticated at
the upgrade by the dashboard's session cookie (the same session the API accepts, with the
`swarms:admin` scope) and its `Origin` must be the swarm's own site: the cookie is
SameSite=Strict, so another site's page sends none anyway, and the origin check refuses
cross-site socket hijacking outright. A watcher is sent STATE frames only (the full state at
the upgrade, then the coalesced broadcasts) and is closed once its session's expiry passes.
"""

from typing import Any
from urllib.parse import urlsplit

from auth import scopes, sessions
from auth.scopes import Scope
from durable.base import ObjectRequest
from ports import Socket
from services import Services
from swarms.protocol import hang_up

TAG = "watcher"
SESSION_ENDED = 4003  # the watcher's dashboard session expired


def same_site(origin: str | None, url: str) -> bool:
    """Is `origin` the host the request was addressed to (any scheme: ws/http, wss/https)?"""
    if not origin:
        return False
    return urlsplit(origin).netloc.lower() == urlsplit(url).netloc.lower()


async def admit(services: Services, request: ObjectRequest) -> tuple[str | None, int]:
    """(why the watcher is refused, or None; the session's expiry in epoch seconds)."""
    if not same_site(request.headers.get("origin"), request.url):
        return "watchers connect from this site's own pages", 0
    value = sessions.cookie_value(request.headers.get("cookie"))
    if value is None:
        return "sign in to the dashboard first", 0
    now_s = services.clock.now_ms() // 1000
    session = await sessions.find(services.database, value, now_s=now_s)
    if session is None:
        return "the session has ended", 0
    if not scopes.grants(session.scopes, (Scope.SWARMS_ADMIN,)):
        return f"requires scope {Scope.SWARMS_ADMIN}", 0
    return None, session.expires_at


def broadcast_due(doc: dict[str, Any], watching: list[Socket]) -> int | None:
    """When an alarm must fire for watchers alone: a pending broadcast, and someone to see it."""
    return doc.get("broadcast_at") if watching else None


def live(watching: list[Socket], now_ms: int) -> list[tuple[Socket, dict[str, Any]]]:
    """The watchers whose session is still on, with their attachments; the others are closed."""
    found = []
    for socket in watching:
        meta = socket.attachment or {}
        if meta.get("exp", 0) * 1000 <= now_ms:
            hang_up(socket, SESSION_ENDED, "session expired")
        else:
            found.append((socket, meta))
    return found
