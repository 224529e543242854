"""The local-only endpoints (`/__meter`, `/__scheduled`, `/client/v4/...`) against the attacks
a browser page or a local process can make: a foreign Origin, a rebinding Host, no token or
another, and bodies too big to buffer. Each attack is refused and has no effect."""

from __future__ import annotations

import json
import socket
import stat
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.account_client import ACCOUNT_ID, account_server
from tests.cron_backend import CronBackend
from tests.harness import DevServer

pytestmark = pytest.mark.slow
CRON_TOKEN = "cron-token-0123456789-abcdef"
EVERY_5 = quote("*/5 * * * *")


@pytest.fixture(scope="module")
def backend() -> Iterator[CronBackend]:
    server = CronBackend().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backend: CronBackend) -> Iterator[DevServer]:
    directory = tmp_path_factory.mktemp("guarded")
    with account_server(directory, BACKEND_BASE=backend.url, CRON_TOKEN=CRON_TOKEN) as running:
        yield running


def token(server: DevServer) -> str:
    return (server.state / "local-token").read_text().strip()


def scheduled(server: DevServer, **headers: str) -> httpx.Response:
    return httpx.get(f"{server.url}/__scheduled?cron={EVERY_5}", headers=headers)


def test_scheduled_refuses_a_foreign_origin_or_host_and_calls_nothing(
    server: DevServer, backend: CronBackend
) -> None:
    refused = [
        scheduled(server, Origin="https://evil.example"),
        scheduled(server, Origin=f"http://127.0.0.1:{server.port + 1}"),
        scheduled(server, Host="evil.example"),
        scheduled(server, Host=f"rebind.evil.example:{server.port}"),
    ]
    assert [r.status_code for r in refused] == [403] * 4
    time.sleep(1.0)  # anything they had set off would have reached the backend by now
    assert backend.calls_to("/cron/ee-recent") == []
    # The same request from this machine's own page or a local client does run the job.
    assert scheduled(server, Origin=f"http://localhost:{server.port}").status_code == 200
    deadline = time.monotonic() + 10
    while not backend.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [c.path for c in backend.calls_to("/cron/ee-recent")] == ["/cron/ee-recent"]


def test_meter_refuses_a_foreign_origin_or_host(server: DevServer) -> None:
    assert httpx.get(f"{server.url}/__meter", headers={"Host": "evil.example"}).status_code == 403
    foreign = httpx.post(f"{server.url}/__meter/reset", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert httpx.get(f"{server.url}/__meter").status_code == 200


def test_the_account_api_needs_its_token_and_a_local_origin(server: DevServer) -> None:
    url = f"{server.url}/client/v4/accounts/{ACCOUNT_ID}/workers/scripts"
    for headers in (
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": token(server)},
    ):
        answer = httpx.get(url, headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {
            "success": False,
            "errors": [{"code": 10000, "message": "Authentication error"}],
            "messages": [],
            "result": None,
        }
    good = {"Authorization": f"Bearer {token(server)}"}
    assert httpx.get(url, headers=good).status_code == 200
    for extra in ({"Origin": "https://evil.example"}, {"Host": "evil.example"}):
        answer = httpx.get(url, headers=good | extra)
        assert answer.status_code == 403
        assert answer.json()["success"] is False
    graphql = httpx.post(
        f"{server.url}/client/v4/graphql", json={"query": "{ viewer { __typename } }"}
    )
    assert graphql.status_code == 401


def _raw(server: DevServer, head: str, body: bytes = b"") -> tuple[bytes, float]:
    """Sends a request's head (and `body`), returns the answer and how long it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer, time.monotonic() - started


def test_oversize_bodies_are_413_before_they_are_read(server: DevServer) -> None:
    path = f"/client/v4/accounts/{ACCOUNT_ID}/workers/scripts/big"
    for kind, size in (
        ("application/json", 2 * 1024 * 1024),
        ("multipart/form-data; boundary=x", 11 * 1024 * 1024),
    ):
        head = (
            f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {token(server)}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {size}\r\n"
        )
        answer, took = _raw(server, head)  # the body is never sent: it cannot be buffered
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert took < 5
    # A chunked body is cut off as soon as it passes the cap.
    head = (
        f"POST /client/v4/graphql HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token(server)}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n"
    )
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(17))
    answer, _ = _raw(server, head, body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_the_generated_token_is_private_and_never_logged(server: DevServer) -> None:
    path = server.state / "local-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token(server) not in server.log()
    assert str(path) in server.log()


def test_deployed_workers_are_public_not_local_only(server: DevServer) -> None:
    """A Worker's host is what workers.dev would serve to anyone; a forged dispatch is not."""
    api = f"{server.url}/client/v4/accounts/{ACCOUNT_ID}/workers/scripts/open"
    meta = {"main_module": "index.js", "compatibility_date": "2025-01-01"}
    source = b'export default { fetch() { return new Response("open"); } };'
    uploaded = httpx.put(
        api,
        headers={"Authorization": f"Bearer {token(server)}"},
        files=[
            ("metadata", ("blob", json.dumps(meta), "application/json")),
            ("index.js", ("index.js", source, "application/javascript+module")),
        ],
        timeout=60,
    )
    assert uploaded.status_code == 200, uploaded.text
    answer = httpx.get(
        f"{server.url}/",
        headers={"Host": f"open.localhost:{server.port}", "Origin": "https://elsewhere.example"},
    )
    assert (answer.status_code, answer.text) == (200, "open")
    forged = httpx.get(
        f"{server.url}/",
        headers={"x-apiary-dispatch": "customers/open", "x-apiary-dispatch-token": "guess"},
    )
    assert forged.status_code == 403
