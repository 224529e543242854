"""A smoke check's calls, at the Http port: one step-runner run when there is a runner; the
REST snapshot and a direct fetch (for the status) when there is none."""

import base64
from typing import Any

import pytest

from browser.execute import execute
from ports import Config
from services import Services
from tests.world import FakeHttp, Reply, StepClock

pytestmark = pytest.mark.anyio
RUNNER, REST = "http://runner.test", "http://cf.test/client/v4/accounts/a/browser-rendering"
URL = "http://site.test/"
PAGE = "<html><head><title>Home</title></head><body><h1 id='hello'>Hi</h1></body></html>"
PNG = b"\x89PNG\r\n\x1a\nfake"
OPTIONS = {"required_text": ["Hi"], "required_selectors": ["#hello", "#nope"]}


def services(http: FakeHttp, **config: str) -> Services:
    values = {"CF_API_BASE": "http://cf.test/client/v4", "CF_ACCOUNT_ID": "a", **config}
    return Services(
        database=None,  # type: ignore[arg-type]  # a check does not touch D1
        namespaces={},
        http=http,
        clock=StepClock(),
        config=Config(values, secret_names=frozenset()),
    )


def report(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    done = [{"index": i, "ok": True, "screenshot": None, **s} for i, s in enumerate(steps)]
    return {"ok": all(s["ok"] for s in done), "steps": done, "status": 200, "load_ms": 40,
            "console_errors": ["boom"], **fields}  # fmt: skip


def outcome_view(outcome: Any) -> dict[str, Any]:
    return {a["name"]: (a["passed"], a["actual"]) for a in outcome.assertions}


async def test_with_a_runner_one_run_gives_everything() -> None:
    http = FakeHttp()
    loaded = report(
        {"action": "goto"},
        {"action": "content", "actual": PAGE},
        {"action": "screenshot", "screenshot": base64.b64encode(PNG).decode()},
        {"action": "count", "actual": 1},
        {"action": "count", "actual": 0},
    )
    http.route("POST", f"{RUNNER}/run", lambda _: Reply(200, loaded))
    outcome = await execute(services(http, BROWSER_RUNNER_URL=RUNNER), "smoke", URL, OPTIONS)
    assert [(c.method, c.url) for c in http.calls] == [("POST", f"{RUNNER}/run")]
    assert http.calls[0].body["steps"] == [
        {"action": "goto", "url": URL},
        {"action": "content"},
        {"action": "screenshot"},
        {"action": "count", "selector": "#hello"},
        {"action": "count", "selector": "#nope"},
    ]
    assert outcome_view(outcome) == {
        "status is 2xx": (True, 200),
        "title is not empty": (True, "Home"),
        "text: Hi": (True, True),
        "selector: #hello": (True, 1),
        "selector: #nope": (False, 0),
        "no console errors": (False, ["boom"]),
        "load time": (True, 40),
    }
    assert outcome.screenshot == PNG


async def test_a_page_the_runner_cannot_load_is_an_error() -> None:
    http = FakeHttp()
    failed = report({"action": "goto", "ok": False, "error": "net::ERR_EMPTY_RESPONSE"},
                    status=None, load_ms=None)  # fmt: skip
    http.route("POST", f"{RUNNER}/run", lambda _: Reply(200, failed))
    outcome = await execute(services(http, BROWSER_RUNNER_URL=RUNNER), "smoke", URL, {})
    assert (outcome.status, outcome.error) == ("error", f"{URL}: net::ERR_EMPTY_RESPONSE")


async def test_without_a_runner_the_rest_snapshot_and_a_fetch_for_the_status() -> None:
    http = FakeHttp()
    snapshot = {"content": PAGE, "screenshot": base64.b64encode(PNG).decode()}
    http.route("POST", f"{REST}/snapshot", lambda _: Reply(200, {"success": True,
               "result": snapshot}))  # fmt: skip
    scraped = [{"selector": "#hello", "results": [{}]}, {"selector": "#nope", "results": []}]
    http.route("POST", f"{REST}/scrape", lambda _: Reply(200, {"success": True,
               "result": scraped}))  # fmt: skip
    http.route("GET", URL, lambda _: Reply(200, PAGE))
    outcome = await execute(services(http), "smoke", URL, OPTIONS)
    assert sorted((c.method, c.url) for c in http.calls) == [
        ("GET", URL), ("POST", f"{REST}/scrape"), ("POST", f"{REST}/snapshot")
    ]  # fmt: skip
    found = outcome_view(outcome)
    assert "no console errors" not in found  # only a browser's own load can tell
    assert found["selector: #nope"] == (False, 0)
    assert found["status is 2xx"] == (True, 200)
    assert outcome.screenshot == PNG
