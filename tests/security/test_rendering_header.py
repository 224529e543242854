"""Finding 8: without CF_API_TOKEN, apiary sends no Authorization header at all ("Bearer "
with nothing after it is not a valid header value, and h11 refused to send it)."""

from collections.abc import Mapping
from typing import Any

import pytest

from browser.clients import Rendering
from clock import SystemClock
from ports import Config, HttpResponse
from services import Services


class RecordingHttp:
    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, **_: Any
    ) -> HttpResponse:
        self.headers.append(dict(headers or {}))
        body = b'{"success": true, "result": {"content": "<title>x</title>", "screenshot": ""}}'
        return HttpResponse(200, {}, body)


@pytest.mark.anyio
@pytest.mark.parametrize(("token", "sent"), [(None, None), ("t0ken-0123456789", "Bearer t0ken")])
async def test_the_bearer_header_is_sent_only_with_a_token(token: str | None, sent: str) -> None:
    http = RecordingHttp()
    values = {"CF_API_BASE": "http://127.0.0.1:9/client/v4", "CF_ACCOUNT_ID": "a"}
    if token:
        values["CF_API_TOKEN"] = token
    services = Services(
        database=None,  # type: ignore[arg-type]  # not used by the client
        namespaces={},
        http=http,
        clock=SystemClock(),
        config=Config(values, secret_names=frozenset({"CF_API_TOKEN"})),
    )
    await Rendering(services).snapshot("http://127.0.0.1:9/")
    authorization = http.headers[0].get("Authorization")
    assert authorization == (None if sent is None else f"Bearer {token}")
