"""A route guarded by `require(scope)`: 401 without proof of identity, 403 without the scope."""

import time
from pathlib import Path

import httpx
import pytest
from fastapi import Depends

from api.app import create_app
from api.security import require
from auth.tokens import Claims, mint
from clock import SystemClock
from ports import Config
from services import Services

SECRET = "scoped-route-secret-scoped-route"


class NoDatabase:
    async def execute(self, sql: str, *params: object) -> None:
        raise AssertionError("not used")

    async def batch(self, statements: object) -> None:
        raise AssertionError("not used")


@pytest.fixture
def client(tmp_path: Path) -> httpx.AsyncClient:
    services = Services(
        database=NoDatabase(),  # type: ignore[arg-type]
        namespaces={},
        http=None,  # type: ignore[arg-type]
        clock=SystemClock(),
        config=Config({"JWT_SECRET": SECRET}, secret_names=frozenset({"JWT_SECRET"})),
    )
    app = create_app(lambda scope: services)

    @app.get("/guarded")
    async def guarded(claims: Claims = Depends(require("tasks:read", "tasks:write"))) -> dict:
        return {"subject": claims.subject}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def bearer(*scopes: str) -> dict[str, str]:
    token = mint(subject="u", scopes=list(scopes), now_s=int(time.time()), ttl_s=60, secret=SECRET)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("scopes", "status"),
    [
        (("tasks:read",), 200),
        (("tasks:write",), 200),
        (("admin",), 200),
        (("servers:admin",), 403),
        ((), 403),
    ],
)
async def test_scope_matrix(
    client: httpx.AsyncClient, scopes: tuple[str, ...], status: int
) -> None:
    async with client:
        response = await client.get("/guarded", headers=bearer(*scopes))
    assert response.status_code == status
    if status == 403:
        error = response.json()["error"]
        assert error["code"] == "forbidden"
        assert "tasks:read" in error["message"]
        assert error["correlation_id"] == response.headers["x-correlation-id"]


@pytest.mark.anyio
async def test_unhandled_error_is_a_clean_500(client: httpx.AsyncClient) -> None:
    app = client._transport.app  # type: ignore[attr-defined]

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"database password is {SECRET}")

    async with client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal"
    assert SECRET not in response.text
    assert "RuntimeError" not in response.text
