"""The Polars engine: turn a Plan's IR into one lazy query and collect it once (streaming).

contacts (+ relation-one columns) ─ left join ─ per scan: source → prepare → type and window
filters → row flags → matching rows → one group_by ─ then aggregates, scores and segments as
per-contact columns, in dependency order.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import polars as pl

from segcli.engines.catalog import Catalog, short_error
from segcli.engines.contacts import load_contacts, read_list
from segcli.engines.history import HIST_KEY, Histories, stored_values, with_segment_history
from segcli.engines.polars_sequences import sequence_frames, sequence_passes
from segcli.engines.polars_text import text_in
from segcli.errors import DataError
from segcli.planning import ir
from segcli.planning.compile import bucket_of, grade_expr
from segcli.planning.history import now_col
from segcli.planning.needs import source_need
from segcli.planning.per import LISTED, PerAggregate, PerScan
from segcli.planning.planner import (
    Aggregate,
    Plan,
    PooledScan,
    Scan,
    SourceRead,
    base_col,
    rule_col,
    segment_col,
    share_scans,
    whole_history_typed,
)
from segcli.planning.scoring import score_col
from segcli.spec import model as m

UTC_DT = pl.Datetime("us", "UTC")


def type_name(dtype: pl.DataType) -> str:
    """segcli's type name of a Polars dtype (what the planner needs to know of a column)."""
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum | pl.Categorical):
        return "str"
    return "other"


@dataclass
class Env:
    """What the IR refers to besides columns: list files' keys, the previous sets and the
    values stored for `ever` columns (SPEC §2.6)."""

    lists: dict[str, pl.Series] = field(default_factory=dict)
    previous: dict[str, pl.Series | None] = field(default_factory=dict)
    stored: dict[str, pl.DataFrame] = field(default_factory=dict)


def to_polars(e: ir.Expr, env: Env) -> pl.Expr:
    """One IR expression as a Polars expression."""
    fn = _TRANSLATE.get(type(e).__name__)
    if fn is None:  # pragma: no cover - every node has a translation
        raise NotImplementedError(f"the polars engine cannot run {type(e).__name__}")
    return fn(e, env)


def _col(e: ir.Col, env: Env) -> pl.Expr:
    return pl.col(e.name)


def _lit(e: ir.Lit, env: Env) -> pl.Expr:
    if isinstance(e.value, datetime):
        return _instant(e.value)
    return pl.lit(e.value)


@functools.lru_cache(maxsize=1024)
def _instant(value: datetime) -> pl.Expr:
    """A time literal, built once per value: Polars runs two small queries to build one, and
    a plan names the same few instants (as_of, window starts) dozens of times."""
    return pl.lit(value, dtype=UTC_DT)


def _const(e: ir.Const, env: Env) -> pl.Expr:
    # One value per contact, not a scalar literal: `top: {percent: P}` sums the matches
    # column, and the sum of a scalar `lit(True)` is 1 whatever the number of contacts.
    return pl.repeat(e.value, pl.len())


def _not(e: ir.Not, env: Env) -> pl.Expr:
    return ~to_polars(e.item, env)


def _and(e: ir.And, env: Env) -> pl.Expr:
    items = [to_polars(i, env) for i in e.items]
    return items[0] if len(items) == 1 else pl.all_horizontal(items)


def _or(e: ir.Or, env: Env) -> pl.Expr:
    items = [to_polars(i, env) for i in e.items]
    return items[0] if len(items) == 1 else pl.any_horizontal(items)


def _is_null(e: ir.IsNull, env: Env) -> pl.Expr:
    return to_polars(e.item, env).is_null()


def _fill_null(e: ir.FillNull, env: Env) -> pl.Expr:
    return to_polars(e.item, env).fill_null(to_polars(e.value, env))


def _if_else(e: ir.IfElse, env: Env) -> pl.Expr:
    out = pl.when(to_polars(e.cond, env)).then(to_polars(e.then, env))
    return out if e.otherwise is None else out.otherwise(to_polars(e.otherwise, env))


def _cmp(e: ir.Cmp, env: Env) -> pl.Expr:
    left, right = to_polars(e.left, env), to_polars(e.right, env)
    return {"eq": left.eq, "gt": left.gt, "ge": left.ge, "lt": left.lt, "le": left.le}[e.op](right)


