"""`ctx.wait_until` on the local host: work that goes on after an event has answered runs as
part of it (the instance stays, its writes are committed when it ends)."""

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

import pytest

from durable.base import DurableObjectLogic, rpc
from durable.rpc import ObjectClient
from tests.world import World

pytestmark = pytest.mark.anyio
RELEASE = asyncio.Event()


class Later(DurableObjectLogic):
    SCHEMA: ClassVar[tuple[str, ...]] = ("CREATE TABLE IF NOT EXISTS log (what TEXT)",)

    @rpc
    async def go(self) -> str:
        self.ctx.storage.exec("INSERT INTO log VALUES ('answered')")
        self.ctx.wait_until(self._after())
        return "answered"

    async def _after(self) -> None:
        await RELEASE.wait()
        self.ctx.storage.exec("INSERT INTO log VALUES ('after')")


class LaterClient(ObjectClient):
    async def go(self) -> Any:
        return await self.invoke(Later.go)


def logged(world: World) -> list[str]:
    with contextlib.closing(sqlite3.connect(world.object_file("LATER", "x"))) as db:
        return [r[0] for r in db.execute("SELECT what FROM log")]


async def test_work_after_the_answer_is_part_of_the_event(tmp_path: Path) -> None:
    async with World(tmp_path, classes={"LATER": Later}) as world:
        RELEASE.clear()
        assert await LaterClient(world.services.namespace("LATER").get("x")).go() == "answered"
        assert logged(world) == ["answered"]
        host = world.hosts["LATER"]
        assert host.evict_idle(asyncio.get_running_loop().time() + 3600) == 0  # still working
        RELEASE.set()
        await world.settle()
        assert logged(world) == ["answered", "after"]  # committed when the work ended
        assert host.evict_idle(asyncio.get_running_loop().time() + 3600) == 1
