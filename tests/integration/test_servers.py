"""A server's side of the contract: tasks it forgot, tasks cancelled under it, its credential."""

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.harness import Backend, DevServer, admin_token
from tests.integration.test_tasks import FAST, submit, task, wait_terminal

ADMIN = {"Authorization": f"Bearer {admin_token()}"}


def wait_for(probe: Callable[[], Any], timeout_s: float = 30) -> Any:
    """Poll another process until `probe` answers truthy."""
    deadline = time.monotonic() + timeout_s
    while not (answer := probe()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
    return answer


def test_a_task_the_server_forgot_moves_on_long_before_its_timeout(
    dev_server: Callable[..., DevServer], backend: Callable[..., Backend]
) -> None:
    # Dispatch window 2 s; heartbeats every 0.3 s: two that leave the task out lose it.
    server = dev_server(**FAST, DISPATCH_TIMEOUT_S="1", DISPATCH_TRIES="2")
    forgetful = backend(server, "--forget", "--heartbeat-s", "0.3")
    created = submit(server, timeout_s=600, max_attempts=10)
    wait_for(lambda: forgetful.stats()["stats"].get("accepted"))
    backend(server, "--work-ms", "20")
    record = wait_terminal(server, created["id"], timeout_s=60)
    assert record["status"] == "succeeded"
    *forgotten, last = record["attempts"]  # it may go back while the other is not yet healthy
    assert forgotten
    assert {(a["server_id"], a["outcome"]) for a in forgotten} == {(forgetful.server_id, "lost")}
    assert "no longer reports the task" in forgotten[0]["error"]
    assert last["server_id"] != forgetful.server_id


def test_a_cancelled_task_is_stopped_on_its_server(
    dev_server: Callable[..., DevServer], backend: Callable[..., Backend]
) -> None:
    server = dev_server(**FAST)
    slow = backend(server, "--work-ms", "600000")
    created = submit(server, timeout_s=600)
    wait_for(lambda: slow.stats()["stats"].get("accepted"))
    cancelled = httpx.put(
        f"{server.url}/api/task/{created['id']}", headers=ADMIN, json={"status": "cancelled"}
    )
    assert cancelled.status_code == 200, cancelled.text
    wait_for(lambda: slow.stats()["stats"].get("cancelled"))
    assert slow.stats()["stats"].get("callback_errors", 0) == 0  # it did not call back after
    assert task(server, created["id"])["status"] == "cancelled"


def register(server: DevServer) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/api/servers",
        headers=ADMIN,
        json={"name": "rotating", "url": "http://127.0.0.1:9", "capacity": 1},
    )
    assert response.status_code == 201, response.text
    return response.json()


def heartbeat(server: DevServer, server_id: str, credential: str) -> int:
    return httpx.post(
        f"{server.url}/api/servers/{server_id}/heartbeat",
        headers={"Authorization": f"Bearer {credential}"},
        json={"active_tasks": []},
    ).status_code


def rotate(server: DevServer, server_id: str, credential: str) -> str:
    response = httpx.post(
        f"{server.url}/api/servers/{server_id}/credentials",
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["credential"]


def test_a_rotated_credential_keeps_working_for_the_grace_period(
    dev_server: Callable[..., DevServer],
) -> None:
    server = dev_server()
    registered = register(server)
    server_id, old = registered["server"]["id"], registered["credential"]
    new = rotate(server, server_id, old)
    assert heartbeat(server, server_id, old) == 200  # 600 s to switch
    assert heartbeat(server, server_id, new) == 200
    deleted = httpx.delete(f"{server.url}/api/servers/{server_id}", headers=ADMIN)
    assert deleted.status_code in (200, 204)
    assert heartbeat(server, server_id, new) == 401  # removed: all its credentials end


def test_a_credential_rotated_without_grace_ends_at_once(
    dev_server: Callable[..., DevServer],
) -> None:
    server = dev_server(SERVER_CREDENTIAL_GRACE_S="0")
    registered = register(server)
    old = registered["credential"]
    new = rotate(server, registered["server"]["id"], old)
    assert heartbeat(server, registered["server"]["id"], old) == 401
    assert heartbeat(server, registered["server"]["id"], new) == 200
    other = register(server)  # one server's credential cannot rotate another's
    response = httpx.post(
        f"{server.url}/api/servers/{registered['server']['id']}/credentials",
        headers={"Authorization": f"Bearer {other['credential']}"},
    )
    assert response.status_code == 403
