"""Finding 2: no SSRF with read-back. Every address a caller chooses passes the egress policy,
and nothing a peer answers is copied into what the caller can read.

"Internal" services here are real servers on 127.0.0.2 (loopback, this machine only); the
allowed sites are on 127.0.0.1. A URL that must be refused is refused before any call: each
test checks that the refused site saw no request.
"""

import time
from collections.abc import Callable

import httpx
import pytest

from tests.harness import Backend, DevServer, admin_token
from tests.security.conftest import RUNNER_TOKEN, Runner
from tests.security.sites import RecordingSite, Reply, page

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
ADMIN = {"Authorization": f"Bearer {admin_token()}"}


def register(server: DevServer, url: str) -> httpx.Response:
    body = {"name": "probe", "url": url, "capacity": 1}
    return httpx.post(f"{server.url}/api/servers", headers=ADMIN, json=body)


def test_metadata_private_and_credentialed_server_urls_are_refused(
    dev_server: Callable[..., DevServer], sites: Callable[..., RecordingSite]
) -> None:
    server = dev_server()
    site = sites()
    site.pages["/health"] = Reply(200, "{}")
    refused = [
        "http://169.254.169.254",
        "http://[fe80::1]:80",
        "http://metadata.google.internal",
        "http://10.0.0.1:9000",
        "http://192.168.1.20",
        "http://[fd00::1]",
        f"http://user:password@{site.url.removeprefix('http://')}",
    ]
    for url in refused:
        response = register(server, url)
        assert response.status_code == 422, (url, response.text)
        assert "refused by the egress policy" in response.json()["error"]["message"]
    assert httpx.get(f"{server.url}/api/servers", headers=ADMIN).json()["servers"] == []
    assert site.seen == []
    assert register(server, site.url).status_code == 201  # loopback: apiary dev's default


def test_with_no_allowance_loopback_is_refused_too(
    dev_server: Callable[..., DevServer], sites: Callable[..., RecordingSite]
) -> None:
    server = dev_server(EGRESS_ALLOW="none")
    site = sites()
    assert register(server, site.url).status_code == 422
    check = {"test_type": "smoke", "target_url": f"{site.url}/", "options": {}}
    response = httpx.post(f"{server.url}/api/browser_tests", headers=ADMIN, json=check)
    assert response.status_code == 422
    steps = [{"action": "goto", "url": "http://169.254.169.254/latest/meta-data/"}]
    journey = {"test_type": "user_journey", "target_url": site.url, "options": {"steps": steps}}
    assert (
        httpx.post(f"{server.url}/api/browser_tests", headers=ADMIN, json=journey).status_code
        == 422
    )
    assert site.seen == []


def test_the_browser_cannot_be_steered_to_a_refused_address(
    runner: Callable[..., Runner], sites: Callable[..., RecordingSite]
) -> None:
    """A public-looking page that redirects, frames or fetches an internal address: the
    browser never reaches it, so no screenshot or excerpt can show it."""
    internal = sites("127.0.0.2")
    internal.pages["/secret"] = page("Internal", "<p id='s'>internal secret</p>")
    public = sites()
    public.pages |= {
        "/redirect": lambda _: Reply(302, "", {"Location": f"{internal.url}/secret"}),
        "/frame": lambda _: page("Frame", f"<iframe src='{internal.url}/secret'></iframe>"),
        "/fetch": lambda _: page(
            "Fetch", f"<script>fetch('{internal.url}/secret').catch(() => 0)</script><p>ok</p>"
        ),
        "/plain": page("Plain", "<p id='ok'>fine</p>"),
    }
    allowed_only_public = runner(egress="127.0.0.1/32")  # not the rest of loopback
    headers = {"Authorization": f"Bearer {RUNNER_TOKEN}"}

    def run(*steps: dict) -> httpx.Response:
        body = {"steps": list(steps), "timeout_ms": 10_000}
        return httpx.post(f"{allowed_only_public.url}/run", json=body, headers=headers, timeout=60)

    direct = run({"action": "goto", "url": f"{internal.url}/secret"})
    assert direct.status_code == 400
    assert "refused by the egress policy" in direct.json()["error"]["message"]
    redirected = run(
        {"action": "goto", "url": f"{public.url}/redirect"},
        {"action": "expect_text", "text": "internal secret", "timeout_ms": 1000},
    ).json()
    assert redirected["ok"] is False
    framed = run(
        {"action": "goto", "url": f"{public.url}/frame"},
        {"action": "expect_text", "selector": "iframe", "text": "x", "timeout_ms": 500},
    )
    assert framed.status_code == 200
    fetched = run(
        {"action": "goto", "url": f"{public.url}/fetch"},
        {"action": "expect_text", "text": "ok"},
    ).json()
    assert fetched["ok"] is True
    fine = run({"action": "goto", "url": f"{public.url}/plain"}, {"action": "wait_for",
               "selector": "#ok"})  # fmt: skip
    assert fine.json()["ok"] is True
    assert internal.seen == []
    assert {s.path for s in public.seen} >= {"/redirect", "/frame", "/fetch", "/plain"}


def test_a_servers_answer_never_reaches_the_task(
    dev_server: Callable[..., DevServer], backend: Callable[..., Backend]
) -> None:
    """The backend's 4xx body (here "rejected on purpose") stays out of the task record."""
    server = dev_server(HEALTH_INTERVAL_MIN_S="1", HEALTH_INTERVAL_MAX_S="2")
    backend(server, "--reject", "400:5")
    created = httpx.post(
        f"{server.url}/api/task", headers=ADMIN, json={"type": "echo", "max_attempts": 1}
    ).json()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = httpx.get(f"{server.url}/api/task/{created['id']}", headers=ADMIN).json()
        if found["status"] == "failed":
            break
        time.sleep(0.1)
    assert found["status"] == "failed"
    assert found["error"].endswith("refused: HTTP 400")
    everything = str(found) + httpx.get(f"{server.url}/api/tasks", headers=ADMIN).text
    assert "rejected on purpose" not in everything
