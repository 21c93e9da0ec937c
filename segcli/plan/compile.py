"""Compile conditions into Polars expressions over the per-contact frame.

The per-contact frame has the contacts' columns, relation-one columns named `SOURCE.COL`,
one column per event aggregate (named by the planner), score columns and one boolean column
per segment. Every compiled condition is a non-null boolean: a leaf is true or false, never
unknown (the null rule of SPEC §2.1).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from segcli.spec import model as m
from segcli.spec.timeutil import period_bounds, to_utc

UTC_DT = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class AggKey:
    """One per-contact aggregate of an event condition; identical keys are computed once."""

    sources: tuple[str, ...]
    types: tuple[str, ...] | None
    where: tuple[m.RowCond, ...]
    window: m.Window | None
    agg: str  # count, sum, avg, min, max, distinct, active_days, last, first, decay
    column: str | None
    as_of: datetime
    half_life_s: int | None = None  # for agg == "decay": sum of 0.5^(age / half_life)


@dataclass(frozen=True)
class Context:
    """What compiling needs besides the condition: time, timezone and name lookups."""

    as_of: datetime
    tz: str
    key: str
    dtypes: dict[str, pl.DataType]  # per-contact frame columns (contacts + SOURCE.COL)
    register_agg: Callable[[AggKey], str]
    segment_column: Callable[[str], str]
    score_column: Callable[[str, datetime], str]


def segment_col(name: str) -> str:
    """The per-contact column that holds segment NAME's membership in this run."""
    return f"__seg__{name}"


def compile_condition(cond: m.Condition, ctx: Context) -> pl.Expr:
    """Dispatch on the condition's kind by name; unsupported kinds fail clearly."""
    name = type(cond).__name__
    fn = _DISPATCH.get(name)
    if fn is None:  # pragma: no cover - the validator only builds known kinds
        raise NotImplementedError(f"cannot compile condition kind {name}")
    return fn(cond, ctx)


def compile_all(cond: m.AllCond, ctx: Context) -> pl.Expr:
    if not cond.items:
        return _constant(True)
    return pl.all_horizontal([compile_condition(c, ctx) for c in cond.items])


def compile_any(cond: m.AnyCond, ctx: Context) -> pl.Expr:
    if not cond.items:
        return _constant(False)
    return pl.any_horizontal([compile_condition(c, ctx) for c in cond.items])


def _constant(value: bool) -> pl.Expr:
    # One value per contact, not a scalar literal: `top: {percent: P}` sums the matches
    # column, and the sum of a scalar `lit(True)` is 1 whatever the number of contacts.
    return pl.repeat(value, pl.len())


def compile_not(cond: m.NotCond, ctx: Context) -> pl.Expr:
    return ~compile_condition(cond.item, ctx)


def compile_field(cond: m.FieldCond, ctx: Context) -> pl.Expr:
    name = cond.column if cond.source is None else f"{cond.source}.{cond.column}"
    return compile_test(pl.col(name), ctx.dtypes.get(name), cond.test, ctx.as_of, ctx.tz)


def compile_segment(cond: m.SegmentRef, ctx: Context) -> pl.Expr:
    return pl.col(ctx.segment_column(cond.name))


def compile_bucket(cond: m.BucketCond, ctx: Context) -> pl.Expr:
    threshold = round(cond.percent * 100)
    salt = cond.salt

    def hashes(s: pl.Series) -> pl.Series:
        return pl.Series([bucket_of(salt, k) for k in s.cast(pl.String).to_list()], dtype=pl.Int64)

    return pl.col(ctx.key).map_batches(hashes, return_dtype=pl.Int64) < threshold


