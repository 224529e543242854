"""Fixtures for tests that run our Cloudflare code on the real Workers SDK over a fake JS layer."""

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jsfake as jsfake_package
import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cloudflare-test-secret-0123456789"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def jsfake() -> Iterator[ModuleType]:
    """Install the fake JS layer for the test module; yields the `jsfake` package (helpers).

    On teardown the fake modules, `workers*` and `asgi` leave `sys.modules`, so other tests
    (and the next module's fresh install) are unaffected. Import `workers` / `js` inside tests
    or fixtures, never at module top level: collection happens before installation.
    """
    jsfake_package.install()
    try:
        yield jsfake_package
    finally:
        jsfake_package.uninstall()


@pytest.fixture(scope="module")
def entry(jsfake: Any) -> Any:
    import entry as module

    yield module
    for name in [n for n in sys.modules if n == "entry" or n.startswith("cloudflare_adapters")]:
        del sys.modules[name]


@pytest.fixture
def db(jsfake: Any) -> Any:
    database = jsfake.FakeD1Database()
    database.apply_migrations(str(ROOT / "migrations"))
    return database


@pytest.fixture
def env(jsfake: Any, db: Any, entry: Any) -> Any:
    def limiter(object_id: Any) -> Any:
        return entry.RateLimiter(jsfake.FakeDurableObjectState(object_id), raw_env)

    def job_runner(object_id: Any) -> Any:
        return entry.JobRunner(jsfake.FakeDurableObjectState(object_id), raw_env)

    namespace = jsfake.FakeDurableObjectNamespace(factory=limiter, python_entrypoint=True)
    runners = jsfake.FakeDurableObjectNamespace(factory=job_runner, python_entrypoint=True)
    raw_env = jsfake.make_env(
        DB=db,
        RATE_LIMITER=namespace,
        JOB_RUNNER=runners,
        ENVIRONMENT="production",
        CORS_ORIGINS="https://apiary.example",
        JWT_SECRET=SECRET,
    )
    return raw_env