def _is_in(e: ir.IsIn, env: Env) -> pl.Expr:
    v = to_polars(e.item, env)
    if e.as_text:
        return text_in(v.cast(pl.String), [str(x) for x in e.values])
    return v.is_in(pl.Series(list(e.values), dtype=pl.String).implode())


def _str_test(e: ir.StrTest, env: Env) -> pl.Expr:
    s = to_polars(e.item, env).cast(pl.String)
    val: Any = e.value
    if e.ignore_case and e.op != "matches":
        s = s.str.to_lowercase()
        val = tuple(x.lower() for x in val) if isinstance(val, tuple) else val.lower()
    if e.op == "eq":
        return s == pl.lit(val)
    if e.op == "in":
        return text_in(s, [str(x) for x in val])
    if e.op == "contains":
        return s.str.contains(str(val), literal=True)
    if e.op == "starts_with":
        return s.str.starts_with(str(val))
    if e.op == "ends_with":
        return s.str.ends_with(str(val))
    if e.op == "matches":
        return s.str.contains(("(?i)" if e.ignore_case else "") + str(val))
    raise NotImplementedError(e.op)  # pragma: no cover


_CASTS: dict[str, pl.DataType] = {"int": pl.Int64(), "float": pl.Float64(), "str": pl.String()}


def _cast(e: ir.Cast, env: Env) -> pl.Expr:
    return to_polars(e.item, env).cast(_CASTS[e.to])


def _arith(e: ir.Arith, env: Env) -> pl.Expr:
    a, b = to_polars(e.left, env), to_polars(e.right, env)
    return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[e.op]


def _horizontal(e: ir.Horizontal, env: Env) -> pl.Expr:
    items = [to_polars(i, env) for i in e.items]
    fn = {"sum": pl.sum_horizontal, "min": pl.min_horizontal, "max": pl.max_horizontal}[e.fn]
    return fn(items)


def _clip(e: ir.Clip, env: Env) -> pl.Expr:
    return to_polars(e.item, env).clip(lower_bound=e.lower, upper_bound=e.upper)


def local_midnight(value: pl.Expr, tz: str) -> pl.Expr:
    """A Date as the UTC instant of its midnight in `tz`: dates compare like naive literals."""
    return (
        value.cast(pl.Datetime("us"))
        .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )


def _local_midnight(e: ir.LocalMidnight, env: Env) -> pl.Expr:
    return local_midnight(to_polars(e.item, env), e.tz)


def _local_date(e: ir.LocalDate, env: Env) -> pl.Expr:
    return to_polars(e.item, env).dt.convert_time_zone(e.tz).dt.date()


_SIX_HOURS = pl.duration(hours=6)


def _local_candidates(naive: pl.Expr, tz: str) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """A local date-time read with the offset in effect 6 h before it (`early`) and 6 h after
    it (`late`), as UTC instants, and whether each reads back as the same local date-time.
    Both do when it occurs twice (`early` is the first occurrence); neither in a DST gap."""

    def at(moved: pl.Expr, back: pl.Expr) -> pl.Expr:
        local = moved.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        return local.dt.convert_time_zone("UTC") + back

    early = at(naive - _SIX_HOURS, _SIX_HOURS)
    late = at(naive + _SIX_HOURS, -_SIX_HOURS)

    def reads_back(x: pl.Expr) -> pl.Expr:
        return (x.dt.convert_time_zone(tz).dt.replace_time_zone(None) == naive).fill_null(False)

    return early, late, reads_back(early), reads_back(late)


def _shift(e: ir.Shift, env: Env) -> pl.Expr:
    t = to_polars(e.item, env)
    if not e.months:
        return t + pl.duration(seconds=e.seconds)
    # Calendar months on the local wall clock (offset_by clamps to the month's end), then
    # back to an instant the way zoneinfo reads it (timeutil.shift): a repeated local time
    # keeps the fold of `t`, one in a DST gap takes the offset before the change.
    local = t.dt.convert_time_zone(e.tz).dt.replace_time_zone(None)
    early, late, ok_early, ok_late = _local_candidates(local, e.tz)
    later_fold = ok_early & ok_late & (early != late) & (t == late)
    moved = local.dt.offset_by(f"{e.months}mo")
    early, late, ok_early, ok_late = _local_candidates(moved, e.tz)
    return (
        pl.when(ok_early & ok_late)
        .then(pl.when(later_fold).then(late).otherwise(early))
        .when(ok_early)
        .then(early)
        .when(ok_late)
        .then(late)
        .when(later_fold)
        .then(late)
        .otherwise(early)
    )


