"""A plain-Python reference evaluator of segcli specs, written from SPEC.md §2.

It evaluates the typed model (segcli.spec.model) row by row over lists of dicts, with no Polars,
so that the compiled Polars plan can be checked by meaning. It is deliberately simple and
slow: clarity over speed. Timestamps in the data are aware datetimes (any zone); `as_of` is
an aware instant; dates are read as their local midnight in the project timezone.

Where SPEC §2 is silent, these choices are made (and the compiled plan agrees):
- a row with a null time is visible (it is not "after as_of"), fails every window and time
  test, adds no active day, is ignored by last/first and has decay weight 1;
- `sum` over matching rows whose column is all null is 0 (like "sum of no rows");
- `ignore_case` also applies to eq/ne/in/not_in with text literals (not to numbers/times);
- `dedupe` keeps the first row per value of the dedupe columns (null equals null);
- a naive time in the autumn's repeated hour is the earlier instant (fold=0).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from segcli.spec import model as m

Row = dict[str, Any]

NEGATIVE = {"ne": "eq", "not_in": "in", "not_contains": "contains"}
ZERO_WHEN_EMPTY = ("count", "sum", "distinct", "active_days")


# ---------------------------------------------------------------- time helpers


def local_midnight(day: date, tz: str) -> datetime:
    """The instant at which `day` starts in `tz` (as an aware UTC datetime)."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def to_instant(value: date | datetime | str, tz: str) -> datetime:
    """An aware UTC instant: naive datetimes and dates are read in `tz`, ISO text parsed."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        value = datetime.fromisoformat(text) if len(text) > 10 else date.fromisoformat(text)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo(tz))
        return value.astimezone(UTC)
    return local_midnight(value, tz)


def local_date(t: datetime, tz: str) -> date:
    return t.astimezone(ZoneInfo(tz)).date()


def times(d: m.Duration, k: int) -> m.Duration:
    """k times a duration: k calendar steps stay one calendar step of k units (SPEC §2.6)."""
    return m.Duration(f"{k}x{d.text}", d.seconds * k, d.months * k)


def back(as_of: datetime, d: m.Duration, tz: str) -> datetime:
    """as_of minus a duration: h/d/w exactly; mo/y as whole months on the local wall clock,
    the day clamped to the target month's length, the time of day kept (SPEC §2.6)."""
    if not d.months:
        return as_of - timedelta(seconds=d.seconds)
    return calendar_step(as_of, -d.months, tz)


def moved(t: datetime, offset: m.Offset, tz: str) -> datetime:
    """An instant moved by a signed duration (SPEC §2.6 `offset`): h/d/w as exact lengths
    (a day is 24 h even across DST), mo/y as calendar steps on the local wall clock."""
    sign = -1 if offset.negative else 1
    if offset.duration.months:
        return calendar_step(t, sign * offset.duration.months, tz)
    return t + sign * timedelta(seconds=offset.duration.seconds)


def calendar_step(as_of: datetime, months: int, tz: str) -> datetime:
    """`months` whole months (signed) on the local wall clock, the day clamped to the target
    month's length, the time of day and the fold kept; zoneinfo reads a wall time that a DST
    change skips with the offset before the change (fold 0)."""
    wall = as_of.astimezone(ZoneInfo(tz))
    months_since_year_0 = wall.year * 12 + (wall.month - 1) + months
    year = months_since_year_0 // 12
    month = months_since_year_0 % 12 + 1
    next_month = date(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_month - timedelta(days=1)).day
    target = datetime(
        year,
        month,
        min(wall.day, last_day),
        wall.hour,
        wall.minute,
        wall.second,
        wall.microsecond,
        tzinfo=ZoneInfo(tz),
        fold=wall.fold,
    )
    return target.astimezone(UTC)


