"""Durations, calendar periods and as_of parsing. All instants are timezone-aware UTC."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from segcli.spec.language import PERIODS
from segcli.spec.model import Duration, Period

__all__ = [
    "PERIODS",
    "before",
    "parse_as_of",
    "parse_duration",
    "period_bounds",
    "shift",
    "to_utc",
]

_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400}
_MONTHS = {"mo": 1, "y": 12}
_MONTH_SECONDS = 2_629_746  # the Gregorian average month, for limits and messages only
_DUR = re.compile(r"^(\d+)(h|d|w|mo|y)$")
# as_of minus a duration must stay a date: 1000 years is far past any data and far from year 1.
MAX_DURATION_SECONDS = 1000 * 366 * 86400
MAX_DURATION_TEXT = "366000d (about 1000 years)"


def _parts(text: str) -> tuple[int, int] | None:
    """(seconds, months) of `<int><unit>`, or None when the text is not one."""
    mt = _DUR.match(text.strip())
    if not mt:
        return None
    n, unit = int(mt.group(1)), mt.group(2)
    if unit in _MONTHS:
        months = n * _MONTHS[unit]
        return months * _MONTH_SECONDS, months
    return n * _UNITS[unit], 0


def parse_duration(text: str) -> Duration | None:
    """`30d` -> Duration; None when the text is not `<int><unit>` with unit h, d, w, mo or y,
    or is longer than MAX_DURATION_SECONDS (see `duration_too_long`).

    A day is exactly 24 hours: h, d and w are lengths. mo and y are calendar steps on the
    local date-time (see `before`).
    """
    parts = _parts(text)
    if parts is None or parts[0] > MAX_DURATION_SECONDS:
        return None
    return Duration(text.strip(), parts[0], parts[1])


def duration_too_long(text: str) -> bool:
    """True for a well-formed duration longer than MAX_DURATION_SECONDS (`99999999999d`)."""
    parts = _parts(text)
    return parts is not None and parts[0] > MAX_DURATION_SECONDS


def before(at: datetime, d: Duration, tz: str) -> datetime:
    """`at` minus `d`, as a UTC instant (SPEC §2.6).

    h, d and w subtract an exact length. mo and y step back on the local date-time in `tz`,
    keeping the local time of day and clamping the day to the month's end (2026-03-31 minus
    1mo is 2026-02-28 at the same local time). A local time that does not exist on the target
    day (a spring DST gap) is read with the offset before the change, so it lands later by the
    gap; one that exists twice (autumn) keeps `at`'s fold.
    """
    return shift(at, -d.seconds, -d.months, tz)


def shift(at: datetime, seconds: int, months: int, tz: str) -> datetime:
    """`at` moved by `seconds` exactly, or else by `months` calendar months on the local
    date-time in `tz` (either may be negative), as a UTC instant: the rules of `before`."""
    if not months:
        return at + timedelta(seconds=seconds)
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    index = local.year * 12 + local.month - 1 + months
    year, month = divmod(index, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day).astimezone(UTC)


def to_utc(value: date | datetime, tz: str) -> datetime:
    """A literal as a UTC instant: naive values (and dates, at midnight) are in the project tz."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value.astimezone(UTC)


def parse_as_of(text: str | None, tz: str = "UTC") -> datetime:
    """Parse `--as-of` (date or datetime; naive means the project timezone); default now (UTC)."""
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    s = text.strip().replace("Z", "+00:00")
    try:
        value: date | datetime = (
            datetime.fromisoformat(s) if ("T" in s or " " in s) else date.fromisoformat(s)
        )
    except ValueError as exc:
        raise ValueError(
            f"bad --as-of {text!r}: use an ISO date or datetime, e.g. 2026-11-20 or "
            "2026-11-20T06:00:00+01:00"
        ) from exc
    if value.year < 1900:
        # Durations reach 1000 years back from as_of; earlier instants are not dates.
        raise ValueError(f"bad --as-of {text!r}: before 1900")
    return to_utc(value, tz)


def _local_midnight(d: date, tz: ZoneInfo) -> datetime:
    # Constructing the wall-clock midnight and converting handles DST: a day may be 23 or 25 h.
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def _month_start(d: date, months: int) -> date:
    """The first day of the month `months` after d's month (negative: before)."""
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _fiscal_bounds(
    name: str, today: date, start_month: int, as_of: datetime, zone: ZoneInfo
) -> tuple[datetime, datetime, bool]:
    """Fiscal years start on the first of `start_month` (FY2027 with start 4 is 2026-04-01 to
    2027-03-31); fiscal quarters are its four three-month parts."""
    year = today.year if today.month >= start_month else today.year - 1
    fy = date(year, start_month, 1)
    if name.endswith("_year"):
        first, prev = fy, _month_start(fy, -12)
    else:
        first = _month_start(fy, 3 * (((today.month - start_month) % 12) // 3))
        prev = _month_start(first, -3)
    if name.startswith("this_"):
        return _local_midnight(first, zone), as_of, True
    return _local_midnight(prev, zone), _local_midnight(first, zone), False


def period_bounds(
    period: Period | str, as_of: datetime, tz: str
) -> tuple[datetime, datetime, bool]:
    """(start, end, end_inclusive) in UTC for a calendar period at `as_of` in timezone `tz`.

    Periods are [start, end); `today`, `this_*` end at as_of, inclusive.
    """
    name = period.name if isinstance(period, Period) else period
    zone = ZoneInfo(tz)
    local = as_of.astimezone(zone)
    today = local.date()
    if "fiscal" in name:
        fiscal = period.fiscal_start if isinstance(period, Period) else 1
        return _fiscal_bounds(name, today, fiscal, as_of, zone)
    if name == "today":
        return _local_midnight(today, zone), as_of, True
    if name == "yesterday":
        y = today - timedelta(days=1)
        return _local_midnight(y, zone), _local_midnight(today, zone), False
    if name in ("this_week", "last_week"):
        monday = today - timedelta(days=today.weekday())
        if name == "this_week":
            return _local_midnight(monday, zone), as_of, True
        prev = monday - timedelta(days=7)
        return _local_midnight(prev, zone), _local_midnight(monday, zone), False
    if name in ("this_month", "last_month"):
        first = today.replace(day=1)
        if name == "this_month":
            return _local_midnight(first, zone), as_of, True
        prev = (first - timedelta(days=1)).replace(day=1)
        return _local_midnight(prev, zone), _local_midnight(first, zone), False
    if name in ("this_quarter", "last_quarter"):
        qm = 3 * ((today.month - 1) // 3) + 1
        first = date(today.year, qm, 1)
        if name == "this_quarter":
            return _local_midnight(first, zone), as_of, True
        pm = qm - 3
        prev = date(today.year, pm, 1) if pm >= 1 else date(today.year - 1, pm + 12, 1)
        return _local_midnight(prev, zone), _local_midnight(first, zone), False
    if name in ("this_year", "last_year"):
        first = date(today.year, 1, 1)
        if name == "this_year":
            return _local_midnight(first, zone), as_of, True
        return (
            _local_midnight(date(today.year - 1, 1, 1), zone),
            _local_midnight(first, zone),
            False,
        )
    raise ValueError(f"unknown period {name!r}")
