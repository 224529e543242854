"""Browser check routes: start runs (each in its own object, run by its alarm), read results
and screenshots (from D1 and the ARTIFACTS bucket), manage suites, and show plan usage."""

import asyncio
import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from api.deps import get_services
from api.paging import newest_first
from api.security import require
from auth.scopes import Scope
from auth.tokens import Claims
from browser.models import BrowserTestIn, RunSuiteIn, SuiteIn
from browser.settings import ARTIFACTS
from clock import rfc3339
from durable.browser_limits import BrowserLimitsClient
from durable.browser_test_run import BrowserTestRunClient
from egress import require_allowed
from errors import InvalidInput, NotFound
from fleet import inventory
from ids import looks_like, new_id
from ports import first, query
from services import Services

router = APIRouter(tags=["browser tests"])
READ = Depends(require(Scope.BROWSER_TESTS_READ))
WRITE = Depends(require(Scope.BROWSER_TESTS_WRITE))
COLUMNS = (
    "id, test_type, target_url, worker, status, assertions, duration_ms, error, screenshot_key,"
    " suite_run_id, suite_name, created_at, started_at, completed_at"
)


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "assertions": json.loads(row["assertions"] or "[]")}


async def _target(services: Services, test: BrowserTestIn) -> BrowserTestIn:
    """A check of a managed Worker runs against the Worker's URL."""
    if test.worker is None:
        return test
    row = await inventory.require(services.database, test.worker)
    if not row["url"]:
        raise InvalidInput(f"the Worker {test.worker!r} has no URL to check")
    return test.model_copy(update={"target_url": row["url"]})


async def _start(services: Services, test: BrowserTestIn, **suite: str) -> dict[str, Any]:
    test = await _target(services, test)
    require_allowed(services.config, test.urls())
    run_id = new_id(services.clock.now_ms(), prefix="btr_")
    spec = {"id": run_id, **test.model_dump(mode="json"), **suite}
    return await BrowserTestRunClient.for_run(services, run_id).start(spec)


@router.post("/api/browser_tests", status_code=201)
async def create_run(
    body: BrowserTestIn, _: Claims = WRITE, services: Services = Depends(get_services)
) -> dict[str, Any]:
    return {"test_run": await _start(services, body)}


@router.get("/api/browser_tests")
async def list_runs(
    _: Claims = READ,
    services: Services = Depends(get_services),
    test_type: Literal["smoke", "auth", "security_session", "user_journey", "suite"] | None = None,
    status: Literal["pending", "running", "passed", "failed", "error", "cancelled"] | None = None,
    suite_run_id: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, max_length=64),
) -> dict[str, Any]:
    """Newest first. Pass `next_cursor` back as `cursor` for the next page."""
    shown, next_cursor = await newest_first(
        services.database,
        f"SELECT {COLUMNS} FROM browser_test_runs",
        equal={"test_type": test_type, "status": status, "suite_run_id": suite_run_id},
        cursor=cursor,
        prefix="btr_",
        limit=limit,
    )
    return {"test_runs": [_row(r) for r in shown], "next_cursor": next_cursor}


@router.get("/api/browser_tests/limits")
async def limits(_: Claims = READ, services: Services = Depends(get_services)) -> dict[str, Any]:
    return dict(await BrowserLimitsClient.of(services).usage())


@router.post("/api/browser_tests/suites", status_code=201)
async def save_suite(
    body: SuiteIn, _: Claims = WRITE, services: Services = Depends(get_services)
) -> dict[str, Any]:
    require_allowed(services.config, [url for test in body.tests for url in test.urls()])
    now = rfc3339(services.clock.now())
    tests = json.dumps([t.model_dump(mode="json") for t in body.tests])
    await services.database.execute(
        "INSERT INTO browser_suites (name, description, tests, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET description ="
        " excluded.description, tests = excluded.tests, updated_at = excluded.updated_at",
        body.name,
        body.description,
        tests,
        now,
        now,
    )
    return {"name": body.name, "description": body.description, "tests": json.loads(tests)}