def _decay(e: ir.DecayWeight, env: Env) -> pl.Expr:
    # exp(-ln 2 * age / half_life) on integer microseconds; undated rows count fully.
    as_of_us = int(e.as_of.timestamp() * 1_000_000)
    age_us = pl.lit(as_of_us, dtype=pl.Int64) - to_polars(e.item, env).dt.epoch("us")
    rate = -math.log(2) / (e.half_life_s * 1e6)
    return (age_us.cast(pl.Float64) * rate).exp().fill_null(1.0)


def _bucket(e: ir.Bucket, env: Env) -> pl.Expr:
    salt = e.salt

    def hashes(s: pl.Series) -> pl.Series:
        return pl.Series([bucket_of(salt, k) for k in s.cast(pl.String).to_list()], dtype=pl.Int64)

    return to_polars(e.item, env).map_batches(hashes, return_dtype=pl.Int64)


def _in_list(e: ir.InList, env: Env) -> pl.Expr:
    return to_polars(e.item, env).is_in(env.lists[e.path].implode())


def _in_previous(e: ir.InPrevious, env: Env) -> pl.Expr:
    prev = env.previous.get(e.segment)
    if prev is None:
        return pl.lit(False)
    return to_polars(e.item, env).is_in(prev.implode())


def _held_before(e: ir.HeldBefore, env: Env) -> pl.Expr:
    stored = env.stored.get(e.column)
    if stored is None:
        return pl.lit(False)
    keys = stored.filter(to_polars(e.test, env))[HIST_KEY].unique()
    return to_polars(e.item, env).is_in(keys.implode())


def _top(e: ir.Top, env: Env) -> pl.Expr:
    """Keep the highest `n` (or `percent` of matches, rounded up) by value; ties by key."""
    matches, value, key = (to_polars(x, env) for x in (e.matches, e.value, e.key))
    if e.n is not None:
        limit: pl.Expr = pl.lit(e.n)
    else:
        assert e.percent is not None
        limit = (matches.sum().cast(pl.Float64) * (e.percent / 100.0)).ceil()
    order = pl.int_range(pl.len()).sort_by(
        [~matches, value, key], descending=[False, True, False], nulls_last=True
    )
    rank = order.arg_sort()
    return matches & (rank < limit)


def _peer_sum(e: ir.PeerSum, env: Env) -> pl.Expr:
    return to_polars(e.item, env).sum().over(to_polars(e.by, env))


_TRANSLATE: dict[str, Callable[[Any, Env], pl.Expr]] = {
    "Col": _col,
    "Lit": _lit,
    "Const": _const,
    "Not": _not,
    "And": _and,
    "Or": _or,
    "IsNull": _is_null,
    "FillNull": _fill_null,
    "IfElse": _if_else,
    "Cmp": _cmp,
    "IsIn": _is_in,
    "StrTest": _str_test,
    "Cast": _cast,
    "Arith": _arith,
    "Horizontal": _horizontal,
    "Clip": _clip,
    "LocalMidnight": _local_midnight,
    "LocalDate": _local_date,
    "Shift": _shift,
    "DecayWeight": _decay,
    "Bucket": _bucket,
    "InList": _in_list,
    "InPrevious": _in_previous,
    "HeldBefore": _held_before,
    "Top": _top,
    "PeerSum": _peer_sum,
}

# ---------------------------------------------------------------- scans


def _prepare(
    read: SourceRead, lf: pl.LazyFrame, key_dtype: pl.DataType, plan: Plan
) -> pl.LazyFrame:
    lf = lf.with_columns(pl.col(read.key).cast(key_dtype, strict=False))
    if read.dedupe:
        lf = lf.unique(subset=list(read.dedupe), keep="first", maintain_order=True)
    if read.time is not None:
        if read.time_is_date:
            # A date-only time column: each row happened at its day's local midnight.
            lf = lf.with_columns(local_midnight(pl.col(read.time), plan.timezone))
        # Rows after as_of have not happened yet: invisible to every condition.
        t = pl.col(read.time)
        lf = lf.filter(t.is_null() | (t <= pl.lit(plan.as_of, dtype=UTC_DT)))
    return lf


