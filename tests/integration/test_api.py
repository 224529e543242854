"""The Worker's HTTP surface on `apiary dev`: health, docs, errors, correlation ids, CORS, auth."""

import json
import re
import subprocess
import time
from collections.abc import Callable

import httpx
import pytest

from auth.tokens import encode, mint
from tests.harness import APIARY, JWT_SECRET, DevServer, project_config, write_dev_vars

pytestmark = pytest.mark.slow
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> DevServer:
    project = tmp_path_factory.mktemp("project")
    write_dev_vars(project, JWT_SECRET=JWT_SECRET, BACKEND_BASE="")
    dev = DevServer(project / "state", config=project_config(project)).start()
    yield dev
    dev.stop()


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["correlation_id"] == response.headers["x-correlation-id"]
    assert "Traceback" not in response.text
    return body["error"]


def token(scopes: list[str], ttl_s: int = 300, secret: str = JWT_SECRET) -> str:
    return mint(subject="test", scopes=scopes, now_s=int(time.time()), ttl_s=ttl_s, secret=secret)


def bearer(scopes: list[str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(scopes)}"}


def test_health(server: DevServer) -> None:
    response = httpx.get(f"{server.url}/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert RFC3339.match(body["timestamp"])
    assert body["environment"] == "development"
    assert body["version"] == "0.1.0"
    assert "checks" not in body  # the details are for a caller with a token
    body = httpx.get(f"{server.url}/health", headers=bearer(["tasks:read"])).json()
    assert body["checks"] == {
        "database": "ok",
        "backend": "not_configured",
        "auth": "not_configured",
    }


def test_docs_and_openapi(server: DevServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert spec["info"]["title"] == "apiary"
    assert "/health" in spec["paths"]
    assert "/api/auth/whoami" in spec["paths"]
    docs = httpx.get(f"{server.url}/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_error_shape_for_unknown_route_and_method(server: DevServer) -> None:
    assert_error(httpx.get(f"{server.url}/api/no/such/route"), 404, "not_found")
    # Outside the Worker's paths, a path that is no file is the dashboard's (its own 404).
    page = httpx.get(f"{server.url}/no/such/route")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert_error(httpx.delete(f"{server.url}/health"), 405, "method_not_allowed")


def test_oversized_body_is_refused(server: DevServer) -> None:
    response = httpx.post(f"{server.url}/health", content=b"x" * (1024 * 1024 + 1))
    assert_error(response, 413, "payload_too_large")


def test_correlation_id_echoed_or_generated(server: DevServer) -> None:
    given = httpx.get(f"{server.url}/health", headers={"X-Correlation-ID": "job-42.a"})
    assert given.headers["x-correlation-id"] == "job-42.a"
    minted = httpx.get(f"{server.url}/health")
    assert re.fullmatch(r"[0-9a-f]{32}", minted.headers["x-correlation-id"])
    hostile = httpx.get(f"{server.url}/health", headers={"X-Correlation-ID": 'a b"<script>'})
    assert hostile.headers["x-correlation-id"] != 'a b"<script>'
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    request_lines = [entry for entry in lines if entry["message"] == "request"]
    assert any(entry["correlation_id"] == "job-42.a" for entry in request_lines)
    assert all(entry["correlation_id"] for entry in request_lines)


def test_cors_allowlist(server: DevServer) -> None:
    allowed = httpx.options(
        f"{server.url}/health",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    refused = httpx.options(
        f"{server.url}/health",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in refused.headers
    simple = httpx.get(f"{server.url}/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers
    ok = httpx.get(f"{server.url}/health", headers={"Origin": "http://localhost:3000"})
    assert ok.headers["access-control-allow-origin"] == "http://localhost:3000"


def _b64(data: dict) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


NOW = int(time.time())
REJECTED = {
    "missing": None,
    "not bearer": "Basic dXNlcjpwYXNz",
    "malformed": "Bearer not-a-jwt",
    "garbage segments": "Bearer a.b.c",
    "alg none": "Bearer " + _b64({"alg": "none"}) + "." + _b64({"sub": "x", "exp": NOW + 99}) + ".",
    "alg HS512": "Bearer "
    + _b64({"alg": "HS512", "typ": "JWT"})
    + "."
    + _b64({"sub": "x", "exp": NOW + 99, "scope": "admin"})
    + ".c2ln",
    "bad signature": "Bearer " + token(["admin"], secret="another-secret-another-secret-another"),
    "expired": "Bearer " + token(["admin"], ttl_s=-120),
    "no exp": "Bearer " + encode({"sub": "x", "scope": "admin"}, JWT_SECRET),
    "tampered": "Bearer "
    + ".".join(
        (lambda p: [p[0], _b64({"sub": "x", "exp": NOW + 99, "scope": "admin"}), p[2]])(
            token(["tasks:read"]).split(".")
        )
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_auth_rejections_are_401(server: DevServer, case: str) -> None:
    value = REJECTED[case]
    headers = {"Authorization": value} if value else {}
    response = httpx.get(f"{server.url}/api/auth/whoami", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_token_cli_mints_a_token_the_api_accepts(server: DevServer) -> None:
    minted = subprocess.run(
        [str(APIARY), "token", "--config", str(server.config), "--scope", "tasks:read",
         "--scope", "cron:run", "--ttl", "10m", "--subject", "ops"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    response = httpx.get(
        f"{server.url}/api/auth/whoami", headers={"Authorization": f"Bearer {minted}"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["subject"] == "ops"
    assert body["scopes"] == ["cron:run", "tasks:read"]
    refused = subprocess.run(
        [str(APIARY), "token", "--config", str(server.config), "--scope", "root"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "unknown scope" in refused.stderr


def test_dev_vars_override_wrangler_vars(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(ENVIRONMENT="from-dev-vars")
    assert httpx.get(f"{server.url}/health").json()["environment"] == "from-dev-vars"


def test_env_flag_selects_an_environment(dev_server: Callable[..., DevServer]) -> None:
    server = dev_server(args=("--env", "staging"))
    assert httpx.get(f"{server.url}/health").json()["environment"] == "staging"
