"""Hosts one Durable Object class: instances, the input gate, the output gate and alarms.

- Input gate, as Cloudflare has it: it holds across storage and opens while the object awaits
  anything else. Storage calls are synchronous here, so code between two awaits runs alone;
  while an event awaits an outbound call (fetch, D1, another object) or a timer, other events
  (requests, RPC, socket messages, closes) are delivered to the same instance. One alarm runs at
  a time.
- Output gate (`apiary_local.output_gate` for calls out): writes are on disk before anything
  leaves: before each outbound call, and before an event's response returns or its socket
  messages are sent. (Cloudflare commits the writes of each turn together; here a turn's writes
  commit at the next of those points, which is the same guarantee for whoever can observe
  them.) The fsync runs in a thread (`wal_sync`): while
  one object waits for its writes to reach the disk, the others run.
- Work after the answer (`ctx.wait_until`) runs as part of its event: the instance is not
  evicted while it runs, and its writes commit before its calls leave and when it ends.
- Alarms: persisted in the object's file, re-armed at start-up (overdue ones fire at once), and
  retried with exponential backoff from 2 s, up to 6 times, when the handler raises.
- Hibernation: an instance idle for `evict_after_s` is dropped (its file closed); sockets stay
  with the host and the next event builds a fresh instance.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apiary_local.meter import Meter
from apiary_local.output_gate import gated_services
from apiary_local.sockets import Connection, LocalSocket, LocalSocketHub
from apiary_local.storage import LocalObjectStorage
from durable.base import (
    AlarmInfo,
    DurableObjectLogic,
    ObjectContext,
    ObjectRequest,
    ObjectResponse,
    Work,
    rpc_methods,
)
from durable.rpc import dispatch
from logs import get_logger
from services import Services

log = get_logger("objects")
ALARM_MAX_RETRIES = 6
ALARM_FIRST_BACKOFF_MS = 2000


def object_id(class_name: str, name: str) -> str:
    """A stable 64-hex-digit id per name, like `idFromName`."""
    return hashlib.sha256(f"{class_name}\x00{name}".encode()).hexdigest()


def alarm_backoff_ms(retry_count: int) -> int:
    """Delay before retry number `retry_count + 1` of a failed alarm."""
    factor: int = 2**retry_count  # typeshed: int ** int is Any
    return ALARM_FIRST_BACKOFF_MS * factor


def clone(value: Any) -> Any:
    """Copy a value across the RPC boundary with Cloudflare's rules (structured clone)."""
    if value is None or isinstance(value, str | int | float | bool | dt.datetime | bytes):
        return value
    if isinstance(value, list):
        return [clone(v) for v in value]
    if isinstance(value, dict):
        return {str(k): clone(v) for k, v in value.items()}
    raise TypeError(f"{type(value)} cannot be sent over RPC.")


@dataclass
class _Slot:
    id: str
    name: str | None
    hub: LocalSocketHub
    storage: LocalObjectStorage | None = None
    instance: DurableObjectLogic | None = None
    last_used: float = 0.0
    timer: asyncio.TimerHandle | None = None
    active: int = 0  # events in flight: an instance with any is never evicted
    alarm_running: bool = False
    armed_version: int = -1  # the storage's alarm version the timer was set from


