"""The Cloudflare API client against injected failures, at the Http port: a small fake that
answers as Cloudflare documents it (the v4 envelope, 429 with Retry-After, 5xx, error codes).
https://developers.cloudflare.com/fundamentals/api/reference/limits/"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from cfapi.client import CloudflareApi, is_not_found, retry_after_s
from cfapi.workers import WorkersApi
from errors import Upstream
from ports import HttpError, HttpResponse

TOKEN = "cf-token-that-must-never-show-0123456789"


def envelope(result: Any = None, *, errors: list[dict[str, Any]] | None = None) -> bytes:
    return json.dumps(
        {"success": not errors, "errors": errors or [], "messages": [], "result": result}
    ).encode()


class ScriptedHttp:
    """Answers each call with the next scripted reply (the last one repeats)."""

    def __init__(self, *replies: HttpResponse | HttpError) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[str, str, Mapping[str, str]]] = []

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        body: bytes | None = None,
        timeout_s: float = 10.0,
    ) -> HttpResponse:
        self.calls.append((method, url, dict(headers or {})))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, HttpError):
            raise reply
        return reply


def answer(status: int, body: bytes, **headers: str) -> HttpResponse:
    return HttpResponse(status, {k.replace("_", "-"): v for k, v in headers.items()}, body)


def client(http: ScriptedHttp, slept: list[float]) -> CloudflareApi:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return CloudflareApi(
        http, base="https://api.example/client/v4", token=TOKEN, account_id="acct",
        sleep=sleep, now_s=lambda: 1_000.0,
    )  # fmt: skip


@pytest.mark.anyio
async def test_a_429_is_retried_after_its_retry_after() -> None:
    slept: list[float] = []
    http = ScriptedHttp(
        answer(429, envelope(errors=[{"code": 10429, "message": "slow down"}]), retry_after="2"),
        answer(200, envelope([{"id": "w"}])),
    )
    scripts = await WorkersApi(client(http, slept)).list_scripts()
    assert scripts == [{"id": "w"}]
    assert slept == [2.0]
    assert len(http.calls) == 2
    method, url, headers = http.calls[0]
    assert (method, url) == ("GET", "https://api.example/client/v4/accounts/acct/workers/scripts")
    assert headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.anyio
async def test_5xx_and_network_errors_are_retried_a_bounded_number_of_times() -> None:
    slept: list[float] = []
    http = ScriptedHttp(
        answer(500, b"oops"),
        HttpError("network", "connection reset"),
        answer(503, envelope(errors=[{"code": 10013, "message": "try later"}])),
    )
    with pytest.raises(Upstream) as raised:
        await WorkersApi(client(http, slept)).list_scripts()
    assert len(http.calls) == 4  # MAX_ATTEMPTS, then the caller gets the answer
    assert len(slept) == 3
    error = raised.value
    assert error.status == 502
    assert error.details == {"upstream": {"status": 503, "code": 10013, "message": "try later"}}


@pytest.mark.anyio
async def test_a_long_retry_after_is_not_waited_for() -> None:
    slept: list[float] = []
    http = ScriptedHttp(answer(429, envelope(errors=[{"code": 971, "message": "wait"}]),
                               retry_after="3600"))  # fmt: skip
    with pytest.raises(Upstream) as raised:
        await WorkersApi(client(http, slept)).list_scripts()
    assert (len(http.calls), slept) == (1, [])
    assert raised.value.details["upstream"]["code"] == 971  # type: ignore[index]


@pytest.mark.anyio
async def test_not_found_is_answered_clearly() -> None:
    slept: list[float] = []
    not_found = [{"code": 10007, "message": "workers.api.error.script_not_found"}]
    missing = answer(404, envelope(errors=not_found))
    api = WorkersApi(client(ScriptedHttp(missing), slept))
    assert await api.settings("gone") is None
    assert await api.delete("gone") is False
    with pytest.raises(Upstream) as raised:
        await api.list_scripts()
    assert is_not_found(raised.value)
    assert raised.value.message.startswith("Cloudflare API: GET /accounts/acct/workers/scripts")
    assert "(code 10007)" in raised.value.message
    assert slept == []  # a 4xx is never retried


@pytest.mark.anyio
async def test_the_token_is_in_no_error() -> None:
    slept: list[float] = []
    echoed = answer(400, envelope(errors=[{"code": 10000, "message": f"bad token {TOKEN}"}]))
    from logs import register_secrets

    register_secrets([TOKEN])
    with pytest.raises(Upstream) as raised:
        await WorkersApi(client(ScriptedHttp(echoed), slept)).list_scripts()
    assert TOKEN not in raised.value.message
    assert TOKEN not in json.dumps(raised.value.details)


@pytest.mark.anyio
async def test_a_refusal_by_the_egress_policy_is_not_retried() -> None:
    slept: list[float] = []
    http = ScriptedHttp(HttpError("refused", "refused by the egress policy"))
    with pytest.raises(Upstream):
        await WorkersApi(client(http, slept)).list_scripts()
    assert (len(http.calls), slept) == (1, [])


@pytest.mark.anyio
async def test_an_answer_that_is_no_envelope_is_an_upstream_error() -> None:
    http = ScriptedHttp(answer(200, b"<html>gateway</html>"))
    with pytest.raises(Upstream) as raised:
        await WorkersApi(client(http, [])).list_scripts()
    assert "not a v4 envelope" in raised.value.message


@pytest.mark.anyio
async def test_graphql_errors_are_upstream_errors() -> None:
    http = ScriptedHttp(answer(200, json.dumps({"data": None, "errors": [
        {"message": "unknown field"}]}).encode()))  # fmt: skip
    with pytest.raises(Upstream) as raised:
        await client(http, []).graphql("query { x }", {})
    assert "unknown field" in raised.value.message


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_s("7", 0) == 7
    assert retry_after_s("Thu, 01 Jan 1970 00:00:10 GMT", 4) == 6
    assert retry_after_s("soon", 0) is None
    assert retry_after_s(None, 0) is None