def bucket_of(salt: str, key: str) -> int:
    """A stable bucket in [0, 10000) for a key: sha256("salt:key"), first 8 bytes, mod 10000."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10000


def compile_event(cond: m.EventCond, ctx: Context) -> pl.Expr:
    col = ctx.register_agg(event_agg_key(cond, ctx.as_of))
    dtype: pl.DataType = UTC_DT if cond.agg in ("last", "first") else pl.Float64()
    return compile_test(pl.col(col), dtype, cond.test, ctx.as_of, ctx.tz)


def event_agg_key(
    cond: m.EventCond, as_of: datetime, agg: str | None = None, half_life_s: int | None = None
) -> AggKey:
    """The aggregate an event condition needs (sources sorted so pooled order does not matter)."""
    return AggKey(
        tuple(sorted(set(cond.sources))),
        tuple(sorted(set(cond.types))) if cond.types else None,
        cond.where,
        cond.window,
        agg or cond.agg,
        cond.column,
        as_of,
        half_life_s,
    )


def compile_score(cond: m.ScoreCond, ctx: Context) -> pl.Expr:
    return compile_test(
        pl.col(ctx.score_column(cond.model, ctx.as_of)), pl.Float64(), cond.test, ctx.as_of, ctx.tz
    )


def compile_score_change(cond: m.ScoreChangeCond, ctx: Context) -> pl.Expr:
    then = ctx.as_of - timedelta(seconds=cond.over.seconds)
    delta = pl.col(ctx.score_column(cond.model, ctx.as_of)) - pl.col(
        ctx.score_column(cond.model, then)
    )
    return compile_test(delta, pl.Float64(), cond.test, ctx.as_of, ctx.tz)


_DISPATCH: dict[str, Callable[[Any, Context], pl.Expr]] = {
    "AllCond": compile_all,
    "AnyCond": compile_any,
    "NotCond": compile_not,
    "FieldCond": compile_field,
    "EventCond": compile_event,
    "SegmentRef": compile_segment,
    "BucketCond": compile_bucket,
    "ScoreCond": compile_score,
    "ScoreChangeCond": compile_score_change,
}

# ---------------------------------------------------------------- tests (operators)


def compile_test(
    value: pl.Expr, dtype: pl.DataType | None, test: m.Test, as_of: datetime, tz: str
) -> pl.Expr:
    """Operators ANDed over `value` with the null rule and `include_missing` applied."""
    temporal = dtype is not None and (isinstance(dtype, pl.Datetime) or dtype == pl.Date)
    if dtype == pl.Date:
        value = local_midnight(value, tz)
    parts = [compile_op(value, op, test.ignore_case, temporal, as_of, tz) for op in test.ops]
    result = pl.all_horizontal(parts) if parts else pl.lit(True)
    if test.include_missing is not None:
        result = pl.when(value.is_null()).then(pl.lit(test.include_missing)).otherwise(result)
    return result


def local_midnight(value: pl.Expr, tz: str) -> pl.Expr:
    """A Date as the UTC instant of its midnight in `tz`: dates compare like naive literals."""
    return (
        value.cast(pl.Datetime("us"))
        .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )


def compile_op(
    v: pl.Expr, op: m.Op, ignore_case: bool, temporal: bool, as_of: datetime, tz: str
) -> pl.Expr:
    """One operator; positive ones are false on null, negative ones their exact complement."""
    if op.name == "is_null":
        return v.is_null() if op.value else v.is_not_null()
    if op.name in m.NEGATIVE_OPS:
        pos = m.Op(m.NEGATIVE_OPS[op.name], op.value)
        return ~compile_op(v, pos, ignore_case, temporal, as_of, tz)
    return _positive(v, op, ignore_case, temporal, as_of, tz).fill_null(False)


def _lit(value: Any, temporal: bool, as_of: datetime, tz: str) -> Any:
    if isinstance(value, m.Relative):
        return pl.lit(as_of - timedelta(seconds=value.duration.seconds), dtype=UTC_DT)
    if temporal and isinstance(value, date | datetime):
        return pl.lit(to_utc(value, tz), dtype=UTC_DT)
    if temporal and isinstance(value, str):
        return pl.lit(
            to_utc(datetime.fromisoformat(value.replace("Z", "+00:00")), tz), dtype=UTC_DT
        )
    return pl.lit(value)


def _positive(
    v: pl.Expr, op: m.Op, ignore_case: bool, temporal: bool, as_of: datetime, tz: str
) -> pl.Expr:
    name, val = op.name, op.value
    texts = val if isinstance(val, tuple) else (val,)
    if name in m.STRING_OPS or (
        ignore_case
        and not temporal
        and name in ("eq", "in")
        and all(isinstance(x, str) for x in texts)
    ):
        # ignore_case is for text: `{eq: 10, ignore_case: true}` on a number stays numeric.
        return _string_op(v, name, val, ignore_case)
    if name == "eq":
        return v.eq(_lit(val, temporal, as_of, tz))
    if name == "in":
        assert isinstance(val, tuple)
        if temporal:
            return pl.any_horizontal([v.eq(_lit(x, True, as_of, tz)) for x in val])
        if all(isinstance(x, str) for x in val):
            return v.is_in(pl.Series(list(val), dtype=pl.String).implode())
        # Numbers: `eq` compares ints and floats by value, whereas `is_in` refuses an
        # Int64 column with a Float64 list (or a mixed list) since Polars 2.
        return pl.any_horizontal([v.eq(pl.lit(x)) for x in val])
    if name in ("gt", "gte", "lt", "lte"):
        lit = _lit(val, temporal, as_of, tz)
        cmp: pl.Expr = {"gt": v.gt, "gte": v.ge, "lt": v.lt, "lte": v.le}[name](lit)
        return cmp
    if name == "between":
        assert isinstance(val, tuple)
        lo, hi = (_lit(x, temporal, as_of, tz) for x in val)
        return v.ge(lo) & v.le(hi)
    if name == "within":
        assert isinstance(val, m.Duration)
        start = as_of - timedelta(seconds=val.seconds)
        return (v >= pl.lit(start, dtype=UTC_DT)) & (v <= pl.lit(as_of, dtype=UTC_DT))
    if name == "older_than":
        assert isinstance(val, m.Duration)
        return v < pl.lit(as_of - timedelta(seconds=val.seconds), dtype=UTC_DT)
    if name == "during":
        assert isinstance(val, m.Period)
        start, end, inclusive = period_bounds(val, as_of, tz)
        upper = v <= pl.lit(end, dtype=UTC_DT) if inclusive else v < pl.lit(end, dtype=UTC_DT)
        return (v >= pl.lit(start, dtype=UTC_DT)) & upper
    raise NotImplementedError(f"operator {name}")  # pragma: no cover


def _string_op(v: pl.Expr, name: str, val: Any, ignore_case: bool) -> pl.Expr:
    s = v.cast(pl.String)
    if ignore_case and name != "matches":
        s = s.str.to_lowercase()
        val = tuple(str(x).lower() for x in val) if isinstance(val, tuple) else str(val).lower()
    if name == "eq":
        return s == pl.lit(val)
    if name == "in":
        return s.is_in(pl.Series(list(val), dtype=pl.String).implode())
    if name == "contains":
        return s.str.contains(str(val), literal=True)
    if name == "starts_with":
        return s.str.starts_with(str(val))
    if name == "ends_with":
        return s.str.ends_with(str(val))
    if name == "matches":
        return s.str.contains(("(?i)" if ignore_case else "") + str(val))
    raise NotImplementedError(name)  # pragma: no cover


def row_filter(
    key: AggKey,
    source: str,
    type_col: str | None,
    time_col: str | None,
    dtypes: dict[str, pl.DataType],
    tz: str,
    *,
    visible_at: datetime | None = None,
    types_done: bool = False,
) -> pl.Expr:
    """The per-row condition of an aggregate on one source: visible, type, window and where.

    `visible_at`: rows after this instant are already gone, so the visibility test is only
    needed for an aggregate evaluated earlier (time travel). `types_done`: the rows were
    already filtered to the aggregate's types.
    """
    parts: list[pl.Expr] = []
    if time_col is not None and (visible_at is None or key.as_of < visible_at):
        parts.append(
            pl.col(time_col).is_null() | (pl.col(time_col) <= pl.lit(key.as_of, dtype=UTC_DT))
        )
    if key.types is not None and type_col is not None and not types_done:
        parts.append(
            pl.col(type_col)
            .cast(pl.String)
            .is_in(pl.Series(list(key.types), dtype=pl.String).implode())
        )
    if key.window is not None and time_col is not None:
        op = (
            m.Op("within", key.window.within)
            if key.window.within
            else m.Op("during", key.window.during)
        )
        parts.append(compile_op(pl.col(time_col), op, False, True, key.as_of, tz))
    for rc in key.where:
        parts.append(compile_test(pl.col(rc.column), dtypes.get(rc.column), rc.test, key.as_of, tz))
    return pl.all_horizontal(parts).fill_null(False) if parts else pl.lit(True)


def window_start(key: AggKey, tz: str) -> datetime | None:
    """The earliest row time an aggregate can use (None when it looks at all of history)."""
    if key.window is None:
        return None
    if key.window.within is not None:
        return key.as_of - timedelta(seconds=key.window.within.seconds)
    assert key.window.during is not None
    return period_bounds(key.window.during, key.as_of, tz)[0]


def decay_weight(time: pl.Expr, as_of: datetime, half_life_s: int) -> pl.Expr:
    """0.5^(age / half_life) of a UTC time at `as_of`; 1.0 where the time is null (undated rows
    count fully). Computed as exp(-ln 2 * age / half_life) on integer microseconds."""
    as_of_us = int(as_of.timestamp() * 1_000_000)
    age_us = pl.lit(as_of_us, dtype=pl.Int64) - time.dt.epoch("us")
    return (age_us.cast(pl.Float64) * (-math.log(2) / (half_life_s * 1e6))).exp().fill_null(1.0)
