"""Every route and dependency is `async def`: Pyodide has no threads.

FastAPI runs a plain `def` endpoint or dependency in a worker thread; on Cloudflare starting one
raises "can't start new thread" and the route answers 500. This walks the real app.
"""

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Route

from worker import WORKER


def _is_async(call: Any) -> bool:
    if inspect.iscoroutinefunction(call):
        return True
    # A dependency instance, such as HTTPBearer: its __call__ must be async.
    return not inspect.isfunction(call) and inspect.iscoroutinefunction(type(call).__call__)


def _dependencies(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependencies(sub)


def _sync_callables() -> list[str]:
    app = WORKER.create_app(lambda scope: None)
    found = []
    for route in app.routes:
        if not isinstance(route, Route):
            continue
        calls = [route.endpoint]
        if isinstance(route, APIRoute):
            calls += list(_dependencies(route.dependant))
        found += [
            f"{route.path}: {getattr(c, '__qualname__', c)}" for c in calls if not _is_async(c)
        ]
    return found


def test_every_route_and_dependency_is_async() -> None:
    assert _sync_callables() == []


def test_the_walk_sees_a_sync_dependency() -> None:
    from fastapi import Depends, FastAPI

    def sync_dependency() -> int:
        return 1

    app = FastAPI()

    @app.get("/x")
    async def x(value: int = Depends(sync_dependency)) -> int:
        return value

    (route,) = [r for r in app.routes if isinstance(r, APIRoute)]
    assert [c for c in _dependencies(route.dependant) if not _is_async(c)] == [sync_dependency]