def _reductions(a: Aggregate) -> list[pl.Expr]:
    v = pl.col(f"{a.name}@v")
    if a.reduce == "count":
        return [pl.col(f"{a.name}@f").sum().alias(a.name)]
    if a.reduce == "sum":
        return [v.sum().alias(a.name)]
    if a.reduce == "avg":
        return [v.sum().alias(f"{a.name}@sum"), v.count().alias(f"{a.name}@cnt")]
    if a.reduce == "min":
        return [v.min().alias(a.name)]
    if a.reduce == "max":
        return [v.max().alias(a.name)]
    return [v.drop_nulls().n_unique().alias(a.name)]  # n_unique


def _scan_query(
    scan: Scan, read: SourceRead, base: pl.LazyFrame, key: str, env: Env
) -> pl.LazyFrame:
    """One scan: type filter, widest-window filter, flags, matching rows only, one group_by."""
    sub = base
    if scan.types is not None and read.type is not None:
        tcol = pl.col(read.type).cast(pl.String)
        types = list(scan.types)
        sub = sub.filter(text_in(tcol, types))
    if scan.since is not None and read.time is not None:
        sub = sub.filter(pl.col(read.time) >= pl.lit(scan.since, dtype=UTC_DT))
    sub = sub.with_columns([to_polars(a.flag, env).alias(f"{a.name}@f") for a in scan.aggregates])
    sub = sub.filter(pl.any_horizontal([pl.col(f"{a.name}@f") for a in scan.aggregates]))
    values = [
        to_polars(a.value, env).alias(f"{a.name}@v") for a in scan.aggregates if a.value is not None
    ]
    if values:
        sub = sub.with_columns(values)
    agg = sub.group_by(read.key).agg([e for a in scan.aggregates for e in _reductions(a)])
    return agg.rename({read.key: key}) if read.key != key else agg


def _pooled_query(
    pooled: PooledScan,
    reads: dict[str, SourceRead],
    frames: dict[str, pl.LazyFrame],
    key: str,
    env: Env,
) -> pl.LazyFrame:
    """distinct / active_days over several sources: matching values pooled, then counted."""
    pieces = []
    for source, aggregates in pooled.parts:
        lf = frames[source]
        cols = [pl.col(reads[source].key).alias(key)]
        for a in aggregates:
            lf = lf.with_columns(to_polars(a.flag, env).alias(f"{a.name}@f"))
            assert a.value is not None
            # No cast to text: the relaxed concat below finds the common type, so 1 (int)
            # in one source and 1.0 (float) in another are one distinct value, not two.
            cols.append(to_polars(a.value, env).alias(f"{a.name}@v"))
        pieces.append(lf.select(cols))
    first = pooled.parts[0][1]
    together = pl.concat(pieces, how="vertical_relaxed")
    return together.group_by(key).agg([e for a in first for e in _reductions(a)])


PER_VALUE = "__per_value"  # the per column of a per-value pass, whatever its source calls it


def _per_query(
    ps: PerScan,
    reads: dict[str, SourceRead],
    frames: dict[str, pl.LazyFrame],
    key: str,
    env: Env,
) -> pl.LazyFrame:
    """Per-value grouping: each source's rows filtered once and flagged, concatenated, one
    group_by (contact, value) with `any` of each flag, one group_by contact counting the
    values that pass."""
    pieces = []
    for part in ps.parts:
        read = reads[part.source]
        lf = frames[part.source]
        if part.types is not None and read.type is not None:
            tcol = pl.col(read.type).cast(pl.String)
            types = list(part.types)
            lf = lf.filter(text_in(tcol, types))
        if part.since is not None and read.time is not None:
            lf = lf.filter(pl.col(read.time) >= pl.lit(part.since, dtype=UTC_DT))
        lf = lf.filter(pl.col(ps.column).is_not_null())
        lf = lf.with_columns([to_polars(e, env).alias(n) for n, e in part.flags])
        lf = lf.filter(pl.any_horizontal([pl.col(n) for n in ps.selected]))
        cols = [pl.col(read.key).alias(key), pl.col(ps.column).alias(PER_VALUE)]
        pieces.append(lf.select([*cols, *ps.flags]))
    # A relaxed concat finds the pooled sources' common type: 1 and 1.0 are one value.
    rows = pieces[0] if len(pieces) == 1 else pl.concat(pieces, how="vertical_relaxed")
    groups = rows.group_by(key, PER_VALUE).agg([pl.col(n).any() for n in ps.flags])
    return groups.group_by(key).agg([_per_reduction(a, env) for a in ps.aggregates])


