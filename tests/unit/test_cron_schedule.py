"""cron.schedule: Cloudflare Cron Trigger expressions (UTC, day of week 1-7 with 1 = Sunday)."""

import calendar
import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cron.schedule import CronExpression, CronSyntaxError


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


PLUS_2 = timezone(timedelta(hours=2))
MINUS_7 = timezone(timedelta(hours=-7))
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def matches(expr: CronExpression, when: datetime) -> bool:
    """The oracle: is the minute containing `when` a fire time, field by field."""
    if when.tzinfo is None:
        raise ValueError("when must be a timezone-aware datetime")
    t, c = when.astimezone(UTC), expr._compiled
    first, days_in_month = calendar.monthrange(t.year, t.month)
    weekday = (first + t.day - 1) % 7
    dom = c.dom.contains(t.day, days_in_month, weekday)
    dow = c.dow.contains(t.day, days_in_month, weekday)
    day = (
        True if c.dom_star and c.dow_star
        else dow if c.dom_star
        else dom if c.dow_star
        else dom or dow
    )  # fmt: skip
    return t.minute in c.minute_set and t.hour in c.hour_set and t.month in c.months and day


def fires_between(expr: CronExpression, start: datetime, end: datetime) -> list[datetime]:
    """The fire times t with start < t <= end, by next_after."""
    fires: list[datetime] = []
    with contextlib.suppress(ValueError):  # never fires again
        while (t := expr.next_after(fires[-1] if fires else start)) <= end:
            fires.append(t)
    return fires


def fired(text: str, candidates: list[datetime]) -> list[datetime]:
    expr = CronExpression.parse(text)
    return [t for t in candidates if matches(expr, t)]


# --- parsing: each syntax form, checked field by field ------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", set(range(60))),
        ("7", {7}),
        ("07", {7}),
        ("1,2,59", {1, 2, 59}),
        ("10-15", {10, 11, 12, 13, 14, 15}),
        ("*/15", {0, 15, 30, 45}),
        ("10-30/10", {10, 20, 30}),
        ("50/3", {50, 53, 56, 59}),
        ("1-3,*/20,59", {0, 1, 2, 3, 20, 40, 59}),
        ("*/59", {0, 59}),
    ],
)
def test_minute_field_forms(field: str, expected: set[int]) -> None:
    minutes = [utc(2025, 1, 1, 0, m) for m in range(60)]
    assert {t.minute for t in fired(f"{field} * * * *", minutes)} == expected


@pytest.mark.parametrize(
    ("field", "expected"),
    [("*/6", {0, 6, 12, 18}), ("23", {23}), ("9-17/4", {9, 13, 17}), ("0,12", {0, 12})],
)
def test_hour_field_forms(field: str, expected: set[int]) -> None:
    hours = [utc(2025, 1, 1, h, 0) for h in range(24)]
    assert {t.hour for t in fired(f"0 {field} * * *", hours)} == expected


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("JAN", {1}),
        ("jan-Mar", {1, 2, 3}),
        ("*/3", {1, 4, 7, 10}),
        ("dec,1", {1, 12}),
        ("FEB/5", {2, 7, 12}),
        ("6-8", {6, 7, 8}),
    ],
)
def test_month_field_forms(field: str, expected: set[int]) -> None:
    firsts = [utc(2025, m, 1) for m in range(1, 13)]
    assert {t.month for t in fired(f"0 0 1 {field} *", firsts)} == expected


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", set(range(1, 32))),
        ("1,15", {1, 15}),
        ("10-12", {10, 11, 12}),
        ("*/10", {1, 11, 21, 31}),
        ("L", {31}),  # January 2025 has 31 days
        ("L-1", {30}),
        ("LW", {31}),  # Friday 31 January 2025
        ("15W", {15}),  # Wednesday
        ("4W", {3}),  # Saturday 4th -> Friday 3rd
        ("5W", {6}),  # Sunday 5th -> Monday 6th
    ],
)
def test_day_of_month_field_forms(field: str, expected: set[int]) -> None:
    days = [utc(2025, 1, d) for d in range(1, 32)]
    assert {t.day for t in fired(f"0 0 {field} * *", days)} == expected


