"""Day rules of a cron expression: which days of a month match (see cron.schedule).

Each rule answers two questions: `contains` (is this day a match? used by `matches`) and
`days_of` (all matching days of a month with `days_in_month` days whose 1st falls on weekday
`first`; used by `next_after`). The property tests check the two against each other.
"""

from dataclasses import dataclass

SATURDAY, SUNDAY = 5, 6  # datetime.weekday() numbering (Monday is 0)


def dow_to_weekday(value: int) -> int:
    """Cloudflare day of week (1 = Sunday ... 7 = Saturday) to `datetime.weekday()`."""
    return (value + 5) % 7


def nearest_weekday(day: int, days_in_month: int, weekday: int) -> int:
    """Quartz `W`: the Monday-Friday day nearest `day` (whose weekday is given), same month."""
    if weekday == SATURDAY:
        return day - 1 if day > 1 else day + 2
    if weekday == SUNDAY:
        return day + 1 if day < days_in_month else day - 2
    return day


@dataclass(frozen=True, slots=True)
class DaySet:
    days: tuple[int, ...]  # sorted

    def contains(self, day: int, days_in_month: int, weekday: int) -> bool:
        return day in self.days

    def days_of(self, days_in_month: int, first: int) -> list[int]:
        return [d for d in self.days if d <= days_in_month]


@dataclass(frozen=True, slots=True)
class LastDay:
    """`L`, `L-n`, `LW`, `L-nW`."""

    offset: int
    nearest_weekday: bool

    def contains(self, day: int, days_in_month: int, weekday: int) -> bool:
        target = days_in_month - self.offset
        if target < 1:
            return False
        if self.nearest_weekday:
            target_weekday = (weekday + target - day) % 7
            target = nearest_weekday(target, days_in_month, target_weekday)
        return day == target

    def days_of(self, days_in_month: int, first: int) -> list[int]:
        target = days_in_month - self.offset
        if target < 1:
            return []
        if self.nearest_weekday:
            target = nearest_weekday(target, days_in_month, (first + target - 1) % 7)
        return [target]


@dataclass(frozen=True, slots=True)
class NearestWeekday:
    """`nW`."""

    day: int

    def contains(self, day: int, days_in_month: int, weekday: int) -> bool:
        if self.day > days_in_month:
            return False
        target_weekday = (weekday + self.day - day) % 7
        return day == nearest_weekday(self.day, days_in_month, target_weekday)

    def days_of(self, days_in_month: int, first: int) -> list[int]:
        if self.day > days_in_month:
            return []
        return [nearest_weekday(self.day, days_in_month, (first + self.day - 1) % 7)]


@dataclass(frozen=True, slots=True)
class WeekdaySet:
    weekdays: frozenset[int]  # datetime.weekday() numbering

    def contains(self, day: int, days_in_month: int, weekday: int) -> bool:
        return weekday in self.weekdays

    def days_of(self, days_in_month: int, first: int) -> list[int]:
        return sorted(
            d for w in self.weekdays for d in range(1 + (w - first) % 7, days_in_month + 1, 7)
        )


@dataclass(frozen=True, slots=True)
class LastWeekdayOf:
    """`dL`."""

    weekday: int

    def contains(self, day: int, days_in_month: int, weekday: int) -> bool:
        return weekday == self.weekday and day + 7 > days_in_month

    def days_of(self, days_in_month: int, first: int) -> list[int]:
        last_weekday = (first + days_in_month - 1) % 7
        return [days_in_month - (last_weekday - self.weekday) % 7]


@dataclass(frozen=True, slots=True)
class NthWeekday:
    """`d#n`."""

    weekday: int
    nth: int

    def contains(self, day: int, days_in_month: int, weekday: int) -> bool:
        return weekday == self.weekday and (day - 1) // 7 + 1 == self.nth

    def days_of(self, days_in_month: int, first: int) -> list[int]:
        day = 1 + (self.weekday - first) % 7 + 7 * (self.nth - 1)
        return [day] if day <= days_in_month else []


type DomRule = DaySet | LastDay | NearestWeekday
type DowRule = WeekdaySet | LastWeekdayOf | NthWeekday
