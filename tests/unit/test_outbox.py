"""The outbox on a real object storage: a row put again while it is delivered is not lost, and
rows a drain is delivering do not make the alarm due."""

import asyncio
from pathlib import Path

import pytest

from apiary_local.meter import Meter
from apiary_local.storage import LocalObjectStorage
from durable import outbox
from durable.outbox import FIRST_RETRY_MS, Effect, Outbox

pytestmark = pytest.mark.anyio


async def test_a_key_put_again_during_its_delivery_is_delivered_again(tmp_path: Path) -> None:
    storage = LocalObjectStorage(tmp_path / "o.sqlite", Meter(), "T")
    storage.exec(outbox.SCHEMA)
    state = {"value": "old"}
    seen: list[str] = []
    entered, release = asyncio.Event(), asyncio.Event()

    async def project(_: str) -> None:
        seen.append(state["value"])  # a projection reads the state as it is now
        entered.set()
        await release.wait()

    box = Outbox(storage, now_ms=lambda: 0, deliver={"project": project})
    box.put(Effect("project:r1", "project"))
    draining = asyncio.ensure_future(box.drain())
    await entered.wait()
    state["value"] = "new"  # changed while the projection of "old" is out
    box.put(Effect("project:r1", "project"))
    release.set()
    await draining
    assert seen == ["old", "new"]
    assert storage.exec("SELECT key FROM outbox") == []
    storage.close()


async def test_while_a_drain_delivers_the_alarm_waits_for_it(tmp_path: Path) -> None:
    storage = LocalObjectStorage(tmp_path / "o.sqlite", Meter(), "T")
    storage.exec(outbox.SCHEMA)
    entered, release = asyncio.Event(), asyncio.Event()

    async def project(_: str) -> None:
        entered.set()
        await release.wait()

    box = Outbox(storage, now_ms=lambda: 1_000, deliver={"project": project})
    box.put(Effect("project:r1", "project"))
    assert box.next_due_ms() == 1_000  # due now: the alarm must come
    draining = asyncio.ensure_future(box.drain())
    await entered.wait()
    # Being delivered here: an alarm now would only find the drain running.
    assert box.next_due_ms() == 1_000 + FIRST_RETRY_MS
    release.set()
    await draining
    assert box.next_due_ms() is None
    storage.close()