# The week of Sunday 5 January 2025 .. Saturday 11 January 2025.
@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("1", {"Sun"}),  # Cloudflare: 1 is Sunday
        ("SUN", {"Sun"}),
        ("sun", {"Sun"}),
        ("7", {"Sat"}),  # ... and 7 is Saturday
        ("SAT", {"Sat"}),
        ("L", {"Sat"}),  # L alone: the last day of the week
        ("MON-FRI", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("2-6", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("mon,Wed,FRI", {"Mon", "Wed", "Fri"}),
        ("*/2", {"Sun", "Tue", "Thu", "Sat"}),
        ("MON/3", {"Mon", "Thu"}),
        ("1-7/3", {"Sun", "Wed", "Sat"}),
        ("SUN,7", {"Sun", "Sat"}),
    ],
)
def test_day_of_week_field_forms(field: str, expected: set[str]) -> None:
    week = [utc(2025, 1, d) for d in range(5, 12)]
    assert {DAY_NAMES[t.weekday()] for t in fired(f"0 0 * * {field}", week)} == expected


def test_parse_entry_points_and_value_semantics() -> None:
    a = CronExpression.parse("*/5 * * * *")
    assert a == CronExpression("*/5 * * * *")
    assert hash(a) == hash(CronExpression("*/5 * * * *"))
    assert a.text == str(a) == "*/5 * * * *"
    assert repr(a) == "CronExpression(text='*/5 * * * *')"
    assert CronExpression.parse("  0\t0 * *  * ").text == "  0\t0 * *  * "  # kept verbatim
    with pytest.raises(AttributeError):
        a.text = "* * * * *"  # type: ignore[misc]


