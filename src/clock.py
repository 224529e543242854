"""The system clock. Runtime-free: both runtimes use it; tests pass their own `ports.Clock`."""

import time
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


def rfc3339(when: datetime) -> str:
    """UTC, millisecond precision, `Z` suffix: the one time format of the API."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_ms(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def rfc3339_ms(epoch_ms: int | None) -> str | None:
    """A stored epoch-ms time as the API shows it; None stays None."""
    return None if epoch_ms is None else rfc3339(from_ms(int(epoch_ms)))
