"""The planner: every event aggregate of a run, grouped so each source is read in one pass.

Compiling registers aggregates here (`register`); identical aggregates share one column.
`source_queries` then builds, per source, one lazy query: scan -> visibility and dedupe ->
row flags -> drop rows no aggregate wants -> one group_by with every aggregate of that source.
Aggregates over pooled sources are split into per-source partials and recombined, except
`distinct` and `active_days`, which need the pooled rows and get their own pooled query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from segcli.plan.compile import (
    UTC_DT,
    AggKey,
    decay_weight,
    local_midnight,
    row_filter,
    window_start,
)
from segcli.spec.model import Spec

ZERO_FILLED = ("count", "sum", "distinct", "active_days", "decay")
DECOMPOSABLE = ("count", "sum", "avg", "min", "max", "last", "first", "decay")


@dataclass
class Partial:
    """One aggregate over one source (or over the pooled rows of several, for `pooled`)."""

    key: AggKey
    name: str


@dataclass
class Planner:
    """Registry of aggregates and builder of the per-source queries."""

    spec: Spec
    aggs: dict[AggKey, str] = field(default_factory=dict)

    def register(self, key: AggKey) -> str:
        """The column holding aggregate `key` (registered once, shared by every user)."""
        if key not in self.aggs:
            self.aggs[key] = f"__agg{len(self.aggs)}"
        return self.aggs[key]

    def per_source(self) -> dict[str, list[Partial]]:
        """Partials grouped by source; pooled non-decomposable ones under the `+`-joined name."""
        out: dict[str, list[Partial]] = {}
        for key, name in self.aggs.items():
            if len(key.sources) == 1:
                out.setdefault(key.sources[0], []).append(Partial(key, name))
            elif key.agg in DECOMPOSABLE:
                for s in key.sources:
                    out.setdefault(s, []).append(Partial(key, f"{name}#{s}"))
            else:
                out.setdefault("+".join(key.sources), []).append(Partial(key, name))
        return out

    def describe(self) -> list[str]:
        """The plan in segcli's words (for `explain`): each source's scans and aggregates."""
        lines = []
        for src, parts in self.per_source().items():
            if "+" in src:
                lines.append(
                    f"pooled {src.replace('+', ' + ')}: matching values of the sources "
                    f"concatenated, {len(parts)} aggregate(s) in one group_by"
                )
                lines += [f"    {p.name}: {_describe_key(p.key)}" for p in parts]
                continue
            groups = row_groups(parts)
            lines.append(f"source {src}: {len(groups)} scan(s), {len(parts)} aggregate(s)")
            for g in groups:
                rows = "every row" if g.types is None else f"rows with type in {list(g.types)}"
                lines.append(f"  scan {rows}: one group_by of {len(g.parts)} aggregate(s)")
                lines += [f"    {p.name}: {_describe_key(p.key)}" for p in g.parts]
        if not lines:
            lines.append("no event aggregates: contacts only")
        return lines


def _describe_key(k: AggKey) -> str:
    bits = [k.agg + (f"({k.column})" if k.column else "")]
    if k.types:
        bits.append(f"type in {list(k.types)}")
    if k.window and k.window.within:
        bits.append(f"within {k.window.within.text}")
    if k.window and k.window.during:
        bits.append(f"during {k.window.during.name}")
    for rc in k.where:
        ops = ", ".join(f"{o.name} {o.value!r}" for o in rc.test.ops)
        bits.append(f"{rc.column} {ops}")
    bits.append(f"as of {k.as_of.isoformat()}")
    return "; ".join(bits)


def _prepare(
    spec: Spec, lf: pl.LazyFrame, source: str, key_dtype: pl.DataType, as_of: datetime
) -> pl.LazyFrame:
    src = spec.sources[source]
    lf = lf.with_columns(pl.col(src.key).cast(key_dtype, strict=False))
    if src.dedupe:
        lf = lf.unique(subset=list(src.dedupe), keep="first", maintain_order=True)
    if src.time is not None:
        if lf.collect_schema().get(src.time) == pl.Date:
            # A date-only time column: each row happened at its day's local midnight.
            lf = lf.with_columns(local_midnight(pl.col(src.time), spec.timezone))
        # Rows after as_of have not happened yet: invisible to every condition.
        lf = lf.filter(
            pl.col(src.time).is_null() | (pl.col(src.time) <= pl.lit(as_of, dtype=UTC_DT))
        )
    return lf


def _value_expr(p: Partial, source: str, spec: Spec) -> pl.Expr | None:
    """The per-row value an aggregate reduces (null where the row does not match)."""
    k = p.key
    src = spec.sources[source]
    flag = pl.col(f"{p.name}@f")
    if k.agg == "count":
        return None
    if k.agg in ("sum", "avg", "min", "max", "distinct"):
        assert k.column is not None
        return pl.when(flag).then(pl.col(k.column))
    assert src.time is not None or k.agg not in ("last", "first", "active_days", "decay")
    t = pl.col(src.time) if src.time else pl.lit(None, dtype=UTC_DT)
    if k.agg in ("last", "first"):
        return pl.when(flag).then(t)
    if k.agg == "active_days":
        return pl.when(flag).then(t.dt.convert_time_zone(spec.timezone).dt.date())
    if k.agg == "decay":
        assert k.half_life_s is not None
        weight = decay_weight(t, k.as_of, k.half_life_s)
        return pl.when(flag).then(weight)
    raise NotImplementedError(k.agg)  # pragma: no cover


def _reductions(p: Partial) -> list[pl.Expr]:
    k, v = p.key, pl.col(f"{p.name}@v")
    if k.agg == "count":
        return [pl.col(f"{p.name}@f").sum().alias(p.name)]
    if k.agg in ("sum", "decay"):
        return [v.sum().alias(p.name)]
    if k.agg == "avg":
        return [v.sum().alias(f"{p.name}@sum"), v.count().alias(f"{p.name}@cnt")]
    if k.agg in ("min", "first"):
        return [v.min().alias(p.name)]
    if k.agg in ("max", "last"):
        return [v.max().alias(p.name)]
    return [v.drop_nulls().n_unique().alias(p.name)]  # distinct, active_days


@dataclass
class RowGroup:
    """Partials computed together in one scan of a source.

    `types`: the scan keeps only rows of these event types (None: every row). `exact`: every
    partial's own type filter equals `types`, so the flags need no type test of their own.
    """

    types: tuple[str, ...] | None
    exact: bool
    parts: list[Partial]


def row_groups(parts: list[Partial]) -> list[RowGroup]:
    """Group a source's partials into scans.

    Each scan costs a pass over the source's columns, and each flag costs a pass over the
    scan's rows, so: a single-type filter shared by several partials gets its own scan
    (`event_type == 'click'` drops most rows before any flag runs); single partials on one
    type share one scan over the union of their types; partials without a type filter
    share the scan of every row. (Merging wide multi-type filters into the every-row scan was
    measured slower: it serialises the longest pipeline; see docs/performance.md.)
    """
    by_types: dict[tuple[str, ...] | None, list[Partial]] = {}
    for p in parts:
        by_types.setdefault(p.key.types, []).append(p)
    groups: list[RowGroup] = []
    singles: list[Partial] = []
    everything: list[Partial] = []
    for types, group in by_types.items():
        if types is None:
            everything += group
        elif len(group) == 1:
            singles += group
        else:
            groups.append(RowGroup(types, True, group))
    # Windowed singles share a scan that first drops rows older than their widest window;
    # mixing them with whole-history ones would make that scan read all of history.
    # Whole-history singles join the every-row scan when there is one: one hash
    # aggregation over all rows instead of two.
    windowed = [p for p in singles if p.key.window is not None]
    whole = [p for p in singles if p.key.window is None]
    if everything:
        everything += whole
        whole = []
    for bunch in (windowed, whole):
        if len(bunch) == 1:
            groups.append(RowGroup(bunch[0].key.types, True, bunch))
        elif bunch:
            union = tuple(sorted({t for p in bunch for t in p.key.types or ()}))
            groups.append(RowGroup(union, False, bunch))
    if everything:
        groups.append(RowGroup(None, False, everything))
    return groups


def group_query(
    spec: Spec, base: pl.LazyFrame, source: str, group: RowGroup, as_of: datetime
) -> pl.LazyFrame:
    """One scan: type filter, widest-window filter, flags, matching rows only, one group_by."""
    src = spec.sources[source]
    dtypes = dict(base.collect_schema())
    sub = base
    if group.types is not None and src.type is not None:
        tcol = pl.col(src.type).cast(pl.String)
        types = list(group.types)
        sub = sub.filter(tcol == types[0] if len(types) == 1 else tcol.is_in(types))
    starts = [window_start(p.key, spec.timezone) for p in group.parts]
    if src.time is not None and all(s is not None for s in starts):
        earliest = min(s for s in starts if s is not None)
        sub = sub.filter(pl.col(src.time) >= pl.lit(earliest, dtype=UTC_DT))
    flags = [
        row_filter(
            p.key,
            source,
            src.type,
            src.time,
            dtypes,
            spec.timezone,
            visible_at=as_of,
            types_done=group.exact,
        ).alias(f"{p.name}@f")
        for p in group.parts
    ]
    sub = sub.with_columns(flags)
    sub = sub.filter(pl.any_horizontal([pl.col(f"{p.name}@f") for p in group.parts]))
    values = []
    for p in group.parts:
        ve = _value_expr(p, source, spec)
        if ve is not None:
            values.append(ve.alias(f"{p.name}@v"))
    if values:
        sub = sub.with_columns(values)
    agg = sub.group_by(src.key).agg([e for p in group.parts for e in _reductions(p)])
    key = spec.contacts.key
    return agg.rename({src.key: key}) if src.key != key else agg


def source_queries(
    spec: Spec,
    lf: pl.LazyFrame,
    source: str,
    parts: list[Partial],
    key_dtype: pl.DataType,
    as_of: datetime,
) -> list[pl.LazyFrame]:
    """Per-contact aggregates of one source: one narrow scan per row group (see row_groups).

    Each query reads the source with only the columns it needs; each result is one row per
    contact with activity and is left-joined to contacts by the engine.
    """
    base = _prepare(spec, lf, source, key_dtype, as_of)
    return [group_query(spec, base, source, g, as_of) for g in row_groups(parts)]


def pooled_query(
    spec: Spec,
    frames: dict[str, pl.LazyFrame],
    sources: list[str],
    parts: list[Partial],
    key_dtype: pl.DataType,
    as_of: datetime,
) -> pl.LazyFrame:
    """distinct / active_days over several sources: their matching values pooled, then counted."""
    key = spec.contacts.key
    pieces = []
    for s in sources:
        src = spec.sources[s]
        lf = _prepare(spec, frames[s], s, key_dtype, as_of)
        dtypes = dict(lf.collect_schema())
        cols = [pl.col(src.key).alias(key)]
        for p in parts:
            f = row_filter(p.key, s, src.type, src.time, dtypes, spec.timezone).alias(f"{p.name}@f")
            lf = lf.with_columns(f)
            ve = _value_expr(p, s, spec)
            assert ve is not None
            # No cast to text: the relaxed concat below finds the common type, so 1 (int)
            # in one source and 1.0 (float) in another are one distinct value, not two.
            cols.append(ve.alias(f"{p.name}@v"))
        pieces.append(lf.select(cols))
    pooled = pl.concat(pieces, how="vertical_relaxed")
    return pooled.group_by(key).agg([e for p in parts for e in _reductions(p)])


def combine_exprs(planner: Planner) -> list[pl.Expr]:
    """Final aggregate columns from partials, with the zero-row values of SPEC §2.2."""
    out = []
    for key, name in planner.aggs.items():
        multi = len(key.sources) > 1 and key.agg in DECOMPOSABLE
        names = [f"{name}#{s}" for s in key.sources] if multi else [name]
        if key.agg == "avg":
            total = pl.sum_horizontal([pl.col(f"{n}@sum") for n in names])
            cnt = pl.sum_horizontal([pl.col(f"{n}@cnt").fill_null(0) for n in names])
            e: pl.Expr = pl.when(cnt > 0).then(total / cnt)
        elif key.agg in ZERO_FILLED:
            e = pl.sum_horizontal([pl.col(n).fill_null(0) for n in names])
        elif key.agg in ("min", "first"):
            e = pl.min_horizontal([pl.col(n) for n in names])
        else:
            e = pl.max_horizontal([pl.col(n) for n in names])
        if key.agg in ("count", "distinct", "active_days"):
            e = e.cast(pl.Int64)
        elif key.agg not in ("last", "first"):
            e = e.cast(pl.Float64)
        out.append(e.alias(name))
    return out