# --- every error case ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "token", "problem"),
    [
        ("", None, "", "expected 5 fields"),
        ("* * * *", None, "* * * *", "got 4"),
        ("* * * * * *", None, "* * * * * *", "got 6"),
        ("60 * * * *", "minute", "60", "out of range 0-59"),
        ("* 24 * * *", "hour", "24", "out of range 0-23"),
        ("* * 0 * *", "day-of-month", "0", "out of range 1-31"),
        ("* * 32 * *", "day-of-month", "32", "out of range 1-31"),
        ("* * * 0 *", "month", "0", "out of range 1-12"),
        ("* * * 13 *", "month", "13", "out of range 1-12"),
        ("* * * * 0", "day-of-week", "0", "out of range 1-7"),  # Cloudflare: 1-7, no 0
        ("* * * * 8", "day-of-week", "8", "out of range 1-7"),
        ("* * * * 0-5", "day-of-week", "0", "out of range"),
        ("*/0 * * * *", "minute", "*/0", "step"),
        ("1-5/0 * * * *", "minute", "1-5/0", "step"),
        ("*/-5 * * * *", "minute", "*/-5", "step must be a positive integer"),
        ("*/x * * * *", "minute", "*/x", "step must be a positive integer"),
        ("*/ * * * *", "minute", "*/", "step must be a positive integer"),
        ("*/60 * * * *", "minute", "*/60", "step must be between 1 and 59"),
        ("* */24 * * *", "hour", "*/24", "step must be between 1 and 23"),
        ("* * * * */7", "day-of-week", "*/7", "step must be between 1 and 6"),
        ("*/5/2 * * * *", "minute", "*/5/2", "step"),
        ("30-10 * * * *", "minute", "30-10", "reversed range"),
        ("* * * DEC-JAN *", "month", "DEC-JAN", "reversed range"),
        ("* * * * FRI-MON", "day-of-week", "FRI-MON", "reversed range"),
        ("* * * FOO *", "month", "FOO", "unknown name"),
        ("* * * JANUARY *", "month", "JANUARY", "unknown name"),
        ("* * * * MONDAY", "day-of-week", "MONDAY", "unknown name"),
        ("* * * * JAN", "day-of-week", "JAN", "unknown name"),  # month name in weekday field
        ("* * MON * *", "day-of-month", "MON", "unknown name"),  # no names for days of month
        ("x * * * *", "minute", "x", "unknown name"),
        ("? * * * *", "minute", "?", "invalid value"),
        ("* * ? * *", "day-of-month", "?", "invalid value"),  # no Quartz '?' on Cloudflare
        ("1.5 * * * *", "minute", "1.5", "invalid value"),
        ("-5 * * * *", "minute", "-5", "missing value"),
        ("5- * * * *", "minute", "5-", "missing value"),
        ("1-2-3 * * * *", "minute", "2-3", "invalid value"),
        ("1,,2 * * * *", "minute", "", "empty list item"),
        (",5 * * * *", "minute", "", "empty list item"),
        ("* 5, * * *", "hour", "", "empty list item"),
        ("*,5 * * * *", "minute", "*", "cannot be combined"),
        ("* * L,15 * *", "day-of-month", "L,15", "cannot be combined"),
        ("* * 1W,15 * *", "day-of-month", "1W,15", "cannot be combined"),
        ("* * * * MON#2,FRI", "day-of-week", "MON#2,FRI", "cannot be combined"),
        ("* * * * 6L,1", "day-of-week", "6L,1", "cannot be combined"),
        ("* * L-0 * *", "day-of-month", "L-0", "offset must be between 1 and 30"),
        ("* * L-31 * *", "day-of-month", "L-31", "offset must be between 1 and 30"),
        ("* * 32W * *", "day-of-month", "32", "out of range 1-31"),
        ("* * W * *", "day-of-month", "W", "invalid 'L'/'W'"),
        ("* * L5 * *", "day-of-month", "L5", "invalid 'L'/'W'"),
        ("* * 1-5W * *", "day-of-month", "1-5W", "invalid 'L'/'W'"),
        ("* * l * *", "day-of-month", "l", "unknown name"),  # L is upper-case only
        ("* * * * MON#0", "day-of-week", "MON#0", "between 1 and 5"),
        ("* * * * MON#6", "day-of-week", "MON#6", "between 1 and 5"),
        ("* * * * 8#1", "day-of-week", "8", "out of range 1-7"),
        ("* * * * 0L", "day-of-week", "0", "out of range 1-7"),
        ("* * * * FOOL", "day-of-week", "FOO", "unknown name"),
        ("* * * * #2", "day-of-week", "#2", "invalid 'L'/'#'"),
        ("* * * * LL", "day-of-week", "L", "unknown name"),
    ],
)
def test_syntax_errors(text: str, field: str | None, token: str, problem: str) -> None:
    with pytest.raises(CronSyntaxError) as info:
        CronExpression.parse(text)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.field == field
    assert error.token == token
    message = str(error)
    assert problem in message
    assert repr(text) in message
    if field is not None:
        assert f"{field} field" in message
        assert repr(token) in message


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        CronExpression(5)  # type: ignore[arg-type]


