"""Finding 7: `/health` is not an amplifier. Anonymous callers share one backend check per
cache period and see only the status; a token shows every check."""

from collections.abc import Callable

import httpx
import pytest

from tests.harness import DevServer, admin_token
from tests.security.sites import RecordingSite, Reply

pytestmark = pytest.mark.slow


def test_anonymous_health_calls_do_not_reach_the_backend_each_time(
    dev_server: Callable[..., DevServer], sites: Callable[..., RecordingSite]
) -> None:
    backend = sites()
    backend.pages["/health"] = Reply(200, '{"status": "ok"}')
    server = dev_server(BACKEND_BASE=backend.url)
    for _ in range(30):
        body = httpx.get(f"{server.url}/health").json()
        assert body["status"] == "ok"
        assert "checks" not in body
    assert len(backend.seen) == 1
    admin = {"Authorization": f"Bearer {admin_token()}"}
    detailed = httpx.get(f"{server.url}/health", headers=admin).json()
    assert detailed["checks"]["backend"] == "ok"
    assert len(backend.seen) == 2  # an operator's check is made fresh
