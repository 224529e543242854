"""What Cloudflare would bill, counted as the local runtime serves.

Counts Worker requests and scheduled runs, Durable Object requests (fetch and RPC), alarm runs,
incoming socket messages (Cloudflare bills 20 of them as one request) and auto-responses (not
billed), D1 and object-storage rows read and written, and CPU time. Rows read are rows returned
(Cloudflare counts rows scanned, which can only be more); rows written are rows changed, plus
one per alarm set or deleted, as Cloudflare bills them.

CPU is the whole process's CPU time since the last reset: invocations interleave on one event
loop, so per-invocation figures cannot be separated honestly. It is an upper bound of what
Workers would bill, since it includes the local runtime's own HTTP server.
"""

from __future__ import annotations

import math
import time
from typing import Any

WS_MESSAGES_PER_REQUEST = 20


class _Totals(dict[str, float]):
    """A Counter of floats (typeshed's Counter holds ints): a missing key reads as 0."""

    def __missing__(self, key: str) -> float:
        return 0


class Meter:
    def __init__(self) -> None:
        self.totals = _Totals()
        self.by_class: dict[str, _Totals] = {}
        self._cpu_since = time.process_time()

    def count(self, key: str, amount: float = 1, *, object_class: str | None = None) -> None:
        self.totals[key] += amount
        if object_class is not None:
            counter = self.by_class.get(object_class)
            if counter is None:  # not setdefault: a Counter per call is most of a count's cost
                counter = self.by_class[object_class] = _Totals()
            counter[key] += amount

    def reset(self) -> None:
        self.totals.clear()
        self.by_class.clear()
        self._cpu_since = time.process_time()

    def snapshot(self) -> dict[str, Any]:
        t = self.totals
        ws = int(t["do_ws_messages"])
        billed_do_requests = int(t["do_requests"] + t["do_alarms"]) + math.ceil(
            ws / WS_MESSAGES_PER_REQUEST
        )
        counts = {key: _plain(value) for key, value in sorted(t.items())}
        return {
            "totals": counts,
            "billable": {
                "worker_requests": int(t["worker_requests"] + t["worker_scheduled"]),
                "do_requests": billed_do_requests,
                "do_rows_read": int(t["do_rows_read"]),
                "do_rows_written": int(t["do_rows_written"]),
                "d1_rows_read": int(t["d1_rows_read"]),
                "d1_rows_written": int(t["d1_rows_written"]),
                "cpu_ms": round((time.process_time() - self._cpu_since) * 1000, 3),
            },
            "objects": {
                name: {key: _plain(value) for key, value in sorted(counter.items())}
                for name, counter in sorted(self.by_class.items())
            },
        }


def _plain(value: float) -> float | int:
    return round(value, 3) if isinstance(value, float) and not value.is_integer() else int(value)