def _quarter_start(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def fiscal_bounds(
    name: str, as_of: datetime, tz: str, first_month: int
) -> tuple[datetime, datetime, bool]:
    """Fiscal years start on day 1 of `first_month`; quarters are 3-month steps from there."""
    today = local_date(as_of, tz)
    starts = []  # every fiscal quarter start from two years back to now, ascending
    for year in range(today.year - 2, today.year + 1):
        for q in range(4):
            month0 = first_month - 1 + 3 * q
            starts.append(date(year + month0 // 12, month0 % 12 + 1, 1))
    starts = sorted(s for s in starts if s <= today)
    quarter = starts[-1]
    year_start = max(s for s in starts if s.month == first_month)
    if name == "this_fiscal_quarter":
        return local_midnight(quarter, tz), as_of, True
    if name == "this_fiscal_year":
        return local_midnight(year_start, tz), as_of, True
    if name == "last_fiscal_quarter":
        return local_midnight(starts[-2], tz), local_midnight(quarter, tz), False
    assert name == "last_fiscal_year"
    previous = date(year_start.year - 1, first_month, 1)
    return local_midnight(previous, tz), local_midnight(year_start, tz), False


def period_bounds(
    name: str, as_of: datetime, tz: str, fiscal_start: int = 1
) -> tuple[datetime, datetime, bool]:
    """(start, end, end_inclusive) of a calendar period; start is always inclusive.

    Periods are `[start, end)` in the project timezone, except the current ones (today,
    this_week, this_month, this_quarter, this_year) which end at as_of, inclusive.
    """
    if "fiscal" in name:
        return fiscal_bounds(name, as_of, tz, fiscal_start)
    today = local_date(as_of, tz)
    monday = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    quarter = _quarter_start(today)
    year = date(today.year, 1, 1)
    current = {
        "today": today,
        "this_week": monday,
        "this_month": month,
        "this_quarter": quarter,
        "this_year": year,
    }
    if name in current:
        return local_midnight(current[name], tz), as_of, True
    previous = {
        "yesterday": (today - timedelta(days=1), today),
        "last_week": (monday - timedelta(days=7), monday),
        "last_month": ((month - timedelta(days=1)).replace(day=1), month),
        "last_quarter": (_quarter_start(quarter - timedelta(days=1)), quarter),
        "last_year": (date(today.year - 1, 1, 1), year),
    }
    start, end = previous[name]
    return local_midnight(start, tz), local_midnight(end, tz), False


def in_period(t: datetime, name: str, as_of: datetime, tz: str, fiscal_start: int = 1) -> bool:
    start, end, inclusive = period_bounds(name, as_of, tz, fiscal_start)
    return start <= t <= end if inclusive else start <= t < end


def bucket_of(salt: str, key: object) -> int:
    """The contact's bucket in [0, 10000): sha256 of `salt:key`, first 8 bytes, mod 10000."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10000


# ---------------------------------------------------------------- leaf tests


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, date | datetime):
        return "time"
    raise TypeError(f"unsupported value {v!r}")


@dataclass(frozen=True)
class Clock:
    """What time-relative operators need: the instant evaluated at and the project timezone."""

    as_of: datetime
    tz: str

    def instant(self, lit: Any) -> datetime:
        """A time literal (date, datetime, ISO text or Relative) as an aware UTC instant."""
        if isinstance(lit, m.Relative):
            return back(self.as_of, lit.duration, self.tz)
        return to_instant(lit, self.tz)


def test_holds(test: m.Test, value: Any, clock: Clock, row: Row | None = None) -> bool:
    """A leaf's operators (ANDed) on one value, with the null rule and include_missing.

    `row` holds the columns that column operands name (the contact's row for a field leaf,
    the event's row inside `where:`); the leaf's `offset` moves the value first."""
    if value is None and test.include_missing is not None:
        return test.include_missing
    if value is not None and test.offset is not None:
        value = moved(to_instant(value, clock.tz), test.offset, clock.tz)
    return all(
        column_op_holds(op, value, row or {}, clock)
        if _has_column(op)
        else op_holds(op, value, test.ignore_case, clock)
        for op in test.ops
    )


def _has_column(op: m.Op) -> bool:
    values = op.value if isinstance(op.value, tuple) else (op.value,)
    return any(isinstance(v, m.ColumnRef) for v in values)


def operand_value(ref: m.ColumnRef, row: Row, clock: Clock) -> Any:
    """A column operand's value in `row`: times as UTC instants, moved by its offset."""
    v = row.get(ref.name)
    if v is None or _kind(v) != "time":
        return v
    t = to_instant(v, clock.tz)
    return moved(t, ref.offset, clock.tz) if ref.offset is not None else t


def column_op_holds(op: m.Op, v: Any, row: Row, clock: Clock) -> bool:
    """eq/ne/gt/gte/lt/lte/between with column operands (SPEC §2.6): a null on either side
    fails a positive operator; ne is the exact complement of eq."""
    if op.name in NEGATIVE:
        return not column_op_holds(m.Op(NEGATIVE[op.name], op.value), v, row, clock)
    values = op.value if isinstance(op.value, tuple) else (op.value,)
    others = []
    for x in values:
        if isinstance(x, m.ColumnRef):
            others.append(operand_value(x, row, clock))
        elif v is not None and _kind(v) == "time":
            others.append(clock.instant(x))
        else:
            others.append(x)
    if v is None or any(o is None for o in others):
        return False
    if _kind(v) == "time":
        v = to_instant(v, clock.tz)
    if op.name == "between":
        return bool(others[0] <= v <= others[1])
    if op.name == "eq":
        return bool(v == others[0])
    return _order(op.name, v, others[0])


def op_holds(op: m.Op, v: Any, ignore_case: bool, clock: Clock) -> bool:
    """One operator. Positive operators fail on null; negative ones are exact complements."""
    if op.name == "is_null":
        return (v is None) is bool(op.value)
    if op.name in NEGATIVE:
        return not op_holds(m.Op(NEGATIVE[op.name], op.value), v, ignore_case, clock)
    if v is None:
        return False
    kind = _kind(v)
    if kind == "time":
        return _time_op(op, to_instant(v, clock.tz), clock)
    if kind == "string":
        return _string_op(op, v, ignore_case)
    return _plain_op(op, v)


def _fold(s: str, ignore_case: bool) -> str:
    return s.lower() if ignore_case else s


def _string_op(op: m.Op, v: str, ic: bool) -> bool:
    name, lit = op.name, op.value
    if name == "eq":
        return isinstance(lit, str) and _fold(v, ic) == _fold(lit, ic)
    if name == "in":
        assert isinstance(lit, tuple)
        return any(isinstance(x, str) and _fold(v, ic) == _fold(x, ic) for x in lit)
    assert isinstance(lit, str), op
    if name == "contains":
        return _fold(lit, ic) in _fold(v, ic)
    if name == "starts_with":
        return _fold(v, ic).startswith(_fold(lit, ic))
    if name == "ends_with":
        return _fold(v, ic).endswith(_fold(lit, ic))
    if name == "matches":
        return re.search(lit, v, re.IGNORECASE if ic else 0) is not None
    raise AssertionError(f"operator {name} on a string")


def _plain_op(op: m.Op, v: Any) -> bool:
    """Numbers and booleans."""
    name, lit = op.name, op.value
    if name == "eq":
        return _same(v, lit)
    if name == "in":
        assert isinstance(lit, tuple)
        return any(_same(v, x) for x in lit)
    if name == "between":
        assert isinstance(lit, tuple)
        lo, hi = lit
        return bool(lo <= v <= hi)  # type: ignore[operator]
    return _order(name, v, lit)


def _same(v: Any, lit: Any) -> bool:
    if isinstance(v, bool) or isinstance(lit, bool):
        return isinstance(v, bool) and isinstance(lit, bool) and v is lit
    return bool(v == lit)


def _order(name: str, v: Any, lit: Any) -> bool:
    if name == "gt":
        return bool(v > lit)
    if name == "gte":
        return bool(v >= lit)
    if name == "lt":
        return bool(v < lit)
    if name == "lte":
        return bool(v <= lit)
    raise AssertionError(f"operator {name} on {v!r}")


def _time_op(op: m.Op, t: datetime, clock: Clock) -> bool:
    name, lit = op.name, op.value
    if name == "within":
        assert isinstance(lit, m.Duration)
        return back(clock.as_of, lit, clock.tz) <= t <= clock.as_of
    if name == "older_than":
        assert isinstance(lit, m.Duration)
        return t < back(clock.as_of, lit, clock.tz)
    if name == "during":
        assert isinstance(lit, m.Period)
        return in_period(t, lit.name, clock.as_of, clock.tz, lit.fiscal_start)
    if name == "eq":
        return t == clock.instant(lit)
    if name == "in":
        assert isinstance(lit, tuple)
        return any(t == clock.instant(x) for x in lit)
    if name == "between":
        assert isinstance(lit, tuple)
        return clock.instant(lit[0]) <= t <= clock.instant(lit[1])
    return _order(name, t, clock.instant(lit))


# ---------------------------------------------------------------- the evaluator


@dataclass
class Result:
    """What the reference computes for one as_of."""

    rules: dict[str, set[Any]]  # segment -> keys matching its rule (where, exclude, top)
    members: dict[str, set[Any]]  # segment -> members (rule + include_file - exclude_file)
    scores: dict[str, dict[Any, float]]  # model -> key -> score


@dataclass
class PastRun:
    """One committed run as history leaves see it (SPEC §2.6): its as_of, the members of
    each segment it computed, and per `ever` column the values stored at it (key -> value;
    only columns an `ever` leaf read at that run, only contacts in that run's export)."""

    as_of: datetime
    members: dict[str, set[Any]]
    values: dict[str, dict[Any, Any]] = field(default_factory=dict)


@dataclass
class Reference:
    """Evaluate a spec's conditions, scores and segments over in-memory rows.

    `tables` holds every source except contacts (relation one and many) as lists of dicts,
    keyed by source name. `lists` maps a list file's path (as written in the spec) to its keys.
    `history`: the committed runs before this one, oldest first (runs after as_of do not
    count); segments are evaluated as dynamic.
    """

    spec: m.Spec
    contacts: list[Row]
    tables: dict[str, list[Row]]
    as_of: datetime
    lists: dict[str, Iterable[Any]] = field(default_factory=dict)
    history: list[PastRun] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tz = self.spec.timezone
        self.key = self.spec.contacts.key
        self.rows = {c[self.key]: self._with_relations(c) for c in self.contacts}
        self.events: dict[str, dict[Any, list[Row]]] = {}
        for name, src in self.spec.sources.items():
            if name == "contacts" or src.relation != "many":
                continue
            by_key: dict[Any, list[Row]] = {}
            for row in self._deduped(src, self.tables.get(name, [])):
                if row.get(src.key) in self.rows:  # orphans are ignored
                    by_key.setdefault(row[src.key], []).append(row)
            self.events[name] = by_key
        self._members: dict[str, set[Any]] = {}
        self._rules: dict[str, set[Any]] = {}
        self._scores: dict[tuple[str, datetime], dict[Any, float]] = {}

    def _with_relations(self, contact: Row) -> Row:
        """The contact's row plus `SOURCE.COL` of every relation-one source (null if absent)."""
        out = dict(contact)
        for name, src in self.spec.sources.items():
            if name == "contacts" or src.relation != "one":
                continue
            match = [r for r in self.tables.get(name, []) if r.get(src.key) == contact[self.key]]
            assert len(match) <= 1, f"relation one source {name} has several rows"
            if match:
                for col, val in match[0].items():
                    if col != src.key:
                        out[f"{name}.{col}"] = val
        return out

    @staticmethod
    def _deduped(src: m.Source, rows: list[Row]) -> list[Row]:
        if not src.dedupe:
            return list(rows)
        seen: set[tuple[Any, ...]] = set()
        out = []
        for row in rows:
            ident = tuple(row.get(c) for c in src.dedupe)
            if ident not in seen:
                seen.add(ident)
                out.append(row)
        return out

    # ------------------------------------------------------------ conditions

    def holds(self, cond: m.Condition, key: Any, as_of: datetime | None = None) -> bool:
        """Whether `cond` holds for the contact `key` at `as_of` (default: the run's)."""
        at = as_of or self.as_of
        if isinstance(cond, m.AllCond):
            return all(self.holds(c, key, at) for c in cond.items)
        if isinstance(cond, m.AnyCond):
            return any(self.holds(c, key, at) for c in cond.items)
        if isinstance(cond, m.NotCond):
            return not self.holds(cond.item, key, at)
        if isinstance(cond, m.AtLeastCond):  # SPEC §2.6: n 0 holds even for an empty list
            return sum(self.holds(c, key, at) for c in cond.items) >= cond.n
        if isinstance(cond, m.FieldCond):
            col = f"{cond.source}.{cond.column}" if cond.source else cond.column
            clock = Clock(at, self.tz)
            row = self.rows[key]
            if test_holds(cond.test, row.get(col), clock, row):
                return True
            if not cond.ever:
                return False
            past = [r.values[col] for r in self.past() if col in r.values]
            return any(key in v and test_holds(cond.test, v[key], clock) for v in past)
        if isinstance(cond, m.EventCond) and cond.regularly is not None:
            return self.regular_periods(cond, key, at) >= cond.regularly.periods
        if isinstance(cond, m.EventCond) and cond.per is not None:
            count = len(self.per_values(cond, key, at))
            return test_holds(cond.test, count, Clock(at, self.tz))
        if isinstance(cond, m.EventCond):
            return test_holds(cond.test, self.event_value(cond, key, at), Clock(at, self.tz))
        if isinstance(cond, m.SegmentRef):
            if cond.history is not None:
                return self.segment_history(cond, key)
            return key in self.members(cond.name)
        if isinstance(cond, m.BucketCond):
            return bucket_of(cond.salt, key) < round(cond.percent * 100)
        if isinstance(cond, m.ScoreCond):
            return test_holds(cond.test, self.score(cond.model, key, at), Clock(at, self.tz))
        if isinstance(cond, m.GradeCond):
            return test_holds(cond.test, self.grade(cond.model, key, at), Clock(at, self.tz))
        if isinstance(cond, m.ScoreChangeCond):
            change = self.score_change(cond.model, key, cond.over, at)
            return test_holds(cond.test, change, Clock(at, self.tz))
        if isinstance(cond, m.SequenceCond):
            return self.sequence_done(cond, key, at) is not None
        if isinstance(cond, m.AccountCond):
            count = self.account_count(cond, key, at)
            return test_holds(cond.test, count, Clock(at, self.tz))
        raise TypeError(f"unknown condition {cond!r}")

    def account_count(self, c: m.AccountCond, key: Any, at: datetime) -> int:
        """SPEC §2.7: the contacts sharing `key`'s account (itself alone when its account is
        null) that satisfy `where`, itself not counted when `others`."""
        account = self.rows[key].get(c.column)
        if account is None:
            peers = [key]
        else:
            peers = [k for k, row in self.rows.items() if row.get(c.column) == account]
        return sum(1 for k in peers if not (c.others and k == key) and self.holds(c.where, k, at))

    # ------------------------------------------------------------ history (SPEC §2.6)

    def past(self) -> list[PastRun]:
        """The committed runs that count: those at or before as_of."""
        return [r for r in self.history if r.as_of <= self.as_of]

    def stay_start(self, name: str, key: Any) -> datetime | None:
        """When the contact's current stay in NAME began (None: not a member now): the
        earliest of the unbroken run of latest committed runs that had it, else now."""
        if key not in self.members(name):
            return None
        start = self.as_of
        for r in reversed([r for r in self.past() if name in r.members]):
            if key not in r.members[name]:
                break
            start = r.as_of
        return start

    def left_at(self, name: str, key: Any) -> datetime | None:
        """The as_of of the last run (this one included) at which the contact left NAME."""
        runs = [(r.as_of, r.members[name]) for r in self.past() if name in r.members]
        runs.append((self.as_of, self.members(name)))
        last = None
        for (_, before_), (at, after) in itertools.pairwise(runs):
            if key in before_ and key not in after:
                last = at
        return last

    def segment_history(self, cond: m.SegmentRef, key: Any) -> bool:
        name = cond.name
        now = key in self.members(name)
        if cond.ever:
            return now or any(key in r.members.get(name, ()) for r in self.past())
        if cond.member_for is not None:
            start = self.stay_start(name, key)
            if start is None:
                return False
            return all(self._stay_holds(op, start) for op in cond.member_for.ops)
        assert cond.left is not None
        t = self.left_at(name, key)
        return not now and test_holds(cond.left, t, Clock(self.as_of, self.tz))

    def _stay_holds(self, op: m.Op, start: datetime) -> bool:
        """An operator on the stay's length: exact units compare lengths of time; a calendar
        unit compares the start with as_of stepped back."""
        d = op.value
        assert isinstance(d, m.Duration)
        if d.months:
            bound = back(self.as_of, d, self.tz)
            cmp = {"gte": start <= bound, "gt": start < bound, "lte": start >= bound}
            cmp |= {"lt": start > bound, "eq": start == bound}
            return cmp[op.name]
        length, want = self.as_of - start, timedelta(seconds=d.seconds)
        return {
            "gte": length >= want,
            "gt": length > want,
            "lte": length <= want,
            "lt": length < want,
            "eq": length == want,
        }[op.name]

    # ------------------------------------------------------------ events

    def matching_rows(
        self, ev: m.EventCond, key: Any, as_of: datetime
    ) -> Iterator[tuple[Row, datetime | None]]:
        """The contact's visible rows of the event's pooled sources that pass its filters."""
        clock = Clock(as_of, self.tz)
        for name in ev.sources:
            src = self.spec.sources[name]
            for row in self.events[name].get(key, []):
                t = to_instant(row[src.time], self.tz) if src.time and row.get(src.time) else None
                if t is not None and t > as_of:
                    continue  # has not happened yet
                if ev.types is not None and (src.type is None or row.get(src.type) not in ev.types):
                    continue
                if ev.window is not None and not self._in_window(ev.window, t, clock):
                    continue
                if all(test_holds(rc.test, row.get(rc.column), clock, row) for rc in ev.where):
                    yield row, t

    def _in_window(self, window: m.Window, t: datetime | None, clock: Clock) -> bool:
        if t is None:
            return False
        if window.within is not None:
            return back(clock.as_of, window.within, clock.tz) <= t <= clock.as_of
        assert window.during is not None
        during = window.during
        return in_period(t, during.name, clock.as_of, clock.tz, during.fiscal_start)

    def event_value(self, ev: m.EventCond, key: Any, as_of: datetime) -> Any:
        """The event's aggregate for one contact (0 or null when no row matches)."""
        rows = list(self.matching_rows(ev, key, as_of))
        if ev.agg == "count":
            return len(rows)
        if ev.agg == "active_days":
            return len({local_date(t, self.tz) for _, t in rows if t is not None})
        if ev.agg in ("last", "first"):
            times = [t for _, t in rows if t is not None]
            if not times:
                return None
            return max(times) if ev.agg == "last" else min(times)
        assert ev.column is not None
        values: list[Any] = [r[ev.column] for r, _ in rows if r.get(ev.column) is not None]
        if ev.agg == "distinct":
            return len(set(values))
        if ev.agg == "sum":
            return sum(values)
        if not values:
            return None
        if ev.agg == "avg":
            return sum(values) / len(values)
        return max(values) if ev.agg == "max" else min(values)

    def regular_periods(self, ev: m.EventCond, key: Any, at: datetime) -> int:
        """How many of the last `of` periods (as_of - (i+1)*every, as_of - i*every] hold at
        least `at_least` matching rows (SPEC §2.6, cadence)."""
        reg = ev.regularly
        assert reg is not None
        stamps = [t for _, t in self.matching_rows(ev, key, at) if t is not None]
        hits = 0
        for i in range(reg.of):
            lo, hi = (
                back(at, times(reg.every, i + 1), self.tz),
                back(at, times(reg.every, i), self.tz),
            )
            hits += sum(1 for t in stamps if lo < t <= hi) >= reg.at_least
        return hits

    def per_values(self, ev: m.EventCond, key: Any, at: datetime) -> set[Any]:
        """The values of the `per` column whose matching rows (nulls ignored) contain a row
        of every `has` type and none of a `lacks` type (SPEC §2.6, per-value grouping)."""
        per = ev.per
        assert per is not None
        kinds: dict[Any, set[str | None]] = {}
        for name in ev.sources:
            src = self.spec.sources[name]
            one = m.EventCond((name,), ev.types, ev.where, ev.window, "count", None, ev.test)
            for row, _ in self.matching_rows(one, key, at):
                value = row.get(per.column)
                if value is None:
                    continue
                kind = row.get(src.type) if src.type else None
                kinds.setdefault(value, set()).add(None if kind is None else str(kind))
        return {
            v
            for v, seen in kinds.items()
            if all(h in seen for h in per.has) and not any(x in seen for x in per.lacks)
        }

    # ------------------------------------------------------------ sequences

    def step_rows(
        self,
        step: m.SeqStep,
        window: m.Window | None,
        same: tuple[str, ...],
        key: Any,
        at: datetime,
    ) -> list[tuple[datetime, tuple[Any, ...]]]:
        """(time, same values) of the contact's rows of one step; rows with a null time or
        a null `same` value cannot take part in a sequence."""
        ev = m.EventCond(step.sources, step.types, step.where, window, "count", None, m.Test(()))
        out = []
        for row, t in self.matching_rows(ev, key, at):
            values = tuple(row.get(c) for c in same)
            if t is not None and all(v is not None for v in values):
                out.append((t, values))
        return out

    def sequence_done(self, c: m.SequenceCond, key: Any, at: datetime) -> datetime | None:
        """The earliest time at which the sequence completed for the contact (SPEC §2.6),
        by brute force over every pair of consecutive steps; None when it never did."""
        reached = self.step_rows(c.steps[0], c.window, c.same, key, at)
        for step in c.steps[1:]:
            rows = self.step_rows(step, c.window, c.same, key, at)
            reached = [
                (t, v)
                for t, v in rows
                if any(
                    pv == v
                    and pt < t
                    and (c.max_gap is None or (t - pt).total_seconds() <= c.max_gap.seconds)
                    for pt, pv in reached
                )
            ]
        times = [t for t, _ in reached]
        if c.then_not is not None:
            assert c.wait is not None
            wait = timedelta(seconds=c.wait.seconds)
            blocks = [t for t, _ in self.step_rows(c.then_not, None, (), key, at)]
            times = [
                t for t in times if t + wait <= at and not any(t < b <= t + wait for b in blocks)
            ]
        return min(times, default=None)

    # ------------------------------------------------------------ scoring

    def score(self, model: str, key: Any, as_of: datetime | None = None) -> float:
        """The contact's score in `model` at `as_of` (SPEC §2.4)."""
        at = as_of or self.as_of
        cache = self._scores.setdefault((model, at), {})
        if key not in cache:
            sm = self.spec.scoring[model]
            total = sum(self.rule_points(rule, sm, key, at) for rule in sm.rules)
            if sm.min is not None:
                total = max(total, sm.min)
            if sm.max is not None:
                total = min(total, sm.max)
            cache[key] = float(total)
        return cache[key]

    def grade(self, model: str, key: Any, as_of: datetime | None = None) -> str:
        """The grade the contact's score earns (SPEC §2.8): the highest grade whose threshold
        the score reaches (equal counts), else `below`."""
        sm = self.spec.scoring[model]
        score = self.score(model, key, as_of)
        for name, threshold in sm.grades:
            if score >= threshold:
                return name
        return sm.below

    def score_change(self, model: str, key: Any, over: m.Duration, as_of: datetime) -> float:
        then = back(as_of, over, self.tz)
        return self.score(model, key, as_of) - self.score(model, key, then)

    def weight(self, sm: m.ScoreModel, t: datetime | None, as_of: datetime) -> float:
        """A row's decay weight: 0.5 ** (age / half_life); 1 without decay or time."""
        if sm.half_life is None or t is None:
            return 1.0
        age = (as_of - t).total_seconds()
        return float(0.5 ** (age / sm.half_life.seconds))

    def rule_points(self, rule: m.Rule, sm: m.ScoreModel, key: Any, as_of: datetime) -> float:
        """One rule's (capped) contribution to the contact's score."""
        when = rule.when
        if rule.each and isinstance(when, m.EventCond) and when.per is not None:
            # Points per passing value; values do not decay (docs/semantics.md).
            assert when.has_default_count
            points = rule.points * len(self.per_values(when, key, as_of))
        elif rule.each:
            assert isinstance(when, m.EventCond) and when.is_default_test
            rows = self.matching_rows(when, key, as_of)
            points = rule.points * sum(self.weight(sm, t, as_of) for _, t in rows)
        elif not self.holds(when, key, as_of):
            points = 0.0
        elif sm.half_life is not None and isinstance(when, m.EventCond) and when.is_default_test:
            latest = max(
                (t for _, t in self.matching_rows(when, key, as_of) if t is not None),
                default=None,
            )
            points = rule.points * self.weight(sm, latest, as_of)
        else:
            points = rule.points
        if rule.max is not None:
            points = min(points, rule.max) if rule.points >= 0 else max(points, -rule.max)
        return points

    # ------------------------------------------------------------ segments

    def sort_value(self, by: m.TopBy, key: Any) -> Any:
        if by.field is not None:
            return self.rows[key].get(by.field)
        if by.score is not None:
            return self.score(by.score, key)
        assert by.change_model is not None and by.change_over is not None
        return self.score_change(by.change_model, key, by.change_over, self.as_of)

    def rule_matches(self, name: str) -> set[Any]:
        """Keys matching segment NAME's rule: where and not exclude, then top."""
        if name not in self._rules:
            seg = self.spec.segments[name]
            if seg.from_file is not None:
                keys = set(self.lists[seg.from_file]) & set(self.rows)
            else:
                assert seg.where is not None
                keys = {k for k in self.rows if self.holds(seg.where, k)}
            if seg.exclude is not None:
                keys = {k for k in keys if not self.holds(seg.exclude, k)}
            if seg.top is not None:
                keys = self._top(seg.top, keys)
            self._rules[name] = keys
        return self._rules[name]

    def _top(self, top: m.Top, keys: set[Any]) -> set[Any]:
        """The highest `n` (or `percent`, rounded up) by value, nulls last, ties by key."""
        values = {k: self.sort_value(top.by, k) for k in keys}
        present = sorted(
            (k for k in keys if values[k] is not None), key=lambda k: (_neg(values[k]), k)
        )
        nulls = sorted(k for k in keys if values[k] is None)
        ranked = present + nulls
        if top.n is not None:
            limit = top.n
        else:
            assert top.percent is not None
            limit = math.ceil(len(keys) * top.percent / 100)
        return set(ranked[:limit])

    def members(self, name: str) -> set[Any]:
        """Segment NAME's members in this run: its rule's matches plus overrides."""
        if name not in self._members:
            seg = self.spec.segments[name]
            keys = set(self.rule_matches(name))
            if seg.include_file:
                keys |= set(self.lists[seg.include_file]) & set(self.rows)
            if seg.exclude_file:
                keys -= set(self.lists[seg.exclude_file])
            self._members[name] = keys
        return self._members[name]

    def evaluate(self) -> Result:
        """Every segment's rule matches and members and every model's scores at as_of."""
        return Result(
            rules={n: self.rule_matches(n) for n in self.spec.segments},
            members={n: self.members(n) for n in self.spec.segments},
            scores={
                model: {k: self.score(model, k) for k in self.rows} for model in self.spec.scoring
            },
        )


def _neg(v: Any) -> Any:
    """A sort key that orders values highest first (numbers, bools, dates and datetimes)."""
    if isinstance(v, bool):
        return -int(v)
    if isinstance(v, int | float):
        return -v
    if isinstance(v, datetime):
        return -v.timestamp()
    if isinstance(v, date):
        return -v.toordinal()
    raise TypeError(f"cannot rank by {v!r}")
