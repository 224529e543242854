"""The Cloudflare Http adapter over the platform's `fetch` (faked to the Fetch standard)."""

import asyncio
import json
from typing import Any

import pytest

import correlation
from ports import HttpError

pytestmark = [pytest.mark.usefixtures("jsfake"), pytest.mark.anyio]


@pytest.fixture
def http(jsfake: Any) -> Any:
    from cloudflare_adapters.fetch_http import FetchHttp

    yield FetchHttp()
    jsfake.set_fetch_handler(None)


async def test_status_headers_and_body_both_ways(jsfake: Any, http: Any) -> None:
    seen: list[Any] = []

    async def handler(request: Any) -> Any:
        seen.append(
            (
                request.method,
                request.url,
                request.redirect,
                dict(request.headers.entries()),
                await request.text(),
            )
        )
        init = jsfake.js_value({"status": 201, "headers": {"X-Answer": "42"}})
        return jsfake.Response('{"ok":true}', init)

    jsfake.set_fetch_handler(handler)
    token = correlation.bind("cid-7")
    try:
        response = await http.request(
            "POST", "https://backend.example/tasks", json={"a": 1}, headers={"X-Lease": "l1"}
        )
    finally:
        correlation.reset(token)
    assert (response.status, response.headers["x-answer"]) == (201, "42")
    assert json.loads(response.body) == {"ok": True}
    method, url, redirect, headers, body = seen[0]
    assert (method, url, redirect) == ("POST", "https://backend.example/tasks", "manual")
    assert headers["x-lease"] == "l1"
    assert headers["x-correlation-id"] == "cid-7"
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"a": 1}


async def test_raw_bytes_and_get(jsfake: Any, http: Any) -> None:
    bodies: list[bytes] = []

    async def handler(request: Any) -> Any:
        if request.method != "GET":
            bodies.append(bytes((await request.arrayBuffer()).to_bytes()))
        return jsfake.Response(jsfake.Uint8Array(b"\x00\xff"), jsfake.js_value({"status": 200}))

    jsfake.set_fetch_handler(handler)
    assert (await http.request("GET", "https://x.example/")).body == b"\x00\xff"
    await http.request("PUT", "https://x.example/blob", body=b"\x01\x02")
    assert bodies == [b"\x01\x02"]


async def test_a_slow_answer_is_a_timeout(jsfake: Any, http: Any) -> None:
    async def handler(request: Any) -> Any:
        await asyncio.sleep(5)
        return jsfake.Response("late")

    jsfake.set_fetch_handler(handler)
    with pytest.raises(HttpError) as raised:
        await http.request("GET", "https://slow.example/health", timeout_s=0.05)
    assert raised.value.kind == "timeout"


async def test_a_refused_connection_is_a_network_error(jsfake: Any, http: Any) -> None:
    def handler(request: Any) -> Any:
        raise jsfake.JsException("TypeError", "Network connection lost.")

    jsfake.set_fetch_handler(handler)
    with pytest.raises(HttpError) as raised:
        await http.request("GET", "https://down.example/health")
    assert raised.value.kind == "network"
    assert "down.example" in str(raised.value)