# --- matches ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "when", "expected"),
    [
        ("* * * * *", utc(2025, 1, 1, 12, 34, 56), True),
        ("*/5 * * * *", utc(2025, 1, 1, 0, 5), True),
        ("*/5 * * * *", utc(2025, 1, 1, 0, 5, 59, 999999), True),  # minute resolution
        ("*/5 * * * *", utc(2025, 1, 1, 0, 6), False),
        ("6 2 * * *", utc(2025, 3, 10, 2, 6), True),
        ("6 2 * * *", utc(2025, 3, 10, 3, 6), False),
        ("6 2 * * *", datetime(2025, 3, 10, 4, 6, tzinfo=PLUS_2), True),  # 02:06 UTC
        ("6 2 * * *", datetime(2025, 3, 9, 19, 6, tzinfo=MINUS_7), True),  # 02:06 UTC next day
        ("6 2 * * *", datetime(2025, 3, 10, 2, 6, tzinfo=PLUS_2), False),  # 00:06 UTC
        ("23 23 * * *", utc(2025, 12, 31, 23, 23), True),
        ("33 23 * * *", utc(2025, 12, 31, 23, 33), True),
        ("33 23 * * *", utc(2025, 12, 31, 23, 23), False),
        ("0 0 29 2 *", utc(2024, 2, 29), True),
        ("0 0 * JAN *", utc(2025, 2, 1), False),
        ("0 9 * * 1", utc(2025, 1, 5, 9), True),  # Sunday
        ("0 9 * * SUN", utc(2025, 1, 5, 9), True),
        ("0 9 * * 7", utc(2025, 1, 5, 9), False),  # 7 is Saturday on Cloudflare
        ("0 9 * * 7", utc(2025, 1, 11, 9), True),
        # day of month OR day of week when both are restricted
        ("0 12 13 * FRI", utc(2025, 6, 6, 12), True),  # a Friday, not the 13th
        ("0 12 13 * FRI", utc(2025, 5, 13, 12), True),  # the 13th, a Tuesday
        ("0 12 13 * FRI", utc(2025, 6, 7, 12), False),
        ("0 12 */10 * FRI", utc(2025, 6, 6, 12), True),  # */n counts as restricted
        # ... AND when one of them is *
        ("0 12 * * FRI", utc(2025, 5, 13, 12), False),
        ("0 12 13 * *", utc(2025, 6, 6, 12), False),
        ("59 23 L * *", utc(2024, 2, 29, 23, 59), True),
        ("59 23 L * *", utc(2025, 2, 28, 23, 59), True),
        ("59 23 L * *", utc(2024, 2, 28, 23, 59), False),
        ("0 0 L-2 * *", utc(2025, 2, 26), True),
        ("0 18 * * 6L", utc(2025, 1, 31, 18), True),  # last Friday of January 2025
        ("0 18 * * friL", utc(2025, 1, 24, 18), False),
        ("0 10 * * MON#2", utc(2025, 1, 13, 10), True),
        ("0 10 * * MON#2", utc(2025, 1, 6, 10), False),
        ("0 0 * * FRI#5", utc(2025, 1, 31), True),
        ("59 23 LW * *", utc(2025, 5, 30, 23, 59), True),  # 31 May 2025 is a Saturday
        ("59 23 LW * *", utc(2025, 5, 31, 23, 59), False),
        ("0 0 1W * *", utc(2025, 3, 3), True),  # Saturday 1st -> Monday 3rd, not February
        ("0 0 30W * *", utc(2025, 11, 28), True),  # Sunday 30th (last) -> Friday 28th
        ("0 0 31W * *", utc(2025, 4, 30), False),  # April has no 31st
        ("0 0 L-3W * *", utc(2025, 4, 28), True),  # L-3 = Sunday 27 April -> Monday 28
        ("0 0 L-3W * *", utc(2025, 9, 26), True),  # L-3 = Saturday 27 Sept -> Friday 26
        ("0 0 L-3W * *", utc(2025, 9, 27), False),
    ],
)
def test_matches(text: str, when: datetime, expected: bool) -> None:
    assert matches(CronExpression.parse(text), when) is expected