class ObjectHost:
    def __init__(
        self,
        *,
        class_name: str,
        logic: type[DurableObjectLogic],
        state_dir: Path,
        meter: Meter,
        services: Callable[[], Services],
        evict_after_s: float = 30.0,
        timers: bool = True,
    ) -> None:
        """`timers=False`: alarms are stored as ever but fire only when the caller fires them
        (tests on a step clock, where a due alarm must not fire by itself while others run)."""
        self.class_name = class_name
        self.logic = logic
        self.dir = state_dir / "objects" / class_name
        self.meter = meter
        self.services = services
        self.evict_after_s = evict_after_s
        self.timers = timers
        self.rpc = frozenset(rpc_methods(logic))
        self._slots: dict[str, _Slot] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle ---

    async def start(self) -> None:
        """Re-arm every persisted alarm; overdue ones fire at once."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.dir.glob("*.sqlite")):
            storage = LocalObjectStorage(path, self.meter, self.class_name)
            try:
                name, alarm = storage.get_meta("name"), storage.alarm()
            finally:
                storage.close()
            slot = self._slot(path.stem, name)
            if alarm is not None:
                self._arm(slot, alarm[0])

    async def stop(self) -> None:
        for slot in self._slots.values():
            if slot.timer:
                slot.timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for slot in self._slots.values():
            self._close(slot)

    def evict_idle(self, now: float) -> int:
        evicted = 0
        for slot in self._slots.values():
            idle = now - slot.last_used > self.evict_after_s
            if slot.instance is not None and idle and not slot.active and not slot.alarm_running:
                self._close(slot)
                evicted += 1
        return evicted

    @property
    def live_instances(self) -> int:
        return sum(1 for s in self._slots.values() if s.instance is not None)

    # --- events ---

    async def call(self, name: str, method: str, args: list[Any]) -> Any:
        if method not in self.rpc:
            raise AttributeError(f"{self.class_name} has no RPC method {method!r}")
        self.meter.count("do_requests", object_class=self.class_name)
        args = clone(args)

        async def invoke(instance: DurableObjectLogic) -> Any:
            return clone(await dispatch(instance, method, args))

        return await self._event(self._slot_for(name), invoke)

    async def connect(
        self,
        name: str,
        request: ObjectRequest,
        connection: Connection,
        accept: Callable[[], Awaitable[None]],
    ) -> tuple[ObjectResponse, LocalSocket | None, LocalSocketHub]:
        """Offer a WebSocket upgrade to the object; `accept` runs before any message leaves."""
        self.meter.count("do_requests", object_class=self.class_name)
        slot = self._slot_for(name)

        async def upgrade(instance: DurableObjectLogic) -> ObjectResponse:
            with slot.hub.upgrading(connection):
                return await instance.on_request(request)

        async def after_commit(response: ObjectResponse) -> None:
            if response.socket is not None:
                await accept()

        response = await self._event(slot, upgrade, after_commit=after_commit)
        socket = response.socket if isinstance(response.socket, LocalSocket) else None
        return response, socket, slot.hub

    async def socket_message(self, hub: LocalSocketHub, socket: LocalSocket, data: Any) -> None:
        reply = hub.auto_response(socket, data)
        if reply is not None:
            self.meter.count("do_ws_auto_responses", object_class=self.class_name)
            if socket.connection is not None:
                await socket.connection.send(reply)
            return
        self.meter.count("do_ws_messages", object_class=self.class_name)
        slot = self._slot_of_hub(hub)
        await self._event(slot, lambda o: o.on_socket_message(socket, data))

    async def socket_closed(
        self, hub: LocalSocketHub, socket: LocalSocket, code: int, reason: str
    ) -> None:
        slot = self._slot_of_hub(hub)
        socket.closed = True
        try:
            await self._event(slot, lambda o: o.on_socket_close(socket, code, reason))
        finally:
            hub.forget(socket)

    # --- internals ---

    def _slot(self, object_id_: str, name: str | None) -> _Slot:
        slot = self._slots.get(object_id_)
        if slot is None:
            hub = LocalSocketHub(
                object_id_, lambda: self.meter.count("do_ws_sent", object_class=self.class_name)
            )
            slot = _Slot(object_id_, name, hub)
            self._slots[object_id_] = slot
        return slot

    def _slot_for(self, name: str) -> _Slot:
        return self._slot(object_id(self.class_name, name), name)

    def _slot_of_hub(self, hub: LocalSocketHub) -> _Slot:
        return self._slots[hub.object_id]

    def _open(self, slot: _Slot) -> tuple[LocalObjectStorage, DurableObjectLogic]:
        """The slot's storage and instance, built on first use (synchronously: two events that
        arrive together cannot both build one)."""
        if slot.storage is None:
            slot.storage = LocalObjectStorage(
                self.dir / f"{slot.id}.sqlite", self.meter, self.class_name
            )
        if slot.instance is None:
            services = gated_services(self.services(), slot.storage)
            slot.hub.now_ms = services.clock.now_ms
            context = ObjectContext(
                slot.id,
                slot.name,
                slot.storage,
                slot.hub,
                services,
                wait_until=lambda work: self._continue(slot, work),
            )
            instance = self.logic(context)
            slot.storage.begin()
            try:
                if slot.name is not None and slot.storage.get_meta("name") is None:
                    slot.storage.set_meta("name", slot.name)
                instance.on_start()
            except BaseException:
                slot.storage.rollback()
                raise
            slot.storage.commit()
            slot.instance = instance
            self.meter.count("do_instances_started", object_class=self.class_name)
        return slot.storage, slot.instance

    def _close(self, slot: _Slot) -> None:
        if slot.storage is not None:
            slot.storage.close()
        slot.storage = None
        slot.instance = None

    async def _event[T](
        self,
        slot: _Slot,
        handler: Callable[[DurableObjectLogic], Awaitable[T]],
        *,
        after_commit: Callable[[T], Awaitable[None]] | None = None,
    ) -> T:
        """Run one event. Other events may run while it awaits (see the module docstring);
        its writes commit before its answer or messages leave."""
        loop = asyncio.get_running_loop()
        slot.active += 1
        slot.last_used = loop.time()
        try:
            storage, instance = self._open(slot)
            try:
                result = await handler(instance)
            except BaseException:
                # As on Cloudflare, a handler's exception does not undo its writes (only
                # storage.transaction does); what it sent is still delivered after commit.
                await self._commit(slot, storage)
                await slot.hub.flush()
                raise
            await self._commit(slot, storage)
            if after_commit is not None:
                await after_commit(result)
            await slot.hub.flush()
            return result
        finally:
            slot.active -= 1
            slot.last_used = loop.time()

    def _continue(self, slot: _Slot, work: Work) -> None:
        """Run `work` on after the event that started it has answered, as part of it."""
        loop = asyncio.get_running_loop()
        storage = slot.storage
        assert storage is not None
        slot.active += 1  # from now: the instance must not be evicted before the work runs

        async def run() -> None:
            try:
                await work
            except Exception:
                fields = {"object_class": self.class_name, "object": slot.name or slot.id}
                log.exception("work after an event failed", extra={"fields": fields})
            finally:
                slot.active -= 1
                slot.last_used = loop.time()
            await self._commit(slot, storage)
            await slot.hub.flush()

        task = loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: work.close())  # cancelled before it ran (stop)

    async def _commit(self, slot: _Slot, storage: LocalObjectStorage) -> None:
        """The output gate: the event's writes on disk before its answer or messages leave."""
        if slot.storage is not storage:
            return  # closed meanwhile (stop, a failed commit): an event cut off writes nothing
        try:
            storage.commit()
            self._rearm(slot, storage)
            await storage.sync.durable()
        except Exception:
            slot.hub.discard_outbox()
            self._close(slot)
            raise

    def _rearm(self, slot: _Slot, storage: LocalObjectStorage) -> None:
        """Set the timer from the stored alarm whenever it changed since the timer was set."""
        if storage.alarm_version == slot.armed_version:
            return
        slot.armed_version = storage.alarm_version
        alarm = storage.alarm()
        if alarm is None:
            self._disarm(slot)
        else:
            self._arm(slot, alarm[0])

    def _arm(self, slot: _Slot, at_ms: int) -> None:
        self._disarm(slot)
        if not self.timers:
            return
        loop = asyncio.get_running_loop()
        now_ms = self.services().clock.now_ms()
        delay = max(0.0, (at_ms - now_ms) / 1000)
        slot.timer = loop.call_later(delay, self._spawn_alarm, slot)

    def _disarm(self, slot: _Slot) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None

    def _spawn_alarm(self, slot: _Slot) -> None:
        slot.timer = None
        task = asyncio.get_running_loop().create_task(self._fire_alarm(slot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fire_alarm(self, slot: _Slot) -> None:
        if slot.alarm_running:
            return  # one alarm at a time: the running one re-arms from storage when it ends
        storage, instance = self._open(slot)
        alarm = storage.alarm()
        now_ms = self.services().clock.now_ms()
        if alarm is None:
            return
        if alarm[0] > now_ms:
            self._arm(slot, alarm[0])  # moved later since the timer was set
            return
        retry_count = alarm[1]
        self.meter.count("do_alarms", object_class=self.class_name)
        slot.alarm_running = True
        slot.active += 1
        # The firing alarm stays stored until the handler is done: if the process dies
        # mid-handler, even after a flush, it fires again at start-up.
        fired = storage.alarm_version
        storage.firing_version = fired
        try:
            await instance.on_alarm(AlarmInfo(retry_count=retry_count))
        except Exception:
            self._after_failed_alarm(slot, storage, retry_count, fired)
        else:
            if storage.alarm_version == fired:  # nothing set a new alarm meanwhile
                await storage.delete_alarm()
        finally:
            storage.firing_version = None
            slot.alarm_running = False
            slot.active -= 1
        slot.armed_version = -1  # re-arm from whatever alarm is stored now
        await self._commit(slot, storage)
        await slot.hub.flush()

    def _after_failed_alarm(
        self, slot: _Slot, storage: LocalObjectStorage, retry_count: int, fired: int
    ) -> None:
        if storage.alarm_version != fired:
            return  # a new alarm was set before the handler raised; that one stands
        fields = {"object_class": self.class_name, "object": slot.name or slot.id}
        if retry_count >= ALARM_MAX_RETRIES:
            log.error("alarm failed; retries exhausted", exc_info=True, extra={"fields": fields})
            storage.clear_alarm()
            return
        delay = alarm_backoff_ms(retry_count)
        log.warning(
            "alarm failed; retrying",
            exc_info=True,
            extra={"fields": {**fields, "retry": retry_count + 1, "in_ms": delay}},
        )
        storage.schedule_alarm(self.services().clock.now_ms() + delay, retry_count=retry_count + 1)
