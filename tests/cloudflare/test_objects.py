"""Each Durable Object and storage adapter through its Cloudflare shell, on the real Workers SDK
(only the JS layer is faked): RPC, alarms, the hibernation API, R2."""

import json
from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("jsfake")


@pytest.mark.anyio
async def test_job_runner_attempts_after_its_answer_through_the_shell(
    jsfake: Any, entry: Any, env: Any, db: Any
) -> None:
    state = jsfake.FakeDurableObjectState(name="every5min")
    runner = entry.JobRunner(state, env)
    started = (await runner.start("every5min", "manual", 1_800_000_000_000)).to_py()["ok"]
    assert started["run"]["status"] == "running"
    assert await state.storage.getAlarm() is not None  # at the attempt's deadline
    # The attempt is work after the answer, handed to ctx.waitUntil as a proxied task.
    [work] = state.wait_until
    await work.unwrap()
    assert work.destroyed
    # No BACKEND_BASE in this env: the attempt fails at once, without retries, and says why.
    runs = db.query("SELECT id, status, attempts, error FROM cron_runs")
    assert runs == [
        {
            "id": started["run"]["id"],
            "status": "failed",
            "attempts": 1,
            "error": "BACKEND_BASE is not set",
        }
    ]
    attempts = db.query("SELECT attempt, outcome, http_status FROM cron_attempts")
    assert attempts == [{"attempt": 1, "outcome": "failed", "http_status": None}]


@pytest.mark.anyio
async def test_rate_limiter_over_rpc_through_the_shell(jsfake: Any, entry: Any, env: Any) -> None:
    from workers.rpc import _EnvWrapper

    from cloudflare_adapters.services import services_from_env
    from durable.rate_limiter import RateLimiterClient
    from errors import InvalidInput

    services = services_from_env(_EnvWrapper(env))
    limiter = RateLimiterClient.for_key(services, "invites:s1")
    first = await limiter.acquire(2, 60)
    assert first == {"allowed": True, "remaining": 1, "retry_after_s": 0}
    assert (await limiter.acquire(2, 60))["allowed"] is True
    refused = await limiter.acquire(2, 60)
    assert refused["allowed"] is False
    assert 1 <= refused["retry_after_s"] <= 60
    other = RateLimiterClient.for_key(services, "invites:s2")
    assert (await other.acquire(2, 60))["allowed"] is True
    # A domain error crosses RPC as the same error.
    with pytest.raises(InvalidInput, match="cost <= limit"):
        await other.acquire(2, 60, 3)
    with pytest.raises(LookupError, match="NOPE"):
        services.namespace("NOPE")


@pytest.mark.anyio
async def test_r2_adapter_contract(jsfake: Any) -> None:
    from workers.rpc import _EnvWrapper

    from cloudflare_adapters.r2 import R2Bucket

    js_method = jsfake.values.js_method

    class FakeR2Object(jsfake.JsProxy):
        js_class = "R2ObjectBody"

        def __init__(self, data: bytes) -> None:
            self._data = data

        @js_method
        def arrayBuffer(self) -> Any:
            return jsfake.JsPromise.resolve(jsfake.ArrayBuffer(self._data))

    class FakeR2Bucket(jsfake.JsProxy):
        """R2's Workers API as documented: put(key, value, options), get(key) -> body | null."""

        js_class = "R2Bucket"

        def __init__(self) -> None:
            self.objects: dict[str, tuple[bytes, Any]] = {}

        @js_method
        def put(self, key: Any, value: Any, options: Any = None) -> Any:
            inner = value._check() if isinstance(value, jsfake.PyProxy) else value
            assert isinstance(inner, jsfake.Uint8Array), f"R2 put got {inner!r}"
            self.objects[key] = (inner.to_bytes(), options.httpMetadata.contentType)
            return jsfake.JsPromise.resolve(None)

        @js_method
        def get(self, key: Any) -> Any:
            found = self.objects.get(key)
            return jsfake.JsPromise.resolve(
                jsfake.jsnull if found is None else FakeR2Object(found[0])
            )

    fake = FakeR2Bucket()
    bucket = R2Bucket(_EnvWrapper(jsfake.make_env(ARTIFACTS=fake)).ARTIFACTS)
    await bucket.put("screenshots/a.png", b"\x89PNG data", "image/png")
    assert fake.objects["screenshots/a.png"] == (b"\x89PNG data", "image/png")
    assert await bucket.get("screenshots/a.png") == b"\x89PNG data"
    assert await bucket.get("missing") is None


@pytest.mark.anyio
async def test_swarm_coordinator_through_the_shell(jsfake: Any, entry: Any, env: Any) -> None:
    """A device joins over the hibernation API: accept, auto-response, attachment, frames."""
    from workers import Request

    state = jsfake.FakeDurableObjectState(name="swm_01M8000000000000000000000")
    swarm = entry.SwarmCoordinator(state, env)
    settings = {
        "broadcast_interval_ms": 2000,
        "heartbeat_timeout_s": 60,
        "max_devices": None,
        "allowed_origins": [],
    }
    spec = {"id": "swm_01M8000000000000000000000", "name": "cf", "settings": settings}
    assert (await swarm.create(spec)).to_py()["ok"]["name"] == "cf"
    invite = (await swarm.invite(1, 3600)).to_py()["ok"]["token"]
    url = "https://apiary.example/api/swarms/swm_01M8000000000000000000000/ws?persistentId=p"
    upgrade = await swarm.fetch(Request(jsfake.make_request(url, headers={"Upgrade": "websocket"})))
    assert upgrade.status == 101
    client = upgrade.js_object.webSocket
    (server,) = state.getWebSockets("device")
    assert await state.deliver_message(server, "ping", swarm) is False  # never wakes it
    join = json.dumps({"type": "JOIN", "data": {"invite_token": invite}})
    assert await state.deliver_message(server, join, swarm) is True
    frames = [json.loads(m) for m in client.received if m != "pong"]
    assert [f["type"] for f in frames] == ["WELCOME", "STATE"]
    assert frames[0]["data"]["device_id"].startswith("dev_")
    assert await state.deliver_message(server, "{bad", swarm) is True
    assert json.loads(client.received[-1])["data"]["code"] == "bad_json"
    snapshot = (await swarm.snapshot()).to_py()["ok"]
    assert [d["status"] for d in snapshot["devices"]] == ["online"]
    assert await state.storage.getAlarm() is not None  # a socket is connected: presence sweeps