@pytest.mark.parametrize("text", ["* * * * *", "0 0 L * *", "0 0 13 * FRI"])
def test_naive_datetimes_are_rejected(text: str) -> None:
    expr = CronExpression.parse(text)
    naive = datetime(2025, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        expr.next_after(naive)


# --- next_after ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "when", "expected"),
    [
        ("*/5 * * * *", utc(2025, 1, 1, 0, 0), utc(2025, 1, 1, 0, 5)),
        ("*/5 * * * *", utc(2025, 1, 1, 0, 4, 59, 999999), utc(2025, 1, 1, 0, 5)),
        ("*/5 * * * *", utc(2025, 1, 1, 0, 5, 0, 1), utc(2025, 1, 1, 0, 10)),
        ("*/5 * * * *", utc(2025, 1, 1, 0, 57), utc(2025, 1, 1, 1, 0)),
        ("*/5 * * * *", utc(2025, 12, 31, 23, 58), utc(2026, 1, 1, 0, 0)),  # year
        ("6 2 * * *", utc(2025, 3, 10, 2, 5, 30), utc(2025, 3, 10, 2, 6)),
        ("6 2 * * *", utc(2025, 3, 10, 2, 6), utc(2025, 3, 11, 2, 6)),
        ("6 2 * * *", utc(2025, 2, 28, 2, 7), utc(2025, 3, 1, 2, 6)),  # month
        ("6 2 * * *", datetime(2025, 3, 10, 4, 30, tzinfo=PLUS_2), utc(2025, 3, 11, 2, 6)),
        ("23 23 * * *", utc(2025, 1, 31, 23, 30), utc(2025, 2, 1, 23, 23)),
        ("23 23 * * *", utc(2025, 12, 31, 23, 23), utc(2026, 1, 1, 23, 23)),
        ("23 23 * * *", utc(2025, 12, 31, 23, 22), utc(2025, 12, 31, 23, 23)),
        ("33 23 * * *", utc(2024, 2, 28, 23, 34), utc(2024, 2, 29, 23, 33)),  # leap year
        ("33 23 * * *", utc(2025, 2, 28, 23, 34), utc(2025, 3, 1, 23, 33)),
        ("33 23 * * *", datetime(2025, 6, 1, 20, 0, tzinfo=MINUS_7), utc(2025, 6, 2, 23, 33)),
        ("0 0 29 2 *", utc(2025, 1, 1), utc(2028, 2, 29)),
        ("0 0 29 2 *", utc(2024, 2, 29), utc(2028, 2, 29)),
        ("0 0 29 2 *", utc(2096, 3, 1), utc(2104, 2, 29)),  # 2100 is not a leap year
        ("30 */6 * * *", utc(2025, 1, 1, 6, 31), utc(2025, 1, 1, 12, 30)),
        ("30 */6 * * *", utc(2025, 1, 1, 18, 30), utc(2025, 1, 2, 0, 30)),
        ("0 0 1 jan *", utc(2025, 6, 1), utc(2026, 1, 1)),
        ("0 0 31 * *", utc(2025, 1, 31), utc(2025, 3, 31)),  # skips February
        ("0 0 * FEB-MAR/1 *", utc(2025, 3, 31, 1), utc(2026, 2, 1)),
        ("0 8 * * MON-FRI", utc(2025, 1, 3, 8), utc(2025, 1, 6, 8)),  # Friday -> Monday
        ("0 8 * * 2-6", utc(2025, 1, 3, 8), utc(2025, 1, 6, 8)),
        # Sunday is 1 or SUN; 7 is Saturday
        ("0 9 * * 1", utc(2025, 1, 1), utc(2025, 1, 5, 9)),
        ("0 9 * * SUN", utc(2025, 1, 1), utc(2025, 1, 5, 9)),
        ("0 9 * * sun", utc(2025, 1, 5, 9), utc(2025, 1, 12, 9)),
        ("0 9 * * 7", utc(2025, 1, 1), utc(2025, 1, 4, 9)),
        # OR semantics when both day fields are restricted, AND-with-* otherwise
        ("0 12 13 * FRI", utc(2025, 6, 1), utc(2025, 6, 6, 12)),
        ("0 12 13 * FRI", utc(2025, 6, 6, 12), utc(2025, 6, 13, 12)),
        ("0 12 13 * TUE", utc(2025, 6, 11), utc(2025, 6, 13, 12)),
        ("0 0 1 * MON", utc(2025, 1, 27), utc(2025, 2, 1)),  # the 1st, a Saturday
        ("0 0 1 * MON", utc(2025, 1, 1), utc(2025, 1, 6)),
        ("0 0 * * MON", utc(2025, 1, 27), utc(2025, 2, 3)),
        ("0 0 13 * *", utc(2025, 6, 1), utc(2025, 6, 13)),
        # Cloudflare extras
        ("59 23 L * *", utc(2024, 2, 1), utc(2024, 2, 29, 23, 59)),
        ("59 23 L * *", utc(2024, 2, 29, 23, 59), utc(2024, 3, 31, 23, 59)),
        ("0 0 L-2 * *", utc(2025, 2, 1), utc(2025, 2, 26)),
        ("59 23 LW * *", utc(2025, 5, 1), utc(2025, 5, 30, 23, 59)),  # Sat 31 -> Fri 30
        ("59 23 LW * *", utc(2025, 8, 1), utc(2025, 8, 29, 23, 59)),  # Sun 31 -> Fri 29
        ("0 0 LW 2 *", utc(2026, 1, 1), utc(2026, 2, 27)),  # Sat 28 -> Fri 27
        ("0 0 1W * *", utc(2025, 2, 15), utc(2025, 3, 3)),  # Sat 1 -> Mon 3
        ("0 0 15W * *", utc(2025, 6, 1), utc(2025, 6, 16)),  # Sun 15 -> Mon 16
        ("0 0 31W * *", utc(2025, 8, 1), utc(2025, 8, 29)),  # Sun 31 (last) -> Fri 29
        ("0 0 31W * *", utc(2025, 4, 1), utc(2025, 5, 30)),  # no 31 April; Sat 31 May -> 30
        ("0 18 * * 6L", utc(2025, 2, 1), utc(2025, 2, 28, 18)),
        ("0 18 * * friL", utc(2025, 1, 1), utc(2025, 1, 31, 18)),
        ("0 10 * * MON#2", utc(2025, 1, 1), utc(2025, 1, 13, 10)),
        ("0 10 * * 2#2", utc(2025, 1, 13, 10), utc(2025, 2, 10, 10)),
        ("0 0 * * FRI#5", utc(2025, 2, 1), utc(2025, 5, 30)),  # Feb-Apr have 4 Fridays
        ("0 0 * * L", utc(2025, 1, 1), utc(2025, 1, 4)),  # L alone: Saturday
        ("0 0 L-3W * *", utc(2025, 9, 1), utc(2025, 9, 26)),  # Sat 27 -> Fri 26
    ],
)
def test_next_after(text: str, when: datetime, expected: datetime) -> None:
    got = CronExpression.parse(text).next_after(when)
    assert got == expected
    assert got.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 L-30 2 *", "0 0 30W 2 *", "* * 31 FEB *"],
)
def test_next_after_impossible_expression_raises(text: str) -> None:
    expr = CronExpression.parse(text)  # valid syntax, never fires
    with pytest.raises(ValueError, match="never fires") as info:
        expr.next_after(utc(2025, 1, 1))
    assert not isinstance(info.value, CronSyntaxError)
    assert fires_between(expr, utc(2025, 1, 1), utc(2125, 1, 1)) == []