def _per_reduction(a: PerAggregate, env: Env) -> pl.Expr:
    """The number of passing values, or (explain --contact) the first of them as text."""
    passes = to_polars(a.passes, env)
    if a.key.agg != "values":
        return passes.cast(pl.Int64).sum().alias(a.name)
    first = pl.col(PER_VALUE).filter(passes).cast(pl.String).sort().head(LISTED)
    return pl.when(passes.any()).then(first.str.join(", ")).alias(a.name)


# ---------------------------------------------------------------- execution


@dataclass
class Evaluation:
    """A run's computed result, before state and outputs. Read it through the accessors."""

    frame: pl.DataFrame  # internal: key and per-contact result columns, sorted by key
    plan: Plan
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @classmethod
    def of_rows(
        cls, frame: Any, plan: Plan, key_dtype: pl.DataType, warnings: list[str], seconds: float
    ) -> Evaluation:
        """The Evaluation of an SQL engine's per-contact rows (Arrow or Polars): the key in
        the contacts key's type, scores as floats, sorted by key."""
        rows = pl.from_arrow(frame) if not isinstance(frame, pl.DataFrame) else frame
        assert isinstance(rows, pl.DataFrame)
        rows = rows.with_columns(
            pl.col(plan.key).cast(key_dtype), *(pl.col(c).cast(pl.Float64) for c, _ in plan.scores)
        )
        return cls(rows.sort(plan.key), plan, warnings, seconds)

    @property
    def key(self) -> str:
        return self.plan.key

    @property
    def segments(self) -> list[str]:
        """The evaluated segments, in dependency order."""
        return self.plan.order

    def contact_keys(self) -> pl.Series:
        """Every contact key, sorted."""
        return self.frame[self.plan.key]

    def matches(self, name: str) -> pl.Series:
        """Per contact: does it match segment NAME's rule (before the kind and overrides)."""
        return self.frame[rule_col(name)]

    def base(self, name: str) -> pl.Series:
        """Per contact: is it in NAME's rule-made set after its kind's rule."""
        return self.frame[base_col(name)]

    def member(self, name: str) -> pl.Series:
        """Per contact: is it a member of NAME in this run (overrides applied)."""
        return self.frame[segment_col(name)]

    def membership_rows(self, names: list[str], index: str) -> pl.DataFrame:
        """`index` (a segment's position in `names`), key, rule, base, member for segments
        `names`, one after the other, sorted by key within each: only the contacts in a
        segment's rule-made set or membership (what the state's transitions take)."""
        parts = [
            self.frame.lazy()
            .select(
                pl.lit(i, pl.UInt32).alias(index),
                self.plan.key,
                pl.col(rule_col(n)).alias("rule"),
                pl.col(base_col(n)).alias("base"),
                pl.col(segment_col(n)).alias("member"),
            )
            .filter(pl.col("member") | pl.col("base"))
            for i, n in enumerate(names)
        ]
        return pl.concat(parts).collect()

    def score(self, model: str, at: datetime | None = None) -> pl.Series:
        """Per contact: the model's score at the run's as_of (or at `at`, an earlier instant
        the plan computed for `score_change`)."""
        return self.frame[score_col(model, at or self.plan.as_of, self.plan.as_of)]

    def memberships(self) -> pl.DataFrame:
        """key, then one boolean column per evaluated segment (named like it)."""
        cols = {self.plan.key: self.contact_keys()}
        cols.update({n: self.member(n).alias(n) for n in self.segments})
        return pl.DataFrame(cols)

    def scores(self) -> pl.DataFrame:
        """key, then one float column per scoring model (named like it)."""
        cols = {self.plan.key: self.contact_keys()}
        cols.update({m: self.score(m).alias(m) for m in self.plan.models})
        return pl.DataFrame(cols)

    def grade(self, sm: m.ScoreModel) -> pl.Series:
        """Per contact: the grade model `sm`'s score earns (SPEC §2.8; never null)."""
        expr = to_polars(grade_expr(ir.Col("score"), sm), Env())
        return pl.DataFrame({"score": self.score(sm.name)}).select(expr).to_series()

    def score_of(self, row: dict[str, Any], model: str) -> float | None:
        """A model's score in a row returned by `row`."""
        value = row.get(score_col(model, self.plan.as_of, self.plan.as_of))
        return None if value is None else float(value)

    def flags_of(self, row: dict[str, Any], name: str) -> tuple[bool, bool, bool]:
        """(member, matches the rule, in the rule-made set) of segment NAME in a `row`."""
        return tuple(bool(row.get(c(name))) for c in (segment_col, rule_col, base_col))  # type: ignore[return-value]

    def current_values(self, column: str) -> pl.DataFrame:
        """key and the current value of a column an `ever` leaf reads (what the state
        stores for property history, SPEC §2.6)."""
        return self.frame.select(self.plan.key, pl.col(now_col(column)).alias(column))

    def row(self, key_value: Any) -> dict[str, Any] | None:
        """Every computed column of one contact (for explain --contact), or None."""
        rows = self.frame.filter(pl.col(self.plan.key) == key_value).to_dicts()
        return rows[0] if rows else None


