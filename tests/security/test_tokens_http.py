"""Finding 6: tokens that are not quite tokens are a 401 with the error shape, never a 500, and
an operator token and a server credential can never pass as each other."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx
import pytest

from auth.tokens import SERVER_AUDIENCE, encode, mint
from tests.harness import JWT_SECRET, Backend, DevServer, admin_token

pytestmark = pytest.mark.slow


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed_payload(raw: bytes) -> str:
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64(raw)}"
    mac = hmac.new(JWT_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def test_malformed_tokens_are_401_not_500(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server()
    good = admin_token()
    now = int(time.time())
    forged = [
        signed_payload(b'{"sub": "\xff", "aud": "apiary", "exp": 4000000000, "scope": "admin"}'),
        good[:-3] + "!" + good[-3:],  # a character base64 decoders would skip
        good[:-3] + "%" + good[-3:],
        encode({"sub": "x", "aud": "apiary", "exp": 1e300, "scope": "admin"}, JWT_SECRET),
        encode({"sub": "x", "aud": "apiary", "exp": "soon", "scope": "admin"}, JWT_SECRET),
        encode({"sub": "x", "exp": now + 60, "scope": "admin"}, JWT_SECRET),  # no audience
    ]
    for token in forged:
        response = httpx.get(
            f"{server.url}/api/auth/whoami", headers={"Authorization": f"Bearer {token!s}"}
        )
        assert response.status_code == 401, (token, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
    assert "Traceback" not in server.log()
    assert httpx.get(
        f"{server.url}/api/auth/whoami", headers={"Authorization": f"Bearer {good}"}
    ).json()["scopes"] == ["admin"]


@pytest.mark.timeout(60)
def test_servers_and_operators_cannot_pass_as_each_other(
    dev_server: Callable[..., DevServer], backend: Callable[..., Backend]
) -> None:
    server = dev_server()
    registered = httpx.post(
        f"{server.url}/api/servers",
        headers={"Authorization": f"Bearer {admin_token()}"},
        json={"name": "x", "url": backend(server).url, "capacity": 1},
    ).json()
    credential, server_id = registered["credential"], registered["server"]["id"]
    as_server = {"Authorization": f"Bearer {credential}"}
    # A server credential on operator routes: not for this audience.
    for method, path in (("GET", "/api/tasks"), ("GET", "/api/servers"), ("POST", "/trigger")):
        response = httpx.request(method, f"{server.url}{path}", headers=as_server, json={})
        assert response.status_code == 401, (path, response.text)
    # Where servers may call, it acts for its own server only.
    mine = httpx.post(f"{server.url}/api/servers/{server_id}/heartbeat", headers=as_server, json={})
    assert mine.status_code == 200
    # An operator token dressed as that server (its claims, without the audience) gets no
    # server's rights: without the scope the route needs, it is refused.
    dressed = mint(
        subject=f"server:{server_id}", scopes=[], now_s=int(time.time()), ttl_s=60,
        secret=JWT_SECRET, extra={"server_id": server_id},
    )  # fmt: skip
    refused = httpx.post(
        f"{server.url}/api/servers/{server_id}/heartbeat",
        headers={"Authorization": f"Bearer {dressed}"},
        json={},
    )
    assert refused.status_code == 403
    # Another server's real credential may not act for this one.
    second = httpx.post(
        f"{server.url}/api/servers",
        headers={"Authorization": f"Bearer {admin_token()}"},
        json={"name": "y", "url": backend(server).url, "capacity": 1},
    ).json()
    other = httpx.post(
        f"{server.url}/api/servers/{server_id}/heartbeat",
        headers={"Authorization": f"Bearer {second['credential']}"},
        json={},
    )
    assert other.status_code == 403
    # A server credential apiary never issued (signed right, but no such credential id): 401.
    forged = mint(
        subject="server:srv_other", scopes=[], now_s=int(time.time()), ttl_s=60,
        secret=JWT_SECRET, audience=SERVER_AUDIENCE, extra={"server_id": server_id, "cid": "x"},
    )  # fmt: skip
    refused = httpx.post(
        f"{server.url}/api/servers/{server_id}/heartbeat",
        headers={"Authorization": f"Bearer {forged}"},
        json={},
    )
    assert refused.status_code == 401