def test_next_after_at_the_end_of_time() -> None:
    with pytest.raises(ValueError, match="never fires"):
        CronExpression.parse("0 0 1 1 *").next_after(utc(9999, 6, 1))
    with pytest.raises(ValueError, match="representable"):
        CronExpression.parse("* * * * *").next_after(datetime.max.replace(tzinfo=UTC))


# --- fires_between ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end", "expected"),
    [
        (
            "*/5 * * * *",
            utc(2025, 1, 1, 0, 0),
            utc(2025, 1, 1, 0, 20),
            [utc(2025, 1, 1, 0, m) for m in (5, 10, 15, 20)],  # start excluded, end included
        ),
        (
            "*/5 * * * *",
            utc(2025, 1, 1, 0, 0, 30),
            utc(2025, 1, 1, 0, 19, 59),
            [utc(2025, 1, 1, 0, m) for m in (5, 10, 15)],
        ),
        (
            "6 2 * * *",
            utc(2025, 12, 30),
            utc(2026, 1, 2, 2, 6),
            [
                utc(2025, 12, 30, 2, 6),
                utc(2025, 12, 31, 2, 6),
                utc(2026, 1, 1, 2, 6),
                utc(2026, 1, 2, 2, 6),
            ],
        ),
        ("23 23 * * *", utc(2025, 1, 1, 23, 23), utc(2025, 1, 2, 23, 22), []),
        ("33 23 * * *", utc(2025, 1, 2), utc(2025, 1, 1), []),  # end before start
        ("33 23 * * *", utc(2025, 1, 1), utc(2025, 1, 1), []),
        (
            "0 0 29 2 *",
            utc(2023, 1, 1),
            datetime(2029, 1, 1, tzinfo=PLUS_2),
            [utc(2024, 2, 29), utc(2028, 2, 29)],
        ),
    ],
)
def test_fires_between(text: str, start: datetime, end: datetime, expected: list[datetime]) -> None:
    assert fires_between(CronExpression.parse(text), start, end) == expected