def execute(
    plan: Plan,
    catalog: Catalog,
    previous: dict[str, pl.Series | None] | None = None,
    histories: Histories | None = None,
) -> Evaluation:
    """Run a plan on Polars: one lazy query, collected once with the streaming engine.

    `previous`: the rule-made sets of the last committed run, for the segments whose mode
    needs them (semi_dynamic, static). `histories`: what the state knows for the plan's
    history leaves (SPEC §2.6).
    """
    t0 = time.perf_counter()
    assert plan.spec is not None
    spec = plan.spec
    key = plan.key
    contacts = load_contacts(spec, catalog, set(plan.contact_columns))
    key_dtype = contacts[key].dtype
    contacts = with_segment_history(contacts, plan, histories)
    warnings: list[str] = []
    env = Env(previous=dict(previous or {}), stored=stored_values(plan, histories, key_dtype))
    known = contacts[key]
    for rel in plan.lists:
        env.lists[rel] = read_list(spec, rel, key_dtype)
        unknown = env.lists[rel].filter(~env.lists[rel].is_in(known.implode()))
        if len(unknown):
            shown = ", ".join(str(v) for v in unknown.head(5).to_list())
            warnings.append(f"{rel}: {len(unknown)} key(s) not in contacts, ignored: {shown}")

    lf = contacts.lazy()
    reads = {r.name: r for r in plan.sources}
    raw = {r.name: catalog.frame(r.name, source_need(plan, r)) for r in plan.sources}
    frames = {r.name: _prepare(r, raw[r.name], key_dtype, plan) for r in plan.sources}
    # Small data runs in memory throughout: on a few thousand contacts the streaming
    # engine's set-up costs more than it saves. Each source is then read and prepared once
    # (its scans would each read and decode it again).
    small = _small(catalog, plan)
    if small:
        try:
            ready = pl.collect_all(list(frames.values()), engine="in-memory")
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"evaluating the plan failed: {short_error(exc)}") from exc
        frames = {n: df.lazy() for n, df in zip(frames, ready, strict=True)}
    columns = {r.name: r.type for r in plan.sources if r.type is not None}
    shares = _type_shares(plan, frames if small else raw)  # small: already in memory
    scans = share_scans(list(plan.scans), columns, shares)
    queries = [_scan_query(s, reads[s.source], frames[s.source], key, env) for s in scans]
    queries += [_pooled_query(p, reads, frames, key, env) for p in plan.pooled]
    queries += [_per_query(ps, reads, frames, key, env) for ps in plan.per_scans]
    passes = sequence_passes(plan, frames, key, lambda e: to_polars(e, env))
    # Common-subplan elimination would cache each source's whole scan in memory to share
    # it between scans: faster by ~10% but 2.5x the peak memory (docs/performance.md).
    opts = pl.QueryOptFlags(comm_subplan_elim=False)
    # The passes over the events run together (streaming, in parallel); their results have
    # a row per contact at most, and joining them to the contacts in memory costs less than
    # inside the streaming query (docs/performance.md).
    engine: Literal["in-memory", "streaming"] = "in-memory" if small else "streaming"
    try:
        done = pl.collect_all([*queries, *passes.values()], engine=engine, optimizations=opts)
        parts = dict(zip(passes, done[len(queries) :], strict=True))
        found = done[: len(queries)] + sequence_frames(plan, parts, key)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"evaluating the plan failed: {short_error(exc)}") from exc
    for f in found:
        lf = lf.join(f.lazy(), on=key, how="left", coalesce=True)
    if plan.aggregates:
        lf = lf.with_columns([to_polars(e, env).alias(n) for n, e in plan.aggregates])
    if plan.scores:
        lf = lf.with_columns([to_polars(e, env).alias(n) for n, e in plan.scores])
    for level in plan.levels():  # a segment's rule, then its set, then its membership
        lf = lf.with_columns(to_polars(s.rule, env).alias(rule_col(s.name)) for s in level)
        lf = lf.with_columns(to_polars(s.base, env).alias(base_col(s.name)) for s in level)
        lf = lf.with_columns(to_polars(s.member, env).alias(segment_col(s.name)) for s in level)
    seg_cols = [c for n in plan.order for c in (rule_col(n), base_col(n), segment_col(n))]
    if plan.details:
        lf = lf.with_columns([to_polars(e, env).alias(n) for n, e in plan.details])
    keep = [key, *seg_cols, *(n for n, _ in plan.scores), *(n for n, _ in plan.details)]
    keep_exprs = [pl.col(c) for c in keep]
    keep_exprs += [pl.col(c).alias(now_col(c)) for c in plan.history_fields]
    try:
        frame = lf.select(keep_exprs).collect(engine="in-memory", optimizations=opts)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"evaluating the plan failed: {short_error(exc)}") from exc
    if not frame[key].is_sorted():
        frame = frame.sort(key)
    return Evaluation(frame, plan, warnings, time.perf_counter() - t0)


