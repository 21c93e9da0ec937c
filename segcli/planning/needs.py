"""What a plan reads of each event source: its columns, and which rows can matter.

Every part of a plan that reads an event source (a scan, a pooled or per-value pass, a
sequence step) reads only rows of some types, and a windowed one only rows from some time
on; a row that none of them reads changes no result. A reader that must convert a source
before the plan can scan it (CSV text into a temporary columnar file) skips those rows and
the columns nobody reads. The Polars engine's scans still apply their own filters: the need
is a superset of what each of them reads, never a replacement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from segcli.planning import ir
from segcli.planning.compile import window_start
from segcli.planning.planner import Plan, SourceRead


@dataclass(frozen=True)
class SourceNeed:
    """The rows and columns of one event source that some part of a plan reads.

    `columns`: every column read (key, time, type and dedupe columns included).
    `rows`: None when every row may matter; else a row matters when its type is in
    `rows.types` from that type's time on (None: all of its history), or, whatever its
    type, from `rows.any_type` on (None: no such reader)."""

    columns: tuple[str, ...]
    rows: RowNeed | None


@dataclass(frozen=True)
class RowNeed:
    types: tuple[tuple[str, datetime | None], ...]
    any_type: datetime | None

    def by_since(self) -> list[tuple[datetime | None, tuple[str, ...]]]:
        """The types grouped by the time they are needed from (whole history first)."""
        groups: dict[datetime | None, list[str]] = {}
        for t, since in self.types:
            groups.setdefault(since, []).append(t)
        order = sorted(groups, key=lambda s: (s is not None, s or datetime.min))
        return [(s, tuple(sorted(groups[s]))) for s in order]


def implied_types(e: ir.Expr, type_col: str) -> tuple[str, ...] | None:
    """The types a row flag can be true for (None: any type), read off its IR: a flag is a
    conjunction, and one of its parts may test the type column."""
    if isinstance(e, ir.FillNull):
        return implied_types(e.item, type_col)
    if isinstance(e, ir.IsIn) and e.as_text and e.item == ir.Col(type_col):
        return tuple(str(v) for v in e.values)
    if isinstance(e, ir.And):
        found = [implied_types(i, type_col) for i in e.items]
        sets = [set(f) for f in found if f is not None]
        if not sets:
            return None
        return tuple(sorted(set.intersection(*sets)))
    if isinstance(e, ir.Or):
        found = [implied_types(i, type_col) for i in e.items]
        if any(f is None for f in found):
            return None
        return tuple(sorted({t for f in found if f is not None for t in f}))
    return None


def implied_since(e: ir.Expr, time_col: str) -> datetime | None:
    """The earliest time a row flag can be true for (None: any time), read off its IR: a
    window is `time >= start` within the flag's conjunction."""
    if isinstance(e, ir.FillNull):
        return implied_since(e.item, time_col)
    if (
        isinstance(e, ir.Cmp)
        and e.op in ("ge", "gt")
        and e.left == ir.Col(time_col)
        and isinstance(e.right, ir.Lit)
        and isinstance(e.right.value, datetime)
    ):
        return e.right.value
    if isinstance(e, ir.And):
        starts = [implied_since(i, time_col) for i in e.items]
        known = [s for s in starts if s is not None]
        return max(known) if known else None
    if isinstance(e, ir.Or):
        starts = [implied_since(i, time_col) for i in e.items]
        some = [s for s in starts if s is not None]
        return min(some) if some and len(some) == len(starts) else None
    return None


def row_prefilter(
    flags: list[ir.Expr], read: SourceRead
) -> list[tuple[tuple[str, ...] | None, datetime | None]]:
    """Per flag, the (types, since) its rows must have (None: any), from its IR."""
    out = []
    for f in flags:
        types = implied_types(f, read.type) if read.type else None
        since = implied_since(f, read.time) if read.time else None
        out.append((types, since))
    return out


def source_need(plan: Plan, read: SourceRead) -> SourceNeed:
    """What `plan` reads of event source `read` (see SourceNeed)."""
    name = read.name
    cols: set[str] = {read.key}
    cols |= {c for c in (read.time, read.type) if c is not None}
    cols |= set(read.dedupe)
    readers: list[tuple[tuple[str, ...] | None, datetime | None]] = []
    for scan in plan.scans:
        if scan.source == name:
            readers.append((scan.types, scan.since))
            for a in scan.aggregates:
                cols |= ir.columns(a.flag) | (ir.columns(a.value) if a.value else set())
    for pooled in plan.pooled:
        for source, aggregates in pooled.parts:
            if source != name:
                continue
            for a in aggregates:
                readers.append((a.key.types, window_start(a.key, plan.timezone)))
                cols |= ir.columns(a.flag) | (ir.columns(a.value) if a.value else set())
    for ps in plan.per_scans:
        for part in ps.parts:
            if part.source == name:
                readers.append((part.types, part.since))
                cols.add(ps.column)
                for _, flag in part.flags:
                    cols |= ir.columns(flag)
    for sp in plan.sequences:
        flags = [f for s, fs in sp.steps if s == name for f in fs]
        flags += [f for s, f in sp.then_not if s == name]
        readers += row_prefilter(flags, read)
        for f in flags:
            cols |= ir.columns(f)
        if flags:
            cols |= set(sp.same)
    columns = tuple(sorted(cols))
    # Rows are left alone where dropping some would change what the engine computes before
    # any filter: deduplication keeps the first of equal rows, and a date-only time column
    # is compared only after it became an instant.
    if read.dedupe or read.time_is_date or read.type is None:
        return SourceNeed(columns, None)
    return SourceNeed(columns, _rows(readers, read.time is not None))


def _rows(
    readers: list[tuple[tuple[str, ...] | None, datetime | None]], timed: bool
) -> RowNeed | None:
    type_since: dict[str, datetime | None] = {}
    any_type: datetime | None = None  # None: no reader of every type
    for types, since in readers:
        since = since if timed else None
        if types is None:
            if since is None:
                return None  # a reader of every row
            any_type = since if any_type is None else min(any_type, since)
            continue
        for t in types:
            if t in type_since:
                have = type_since[t]
                type_since[t] = None if have is None or since is None else min(have, since)
            else:
                type_since[t] = since
    return RowNeed(tuple(sorted(type_since.items(), key=lambda kv: kv[0])), any_type)