# --- property: next_after agrees with matches ---------------------------------------------


def _field(low: int, high: int, names: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    token = (value.map(str) | st.sampled_from(names)) if names else value.map(str)
    pair = st.tuples(value, value).map(sorted)
    step = st.integers(1, high - low)
    item = st.one_of(
        token,
        pair.map(lambda ab: f"{ab[0]}-{ab[1]}"),
        step.map(lambda n: f"*/{n}"),
        st.tuples(pair, step).map(lambda p: f"{p[0][0]}-{p[0][1]}/{p[1]}"),
        st.tuples(token, step).map(lambda p: f"{p[0]}/{p[1]}"),
    )
    return st.just("*") | st.lists(item, min_size=1, max_size=3).map(",".join)


_MONTHS = ("JAN", "feb", "Mar", "APR", "may", "JUN", "jul", "AUG", "sep", "OCT", "nov", "DEC")
_DAYS = ("SUN", "mon", "Tue", "WED", "thu", "FRI", "sat")

cron_texts = st.builds(
    lambda *fields: " ".join(fields),
    _field(0, 59),
    _field(0, 23),
    _field(1, 31) | st.sampled_from(["L", "LW", "L-3", "L-5W", "1W", "15W", "31W"]),
    st.just("*") | _field(1, 12, _MONTHS),
    _field(1, 7, _DAYS) | st.sampled_from(["L", "6L", "friL", "MON#2", "2#5", "SUN#1"]),
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.sampled_from([UTC, PLUS_2, MINUS_7]),
)


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=cron_texts, when=instants)
def test_next_after_is_the_first_match(text: str, when: datetime) -> None:
    expr = CronExpression.parse(text)
    try:
        got = expr.next_after(when)
    except ValueError:  # e.g. "0 0 31 FEB *": then no day of a 28-year cycle may match
        minute, hour = text.split()[:2]
        first_time = CronExpression(f"{minute} {hour} * * *").next_after(utc(1999, 12, 31))
        day = first_time
        while day.year < 2028:
            assert not matches(expr, day), day
            day += timedelta(days=1)
        return
    assert got > when
    assert got.tzinfo is UTC
    assert got.second == got.microsecond == 0
    assert matches(expr, got)
    if got - when <= timedelta(days=2):
        t = when.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        while t < got:
            assert not matches(expr, t), t
            t += timedelta(minutes=1)
