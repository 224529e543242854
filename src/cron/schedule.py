"""Cloudflare Cron Trigger expressions, evaluated in UTC. Pure: no I/O, never reads the clock.

Source: Cloudflare's "Cron Triggers" documentation, section "Supported cron expressions",
https://developers.cloudflare.com/workers/configuration/cron-triggers/ (formerly
https://developers.cloudflare.com/workers/platform/cron-triggers), and the parser it runs,
https://github.com/cloudflare/saffron ("A Quartz scheduler-like cron parser powering Cron
Triggers on Cloudflare Workers").

Five fields separated by whitespace, each `*`, or a comma list of items `a`, `a-b`, `*/n`,
`a-b/n` or `a/n` (`a/n` runs from `a` to the field's maximum)::

    minute        0-59
    hour          0-23
    day of month  1-31                                  extras: L W
    month         1-12 or JAN-DEC
    day of week   1-7 or SUN-SAT, 1 = Sunday            extras: L #

Names are three letters, case-insensitive.

Day of week follows Cloudflare (Quartz numbering), not Vixie cron: Cloudflare documents
`0 17 * * sun` = `0 17 * * 1` and `10 7 * * mon-fri` = `10 7 * * 2-6`. So `7` is Saturday and
`0` is rejected, exactly as Cloudflare rejects it.

Extras (Cloudflare documents `L` and `W` for day of month, `L` and `#` for day of week, with
the examples `0 18 * * 6L` / `friL` and an `LW` one). Each must be the whole field:

* day of month: `L` last day; `L-n` n days before the last (n 1-30); `nW` the weekday
  (Mon-Fri) nearest day n, never leaving the month; `LW` last weekday; `L-nW`.
* day of week: `dL` the last weekday d of the month (`6L`, `friL`); `d#n` the n-th weekday d
  (n 1-5, `MON#2`); `L` alone means Saturday, the last day of the week (as saffron does).
  `L`, `W` and `#` are upper-case only, as in saffron.

Day semantics (Vixie cron, also saffron's): when day of month and day of week are both
restricted (neither is the bare `*`), a day matches if EITHER matches; otherwise the
restricted one (if any) decides. `*/n` counts as restricted.

Stricter than saffron, on purpose: a reversed range (`FRI-MON`, `50-10`) is a
`CronSyntaxError` here, where saffron wraps it around. Like saffron, a step must be between 1
and the field's span (`*/60` in minutes is rejected).
"""

import calendar
import dataclasses
import re
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, datetime, timedelta
from typing import Self

from cron.days import (
    SATURDAY,
    DaySet,
    DomRule,
    DowRule,
    LastDay,
    LastWeekdayOf,
    NearestWeekday,
    NthWeekday,
    WeekdaySet,
    dow_to_weekday,
)

__all__ = ["CronExpression", "CronSyntaxError"]

_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")

# Every day-of-month/day-of-week/month pattern recurs within one 400-year Gregorian cycle.
_SEARCH_MONTHS = 400 * 12 + 1
_ONE_MINUTE = timedelta(minutes=1)


class CronSyntaxError(ValueError):
    """An invalid cron expression. `field` names the offending field (None for the field
    count); `token` is the offending text."""

    def __init__(self, message: str, *, field: str | None = None, token: str | None = None):
        super().__init__(message)
        self.field = field
        self.token = token


# --- fields -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    low: int
    high: int
    names: Mapping[str, int]


_MONTH_NAMES = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DOW_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}

_MINUTE = _Spec("minute", 0, 59, {})
_HOUR = _Spec("hour", 0, 23, {})
_DOM = _Spec("day-of-month", 1, 31, {})
_MONTH = _Spec("month", 1, 12, _MONTH_NAMES)
_DOW = _Spec("day-of-week", 1, 7, _DOW_NAMES)

_NUMBER = re.compile(r"[0-9]+")
_DOM_LAST = re.compile(r"L(?:-([0-9]+))?(W?)")
_DOM_NEAREST = re.compile(r"([0-9]+)W")
_DOW_LAST = re.compile(r"([0-9]+|[A-Za-z]+)L")
_DOW_NTH = re.compile(r"([0-9]+|[A-Za-z]+)#([0-9]+)")


