"""A swarm's device sockets as one event sees them, read in one pass over the hub.

A device socket's attachment holds who it is (`dev`, once joined), the version of the state it
was last sent on its own (`v`), when it was last heard from (`seen`), and the chunks it holds
(`held`: chunk id -> deadline, epoch ms). Chunks live on a connection: the attachment survives
hibernation and goes with the connection, so chunks in flight cost no row. When a device's
connection goes, what it held is simply held no longer: the chunks' rows still say `pending`.
At the largest quota (16) `held` takes about 850 of the attachment's 2,048 bytes.
"""

from collections.abc import Sequence
from typing import Any

from ports import Socket


class Connections:
    def __init__(self, sockets: Sequence[Socket]) -> None:
        self.joined: dict[str, Socket] = {}  # by device id
        self.unjoined: list[tuple[Socket, dict[str, Any]]] = []  # upgraded, no JOIN or RESUME yet
        self._meta: dict[str, dict[str, Any]] = {}
        for socket in sockets:
            meta = socket.attachment or {}
            if meta.get("closed"):
                continue  # closed by us: what it sends now is ignored
            device_id = meta.get("dev")
            if device_id is None:
                self.unjoined.append((socket, meta))
            else:
                self.joined[device_id] = socket
                self._meta[device_id] = meta

    def meta(self, device_id: str) -> dict[str, Any]:
        return self._meta.get(device_id, {})

    def held(self, device_id: str) -> dict[str, int]:
        return dict(self.meta(device_id).get("held") or {})

    def holders(self) -> dict[str, str]:
        """Every chunk in flight, and the device holding it."""
        return {chunk: device for device in self.joined for chunk in self.held(device)}

    def hold(self, device_id: str, chunk_id: str, deadline_ms: int) -> None:
        self._set_held(device_id, {**self.held(device_id), chunk_id: deadline_ms})

    def let_go(self, device_id: str, chunk_id: str) -> None:
        held = self.held(device_id)
        held.pop(chunk_id, None)
        self._set_held(device_id, held)

    def forget(self, device_id: str) -> list[str]:
        """The device's connection is going: the chunks it held, which nobody holds now. Its
        attachment is left as it is (the socket is closing, or was replaced)."""
        self.joined.pop(device_id, None)
        return sorted(self._meta.pop(device_id, {}).get("held") or {})

    def _set_held(self, device_id: str, held: dict[str, int]) -> None:
        meta = self._meta[device_id]
        if held:
            meta["held"] = held
        else:
            meta.pop("held", None)
        self.joined[device_id].attach(meta)