# Event sources smaller than this together (on disk) run on Polars' in-memory engine: on a
# few thousand contacts the streaming engine's set-up costs more than it saves (the demo's
# plan: 62 vs 80 ms), and the whole data fits in memory many times over.
SMALL_BYTES = 8 << 20


# Rows of a source's type column sampled to tell rare types from common ones.
SAMPLE_ROWS = 100_000


def _type_shares(plan: Plan, raw: dict[str, pl.LazyFrame]) -> dict[str, dict[str, float]]:
    """Per source with two or more whole-history scans of some types, each type's share of
    its first SAMPLE_ROWS rows (a few milliseconds: one column of the first file or row
    group). It decides which scans share a pass (`share_scans`), never a result."""
    out: dict[str, dict[str, float]] = {}
    for r in plan.sources:
        if r.type is None or len(whole_history_typed(list(plan.scans), r.name)) < 2:
            continue
        try:
            sample = raw[r.name].select(pl.col(r.type).cast(pl.String)).head(SAMPLE_ROWS)
            counts = sample.collect().to_series().value_counts(normalize=True)
        except pl.exceptions.PolarsError:
            continue  # a bad value: the plan's own query reports it, where it belongs
        shares = zip(counts[r.type].to_list(), counts["proportion"].to_list(), strict=True)
        out[r.name] = dict(shares)
    return out


def _small(catalog: Catalog, plan: Plan) -> bool:
    """Whether the plan's event sources are small enough for the in-memory engine."""
    try:
        size = sum(f.stat().st_size for r in plan.sources for f in catalog.files(r.name))
    except (OSError, DataError):
        return False
    return size < SMALL_BYTES


def schemas(catalog: Catalog, names: list[str]) -> dict[str, dict[str, str]]:
    """Each source's column types as segcli type names (schemas only, no rows)."""
    return {n: {c: type_name(t) for c, t in catalog.schema(n).items()} for n in names}