@dataclass(frozen=True, slots=True)
class _Compiled:
    minutes: tuple[int, ...]  # sorted
    hours: tuple[int, ...]  # sorted
    minute_set: frozenset[int]
    hour_set: frozenset[int]
    months: frozenset[int]
    dom: DomRule
    dow: DowRule
    dom_star: bool
    dow_star: bool

    def days(self, year: int, month: int) -> list[int]:
        """The matching days of a month, ascending."""
        first, days_in_month = calendar.monthrange(year, month)
        if self.dom_star and self.dow_star:
            return list(range(1, days_in_month + 1))
        if self.dom_star:
            return self.dow.days_of(days_in_month, first)
        if self.dow_star:
            return self.dom.days_of(days_in_month, first)
        dom_days = self.dom.days_of(days_in_month, first)
        return sorted({*dom_days, *self.dow.days_of(days_in_month, first)})

    def first_time(self, hour: int, minute: int) -> tuple[int, int] | None:
        """The first (hour, minute) at or after hour:minute on a matching day, if any."""
        i = bisect_left(self.hours, hour)
        if i < len(self.hours) and self.hours[i] == hour:
            j = bisect_left(self.minutes, minute)
            if j < len(self.minutes):
                return hour, self.minutes[j]
            i += 1
        if i < len(self.hours):
            return self.hours[i], self.minutes[0]
        return None


# --- parsing ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, spec: _Spec, token: str, problem: str) -> CronSyntaxError:
        return CronSyntaxError(
            f"invalid cron expression {self.text!r}: {spec.name} field: {problem}: {token!r}",
            field=spec.name,
            token=token,
        )

    def value(self, spec: _Spec, token: str, item: str) -> int:
        if _NUMBER.fullmatch(token):
            value = int(token)
        elif token.upper() in spec.names:
            value = spec.names[token.upper()]
        elif token == "":
            raise self.error(spec, item, "missing value")
        elif token.isalpha():
            raise self.error(spec, token, "unknown name")
        else:
            raise self.error(spec, token, "invalid value")
        if not spec.low <= value <= spec.high:
            hint = " (1 is Sunday, 7 is Saturday)" if spec is _DOW else ""
            raise self.error(spec, token, f"value out of range {spec.low}-{spec.high}{hint}")
        return value

    def item(self, spec: _Spec, item: str) -> range:
        if item == "":
            raise self.error(spec, item, "empty list item")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            span = spec.high - spec.low
            if not _NUMBER.fullmatch(step_text):
                raise self.error(spec, item, "step must be a positive integer")
            step = int(step_text)
            if not 1 <= step <= span:
                raise self.error(spec, item, f"step must be between 1 and {span}")
        if base == "*":
            if not slash:
                raise self.error(spec, item, "'*' cannot be combined with other list items")
            start, end = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = self.value(spec, first, item), self.value(spec, last, item)
            if start > end:
                raise self.error(spec, item, "reversed range")
        else:
            start = self.value(spec, base, item)
            end = spec.high if slash else start
        return range(start, end + 1, step)

    def values(self, spec: _Spec, field: str) -> frozenset[int]:
        if field == "*":
            return frozenset(range(spec.low, spec.high + 1))
        return frozenset(v for item in field.split(",") for v in self.item(spec, item))

    def alone(self, spec: _Spec, field: str, what: str) -> None:
        if "," in field:
            raise self.error(spec, field, f"{what} cannot be combined with other list items")

    def day_of_month(self, field: str) -> DomRule:
        if "L" not in field and "W" not in field:
            return DaySet(tuple(sorted(self.values(_DOM, field))))
        self.alone(_DOM, field, "'L' and 'W'")
        if match := _DOM_LAST.fullmatch(field):
            offset_text, weekday = match.groups()
            offset = 0 if offset_text is None else int(offset_text)
            if offset_text is not None and not 1 <= offset <= 30:
                raise self.error(_DOM, field, "'L-n' offset must be between 1 and 30")
            return LastDay(offset, bool(weekday))
        if match := _DOM_NEAREST.fullmatch(field):
            return NearestWeekday(self.value(_DOM, match[1], field))
        raise self.error(_DOM, field, "invalid 'L'/'W' expression (L, L-n, LW, L-nW or nW)")

    def day_of_week(self, field: str) -> DowRule:
        if field == "L":  # the last day of the week
            return WeekdaySet(frozenset({SATURDAY}))
        if "L" not in field and "#" not in field:
            return WeekdaySet(frozenset(map(dow_to_weekday, self.values(_DOW, field))))
        self.alone(_DOW, field, "'L' and '#'")
        if match := _DOW_LAST.fullmatch(field):
            return LastWeekdayOf(dow_to_weekday(self.value(_DOW, match[1], field)))
        if match := _DOW_NTH.fullmatch(field):
            weekday = dow_to_weekday(self.value(_DOW, match[1], field))
            nth = int(match[2])
            if not 1 <= nth <= 5:
                raise self.error(_DOW, field, "'#n' must be between 1 and 5")
            return NthWeekday(weekday, nth)
        raise self.error(_DOW, field, "invalid 'L'/'#' expression (L, dL or d#n)")

    def compile(self) -> _Compiled:
        fields = self.text.split()
        if len(fields) != 5:
            raise CronSyntaxError(
                f"invalid cron expression {self.text!r}: expected 5 fields "
                f"({' '.join(_FIELD_NAMES)}), got {len(fields)}",
                token=self.text,
            )
        minute, hour, dom, month, dow = fields
        minutes = self.values(_MINUTE, minute)
        hours = self.values(_HOUR, hour)
        return _Compiled(
            minutes=tuple(sorted(minutes)),
            hours=tuple(sorted(hours)),
            minute_set=minutes,
            hour_set=hours,
            months=self.values(_MONTH, month),
            dom=self.day_of_month(dom),
            dow=self.day_of_week(dow),
            dom_star=dom == "*",
            dow_star=dow == "*",
        )


