"""The account's limits against its plan, and when an alert is due (pure).

Each reading is a usage against its limit: scripts in the account against the plan's scripts,
and (on the Free plan) today's requests against its daily cap. A reading at `WARN_AT` (85%) or
more is a warning; an alert is sent once when a reading crosses up into warning, and once more
when it falls back below, so a limit that stays over is one alert, never one per poll.
Operators (and tests) can set lower limits with vars: `FLEET_SCRIPT_LIMIT`,
`FLEET_DAILY_REQUEST_LIMIT`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

WARN_AT = 0.85


@dataclass(frozen=True, slots=True)
class Reading:
    name: str
    used: int
    limit: int

    @property
    def ratio(self) -> float:
        return self.used / self.limit if self.limit > 0 else 0.0

    @property
    def warning(self) -> bool:
        return self.limit > 0 and self.ratio >= WARN_AT

    def view(self) -> dict[str, object]:
        return {
            "used": self.used,
            "limit": self.limit,
            "percent": round(100 * self.ratio, 1),
            "warning": self.warning,
        }


@dataclass(frozen=True, slots=True)
class Crossing:
    name: str
    up: bool  # True: into warning; False: back below
    reading: Reading


def crossings(warned: Iterable[str], readings: Iterable[Reading]) -> list[Crossing]:
    """The alerts due now, given the limits already in warning (as last recorded)."""
    before = set(warned)
    found = []
    for reading in readings:
        if reading.warning and reading.name not in before:
            found.append(Crossing(reading.name, True, reading))
        elif not reading.warning and reading.name in before:
            found.append(Crossing(reading.name, False, reading))
    return found


def in_warning(readings: Iterable[Reading]) -> list[str]:
    return sorted(r.name for r in readings if r.warning)


def override(config_value: str | None, default: int) -> int:
    """A limit from a var when it is a positive integer, else the plan's."""
    if config_value and config_value.strip().isdigit() and int(config_value) > 0:
        return int(config_value)
    return default


def readings_view(readings: Iterable[Reading]) -> Mapping[str, object]:
    return {r.name: r.view() for r in readings}
