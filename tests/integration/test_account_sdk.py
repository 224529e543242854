"""Cloudflare's official Python SDK (5.6.0), strict response validation, against every endpoint
of the local account, and uploads the account refuses as Cloudflare does, storing nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudflare
import httpx
import pytest

from tests.account_client import ACCOUNT_ID, Account, account_of, account_server

pytestmark = pytest.mark.slow
MODULE = "application/javascript+module"
HELLO = (
    b"export default { fetch(req, env) { return new Response("
    b'new URL(req.url).pathname === "/secret" ? env.KEY : "hi " + env.WHO); } };'
)
PAGE = (
    "<html><head><title>Fixture</title><style>p { color: red }</style></head><body>"
    "<h1>Hello</h1><p>A <a href='https://example.com/a'>link</a> and "
    "<a href='https://example.org/b'>another</a>.</p></body></html>"
)


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    with account_server(tmp_path_factory.mktemp("sdk")) as server, account_of(server) as a:
        yield a


@pytest.fixture(scope="module")
def client(account: Account) -> cloudflare.Cloudflare:
    return cloudflare.Cloudflare(
        api_token=account.token, base_url=account.api, _strict_response_validation=True
    )


def metadata(**extra: Any) -> dict[str, Any]:
    return {
        "main_module": "index.js",
        "compatibility_date": "2025-01-01",
        "bindings": [
            {"type": "plain_text", "name": "WHO", "text": "sdk"},
            {"type": "secret_text", "name": "KEY", "text": "s3cret-value"},
        ],
        **extra,
    }


def files(source: bytes = HELLO) -> list[tuple[str, bytes, str]]:
    return [("index.js", source, MODULE)]


def test_scripts_versions_and_deployments(account: Account, client: cloudflare.Cloudflare) -> None:
    scripts = client.workers.scripts
    uploaded = scripts.update(
        "sdk-hello", account_id=ACCOUNT_ID, metadata=metadata(), files=files()
    )
    assert uploaded.id == "sdk-hello"
    assert uploaded.startup_time_ms == 0
    assert account.get("sdk-hello").text == "hi sdk"
    assert account.get("sdk-hello", "/secret").text == "s3cret-value"  # secrets reach env too
    assert "sdk-hello" in [s.id for s in scripts.list(account_id=ACCOUNT_ID)]
    assert scripts.get("sdk-hello", account_id=ACCOUNT_ID) == HELLO.decode()
    content = scripts.content.get("sdk-hello", account_id=ACCOUNT_ID)
    assert content.read() == HELLO

    settings = scripts.script_and_version_settings.get("sdk-hello", account_id=ACCOUNT_ID)
    assert settings.compatibility_date == "2025-01-01"
    assert {b.name: b.type for b in settings.bindings or []} == {
        "WHO": "plain_text",
        "KEY": "secret_text",
    }
    assert "s3cret-value" not in json.dumps(settings.model_dump())
    edited = scripts.script_and_version_settings.edit(
        "sdk-hello",
        account_id=ACCOUNT_ID,
        settings={"bindings": [{"type": "plain_text", "name": "WHO", "text": "edited"}]},
    )
    assert [b.name for b in edited.bindings or []] == ["WHO"]
    assert account.get("sdk-hello").text == "hi edited"  # versioned: a new version, deployed

    assert scripts.settings.get("sdk-hello", account_id=ACCOUNT_ID).logpush is False
    tagged = scripts.settings.edit("sdk-hello", account_id=ACCOUNT_ID, tags=["fleet"], logpush=True)
    assert (tagged.tags, tagged.logpush) == (["fleet"], True)
    assert scripts.subdomain.get("sdk-hello", account_id=ACCOUNT_ID).enabled is True
    off = scripts.subdomain.create("sdk-hello", account_id=ACCOUNT_ID, enabled=False)
    assert off.enabled is False
    assert client.workers.subdomains.get(account_id=ACCOUNT_ID).subdomain == "local"

    created = scripts.versions.create(
        "sdk-hello",
        account_id=ACCOUNT_ID,
        metadata=metadata(annotations={"workers/message": "second"}),
        files=files(HELLO.replace(b"hi ", b"hello ")),
    )
    assert created.resources.script is not None
    assert created.resources.script.etag
    assert account.get("sdk-hello").text == "hi edited"  # not deployed
    listed = list(scripts.versions.list("sdk-hello", account_id=ACCOUNT_ID))
    assert listed[0].id == created.id  # newest first, every page read
    assert len(listed) == 3
    got = scripts.versions.get(created.id, script_name="sdk-hello", account_id=ACCOUNT_ID)
    assert got.id == created.id

    current = scripts.deployments.list("sdk-hello", account_id=ACCOUNT_ID).deployments[0]
    deployment = scripts.deployments.create(
        "sdk-hello",
        account_id=ACCOUNT_ID,
        strategy="percentage",
        versions=[
            {"version_id": created.id, "percentage": 25},
            {"version_id": current.versions[0].version_id, "percentage": 75},
        ],
    )
    assert [v.percentage for v in deployment.versions] == [25, 75]
    deployments = scripts.deployments.list("sdk-hello", account_id=ACCOUNT_ID).deployments
    assert deployments[0].id == deployment.id  # newest first
    assert scripts.deployments.get(deployment.id, script_name="sdk-hello", account_id=ACCOUNT_ID).id
    deleted = scripts.deployments.delete(
        deployments[-1].id, script_name="sdk-hello", account_id=ACCOUNT_ID
    )
    assert deleted.success is True
    with pytest.raises(cloudflare.BadRequestError):  # the current deployment stays
        scripts.deployments.delete(deployment.id, script_name="sdk-hello", account_id=ACCOUNT_ID)

    scripts.content.update(
        "sdk-hello",
        account_id=ACCOUNT_ID,
        metadata={"main_module": "index.js"},
        files=files(HELLO.replace(b"hi ", b"new ")),
    )
    assert account.get("sdk-hello").text == "new edited"  # new code, bindings kept
    scripts.delete("sdk-hello", account_id=ACCOUNT_ID)
    assert "sdk-hello" not in [s.id for s in scripts.list(account_id=ACCOUNT_ID)]
    assert account.get("sdk-hello").status_code == 404


def test_dispatch_namespaces_and_their_scripts(client: cloudflare.Cloudflare) -> None:
    namespaces = client.workers_for_platforms.dispatch.namespaces
    made = namespaces.create(account_id=ACCOUNT_ID, name="sdk-tenants")
    assert made.namespace_name == "sdk-tenants"
    assert "sdk-tenants" in [n.namespace_name for n in namespaces.list(account_id=ACCOUNT_ID)]
    scripts = namespaces.scripts
    uploaded = scripts.update(
        "tenant-a",
        account_id=ACCOUNT_ID,
        dispatch_namespace="sdk-tenants",
        metadata=metadata(),
        files=files(),
    )
    assert uploaded.id == "tenant-a"
    described = scripts.get("tenant-a", account_id=ACCOUNT_ID, dispatch_namespace="sdk-tenants")
    assert described.dispatch_namespace == "sdk-tenants"
    assert described.script is not None
    assert described.script.id == "tenant-a"
    got = namespaces.get("sdk-tenants", account_id=ACCOUNT_ID)
    assert got.script_count == 1
    settings = scripts.settings.get(
        "tenant-a", account_id=ACCOUNT_ID, dispatch_namespace="sdk-tenants"
    )
    assert [b.name for b in settings.bindings or []] == ["WHO", "KEY"]
    content = scripts.content.get(
        "tenant-a", account_id=ACCOUNT_ID, dispatch_namespace="sdk-tenants"
    )
    assert content.read() == HELLO
    scripts.delete("tenant-a", account_id=ACCOUNT_ID, dispatch_namespace="sdk-tenants")
    assert namespaces.get("sdk-tenants", account_id=ACCOUNT_ID).script_count == 0
    namespaces.delete("sdk-tenants", account_id=ACCOUNT_ID)
    with pytest.raises(cloudflare.NotFoundError):
        namespaces.get("sdk-tenants", account_id=ACCOUNT_ID)


def test_graphql_through_the_sdk(account: Account, client: cloudflare.Cloudflare) -> None:
    client.workers.scripts.update(
        "sdk-counted", account_id=ACCOUNT_ID, metadata=metadata(), files=files()
    )
    for _ in range(7):
        assert account.get("sdk-counted").status_code == 200
    query = """query($account: string!, $script: string, $since: Time!) { viewer {
      accounts(filter: {accountTag: $account}) {
        workersInvocationsAdaptive(limit: 10, filter: {scriptName: $script, datetime_geq: $since}) {
          sum { requests errors } quantiles { cpuTimeP50 } dimensions { status } } } } }"""
    answer: Any = client.post(
        "/graphql",
        cast_to=object,
        body={
            "query": query,
            "variables": {
                "account": ACCOUNT_ID,
                "script": "sdk-counted",
                "since": "2000-01-01T00:00:00Z",
            },
        },
    )
    [group] = answer["data"]["viewer"]["accounts"][0]["workersInvocationsAdaptive"]
    assert group["sum"] == {"requests": 7, "errors": 0}
    assert group["quantiles"]["cpuTimeP50"] > 0
    assert "wall time" in answer["extensions"]["apiary"]
    unsupported: Any = client.post(
        "/graphql",
        cast_to=object,
        body={
            "query": '{ viewer { accounts(filter: {accountTag: "x"}) { '
            "workersInvocationsAdaptive(limit: 1) { sum { clientDisconnects } } } } }"
        },
    )
    assert unsupported["data"] is None
    assert "clientDisconnects" in unsupported["errors"][0]["message"]


LOGGED = (
    b"export default { fetch(req) { const path = new URL(req.url).pathname;"
    b' console.log("serving", path);'
    b' if (path === "/throw") throw new TypeError("logged broke");'
    b' return new Response("fine"); } };'
)


def test_the_telemetry_query_through_the_sdk(
    account: Account, client: cloudflare.Cloudflare
) -> None:
    """Workers Observability's query, answered from what workerd's Worker printed and threw."""
    client.workers.scripts.update(
        "sdk-logged", account_id=ACCOUNT_ID, metadata=metadata(), files=files(LOGGED)
    )
    assert account.get("sdk-logged", "/a").status_code == 200
    assert account.get("sdk-logged", "/throw").status_code == 500
    now = time.time() * 1000
    mine = {"key": "$workers.scriptName", "operation": "eq", "type": "string",
            "value": "sdk-logged"}  # fmt: skip
    telemetry = client.workers.observability.telemetry
    answer = telemetry.query(
        account_id=ACCOUNT_ID, query_id="adhoc", timeframe={"from": now - 60_000, "to": now},
        view="invocations", parameters={"filters": [mine]},
    )  # fmt: skip
    assert answer.invocations is not None
    by_outcome = {
        events[0].workers.outcome: events  # type: ignore[union-attr]
        for events in answer.invocations.values()
    }
    assert set(by_outcome) == {"ok", "exception"}
    thrown = by_outcome["exception"]
    assert [e.metadata.message for e in thrown][1] == "serving /throw"
    assert thrown[-1].metadata.error == "TypeError: logged broke"
    events = telemetry.query(
        account_id=ACCOUNT_ID, query_id="adhoc", timeframe={"from": now - 60_000, "to": now},
        view="events", limit=2, parameters={"filters": [mine]},
    )  # fmt: skip
    assert events.events is not None
    assert len(events.events.events or []) == 2
    with pytest.raises(cloudflare.BadRequestError, match="not served locally"):
        telemetry.query(
            account_id=ACCOUNT_ID, query_id="adhoc", timeframe={"from": 0, "to": now},
            view="traces",
        )  # fmt: skip


def test_browser_rendering_endpoints(account: Account, client: cloudflare.Cloudflare) -> None:
    rendering = client.browser_rendering
    assert "<h1>Hello</h1>" in rendering.content.create(account_id=ACCOUNT_ID, html=PAGE)
    links = rendering.links.create(account_id=ACCOUNT_ID, html=PAGE)
    assert links == ["https://example.com/a", "https://example.org/b"]
    markdown = rendering.markdown.create(account_id=ACCOUNT_ID, html=PAGE)
    assert markdown.startswith("# Hello")
    assert "[link](https://example.com/a)" in markdown
    assert "color: red" not in markdown
    assert rendering.pdf.create(account_id=ACCOUNT_ID, html=PAGE).read().startswith(b"%PDF-")
    # snapshot, scrape and screenshot take a url: a page of a Worker of this account.
    client.workers.scripts.update(
        "sdk-page",
        account_id=ACCOUNT_ID,
        metadata=metadata(),
        files=files(
            b"export default { fetch() { return new Response(%s, "
            b"{headers: {'content-type': 'text/html'}}); } };" % json.dumps(PAGE).encode()
        ),
    )
    page = f"http://sdk-page.localhost:{account.server.port}/"
    snapshot = rendering.snapshot.create(account_id=ACCOUNT_ID, url=page)
    assert snapshot.content is not None
    assert "<h1>Hello</h1>" in snapshot.content
    assert snapshot.screenshot
    # Cloudflare answers scrape matches as a list and screenshots as PNG bytes, as its docs
    # say; the SDK's models (an object; a JSON envelope) disagree, so these are read raw.
    scraped = rendering.scrape.with_raw_response.create(
        account_id=ACCOUNT_ID, url=page, elements=[{"selector": "a"}]
    )
    [item] = scraped.http_response.json()["result"]
    assert [r["text"] for r in item["results"]] == ["link", "another"]
    shot = rendering.screenshot.with_raw_response.create(account_id=ACCOUNT_ID, url=page)
    assert shot.http_response.content.startswith(b"\x89PNG")


def _refused(account: Account, response: httpx.Response, needle: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False
    assert body["errors"][0]["code"] > 10000
    assert needle in body["errors"][0]["message"]


def _upload(
    account: Account, name: str, meta: dict[str, Any], parts: list[tuple[str, bytes, str]]
) -> httpx.Response:
    multipart = [("metadata", ("blob", json.dumps(meta), "application/json"))]
    multipart += [(filename, (filename, content, kind)) for filename, content, kind in parts]
    return httpx.put(
        f"{account.api}/accounts/{ACCOUNT_ID}/workers/scripts/{name}",
        headers=account.headers,
        files=multipart,
        timeout=30,
    )


def test_bad_uploads_are_refused_and_nothing_is_stored(account: Account, tmp_path: Path) -> None:
    scripts_url = f"{account.api}/accounts/{ACCOUNT_ID}/workers/scripts"
    unknown = metadata(bindings=[{"type": "teleporter", "name": "T"}])
    _refused(account, _upload(account, "bad-a", unknown, files()), "unknown type 'teleporter'")
    kv = metadata(bindings=[{"type": "kv_namespace", "name": "KV", "namespace_id": "x"}])
    _refused(account, _upload(account, "bad-b", kv, files()), "cannot be honoured")
    missing = metadata(main_module="worker.js")
    _refused(account, _upload(account, "bad-c", missing, files()), "not among the uploaded")
    crash = b'throw new Error("top-level crash"); export default {};'
    _refused(account, _upload(account, "bad-d", metadata(), files(crash)), "failed to start")
    names = [s["id"] for s in httpx.get(scripts_url, headers=account.headers).json()["result"]]
    assert not {"bad-a", "bad-b", "bad-c", "bad-d"} & set(names)
    assert not (account.server.state / "account" / "run").exists() or all(
        "bad" not in p.name for p in (account.server.state / "account" / "run").iterdir()
    )

    assert _upload(account, "good", metadata(), files()).status_code == 200
    other = _upload(account, "other", metadata(), files()).json()["result"]["deployment_id"]
    deployments = f"{scripts_url}/good/deployments"
    before = httpx.get(deployments, headers=account.headers).json()["result"]["deployments"]
    [current] = before[0]["versions"]
    for versions, needle in [
        ([{"version_id": current["version_id"], "percentage": 60}], "sum to 60"),
        ([{"version_id": other, "percentage": 100}], "not a version of good"),
    ]:
        response = httpx.post(
            deployments,
            headers=account.headers,
            json={"strategy": "percentage", "versions": versions},
        )
        _refused(account, response, needle)
    assert httpx.get(deployments, headers=account.headers).json()["result"]["deployments"] == before
    assert account.get("good").text == "hi sdk"  # and it still runs


def test_a_python_worker_is_stored_and_listed_but_not_run(account: Account) -> None:
    meta = {"main_module": "entry.py", "compatibility_flags": ["python_workers"]}
    python = [("entry.py", b"from workers import WorkerEntrypoint\n", "text/x-python")]
    uploaded = _upload(account, "snake", meta, python)
    assert uploaded.status_code == 200, uploaded.text
    assert "not run locally" in uploaded.json()["messages"][0]["message"]
    listed = httpx.get(
        f"{account.api}/accounts/{ACCOUNT_ID}/workers/scripts", headers=account.headers
    ).json()["result"]
    [snake] = [s for s in listed if s["id"] == "snake"]
    assert snake["apiary_local"]["runnable"] is False
    assert "Python Workers cannot run locally" in snake["apiary_local"]["reason"]
    answer = account.get("snake")
    assert answer.status_code == 503
    assert "Pyodide" in answer.text