@router.get("/api/browser_tests/suites")
async def list_suites(
    _: Claims = READ, services: Services = Depends(get_services)
) -> dict[str, Any]:
    rows = await query(
        services.database,
        "SELECT name, description, tests, created_at, updated_at FROM browser_suites ORDER BY name",
    )
    return {"suites": [{**r, "tests": json.loads(r["tests"])} for r in rows]}


@router.post("/api/browser_tests/run_suite", status_code=201)
async def run_suite(
    body: RunSuiteIn, _: Claims = WRITE, services: Services = Depends(get_services)
) -> dict[str, Any]:
    suite = await first(
        services.database, "SELECT tests FROM browser_suites WHERE name = ?", body.suite_name
    )
    if suite is None:
        raise NotFound(f"no suite named {body.suite_name!r}")
    tests = [BrowserTestIn.model_validate(t) for t in json.loads(suite["tests"])]
    require_allowed(services.config, [url for test in tests for url in test.urls()])
    suite_run_id = new_id(services.clock.now_ms(), prefix="btr_")
    await services.database.execute(
        f"INSERT INTO browser_test_runs ({COLUMNS}, version) VALUES"
        " (?, 'suite', '', NULL, 'running', '[]', NULL, NULL, NULL, NULL, ?, ?, NULL, NULL, 1)",
        suite_run_id,
        body.suite_name,
        rfc3339(services.clock.now()),
    )
    children = await asyncio.gather(
        *(_start(services, t, suite_run_id=suite_run_id, suite_name=body.suite_name) for t in tests)
    )
    return {"suite_run": await _suite_view(services, suite_run_id), "test_runs": children}


async def _suite_view(services: Services, suite_run_id: str) -> dict[str, Any]:
    row = await first(
        services.database, f"SELECT {COLUMNS} FROM browser_test_runs WHERE id = ?", suite_run_id
    )
    assert row is not None
    children = [
        _row(r)
        for r in await query(
            services.database,
            f"SELECT {COLUMNS} FROM browser_test_runs WHERE suite_run_id = ? ORDER BY id",
            suite_run_id,
        )
    ]
    statuses = {c["status"] for c in children}
    if statuses & {"pending", "running"}:
        status = "running"
    else:
        status = next((s for s in ("error", "failed") if s in statuses), "passed")
    return {**_row(row), "status": status, "children": children}


def _run_id(run_id: str) -> str:
    if not looks_like(run_id, "btr_"):
        raise NotFound("no such test run")
    return run_id


@router.get("/api/browser_tests/{run_id}")
async def get_run(
    run_id: str, _: Claims = READ, services: Services = Depends(get_services)
) -> dict[str, Any]:
    row = await first(
        services.database, f"SELECT {COLUMNS} FROM browser_test_runs WHERE id = ?", _run_id(run_id)
    )
    if row is None:
        raise NotFound("no such test run")
    if row["test_type"] == "suite":
        return await _suite_view(services, run_id)
    return _row(row)


@router.get("/api/browser_tests/{run_id}/screenshot")
async def screenshot(
    run_id: str, _: Claims = READ, services: Services = Depends(get_services)
) -> Response:
    row = await first(
        services.database,
        "SELECT screenshot_key FROM browser_test_runs WHERE id = ?",
        _run_id(run_id),
    )
    data = None
    if row is not None and row["screenshot_key"]:
        data = await services.bucket(ARTIFACTS).get(row["screenshot_key"])
    if data is None:
        raise NotFound("no screenshot for this run")
    return Response(data, media_type="image/png")


@router.post("/api/browser_tests/{run_id}/cancel")
async def cancel_run(
    run_id: str, _: Claims = WRITE, services: Services = Depends(get_services)
) -> dict[str, Any]:
    """End a run that has not finished (409 if it has); a check in flight is not waited for."""
    return await BrowserTestRunClient.for_run(services, _run_id(run_id)).cancel()