# --- the expression -----------------------------------------------------------------------


def _to_utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"when must be a timezone-aware datetime, got naive {when!r}")
    return when.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A parsed Cloudflare Cron Trigger expression. Construct with `CronExpression.parse(text)`
    (or `CronExpression(text)`); both raise `CronSyntaxError`. Equal when `text` is equal."""

    text: str
    _compiled: _Compiled = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"cron expression must be a str, got {type(self.text).__name__}")
        object.__setattr__(self, "_compiled", _Parser(self.text).compile())

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse `text`, raising `CronSyntaxError` (a `ValueError`) if it is invalid."""
        return cls(text)

    def __str__(self) -> str:
        return self.text

    def next_after(self, when: datetime) -> datetime:
        """The first fire time strictly after `when` (aware), in UTC with seconds zeroed.

        Raises `ValueError` if `when` is naive, or if the expression never fires again
        (e.g. `0 0 30 2 *`); the search spans one 400-year Gregorian cycle at most.
        """
        found = self._first_at_or_after(_floor_next_minute(_to_utc(when)))
        if found is None:
            raise ValueError(f"cron expression {self.text!r} never fires after {when}")
        return found

    def _first_at_or_after(self, start: datetime) -> datetime | None:
        """The first fire time >= `start` (UTC, whole minute), or None if there is none in the
        search window."""
        c = self._compiled
        year, month = start.year, start.month
        for _ in range(_SEARCH_MONTHS):
            if (year, month) > (MAXYEAR, 12):
                return None
            if month in c.months:
                this_month = year == start.year and month == start.month
                for day in c.days(year, month):
                    if this_month and day < start.day:
                        continue
                    if this_month and day == start.day:
                        time = c.first_time(start.hour, start.minute)
                        if time is None:
                            continue
                    else:
                        time = c.hours[0], c.minutes[0]
                    return datetime(year, month, day, *time, tzinfo=UTC)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return None


def _floor_next_minute(t: datetime) -> datetime:
    try:
        return t.replace(second=0, microsecond=0) + _ONE_MINUTE
    except OverflowError:
        raise ValueError(f"no minute after {t} is representable") from None
