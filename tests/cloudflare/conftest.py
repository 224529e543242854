"""Fixtures for tests that run our Cloudflare code on the real Workers SDK over a fake JS layer."""

from collections.abc import Iterator
from types import ModuleType

import jsfake as jsfake_package
import pytest


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
