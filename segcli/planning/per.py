"""Per-value grouping (SPEC §2.6) in the plan: one pass per pooled sources and `per` column.

Every `per` condition over the same sources and column shares one `PerScan`. Each source's
rows are read once: only the types some condition can see (with `has`, rows of other types
cannot change a verdict), only from the widest window's start, only rows whose `per` value is
not null; then one row flag per condition (the row is selected: visible, type, window,
where) and one per `has`/`lacks` type (selected and of that type). The sources' flagged rows
are concatenated, grouped by (contact, per value) with `any` of every flag, and each
condition's passing values are counted per contact: a value passes when it has a selected
row, a row of every `has` type and none of any `lacks` type. Contacts without a passing
value get 0 (the planner's `combine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from segcli.planning import ir
from segcli.planning.compile import AggKey, row_filter, window_start
from segcli.spec import model as m

LISTED = 10  # how many passing values a listing aggregate names (for explain --contact)


@dataclass(frozen=True)
class PerAggregate:
    """One `per` condition's count: `passes` reads the group's any-flags (columns named like
    the row flags) and says whether the value passes; `name` is the per-contact count. When
    `key.agg` is "values" (explain --contact only), `name` is instead the first `LISTED`
    passing values as text, in text order, joined by ", " (null when none passes)."""

    name: str
    key: AggKey
    passes: ir.Expr


@dataclass(frozen=True)
class PerPart:
    """One source's rows in a `PerScan`: rows of `types` only (None: every row), at or after
    `since` only (None: all of history), with a non-null `per` value; `flags` are
    (column, per-row boolean) pairs, the same columns in every part."""

    source: str
    types: tuple[str, ...] | None
    since: datetime | None
    flags: tuple[tuple[str, ir.Expr], ...]


@dataclass(frozen=True)
class PerScan:
    """The `per` conditions over `sources` grouped by `column`: the parts' flagged rows
    concatenated, grouped by (contact, value) with `any` of each flag, then each aggregate's
    passing values counted per contact."""

    sources: tuple[str, ...]
    column: str
    parts: tuple[PerPart, ...]
    aggregates: tuple[PerAggregate, ...]

    @property
    def flags(self) -> tuple[str, ...]:
        """The flag columns every part yields (and the group stage reduces with `any`)."""
        return tuple(name for name, _ in self.parts[0].flags)

    @property
    def selected(self) -> tuple[str, ...]:
        """The flag columns that say a row is selected by some aggregate."""
        return tuple(per_flags(a.name, a.key.per)[0] for a in self.aggregates if a.key.per)

    def describe(self, tz: str) -> list[str]:
        """The pass in segcli's words (for `explain`)."""
        lines = [
            f"per-value pass over {' + '.join(self.sources)}: rows grouped by (contact, "
            f"{self.column}), {len(self.aggregates)} count(s) of passing values"
        ]
        for p in self.parts:
            rows = "every row" if p.types is None else f"rows with type in {list(p.types)}"
            lines.append(f"  {p.source}: {rows} and a {self.column}")
        lines += [f"    {a.name}: {describe_per(a.key, tz)}" for a in self.aggregates]
        return lines


def describe_per(k: AggKey, tz: str) -> str:
    """A per aggregate in words: `values of campaign_id with sent, without open; ...`."""
    assert k.per is not None
    first = f"the first {LISTED} passing " if k.agg == "values" else ""
    bits = [f"{first}values of {k.per.column}"]
    if k.per.has:
        bits.append(f"with {', '.join(k.per.has)}")
    if k.per.lacks:
        bits.append(f"without {', '.join(k.per.lacks)}")
    bits += k.selection_words()
    bits.append(f"as of {k.as_of.astimezone(ZoneInfo(tz)).isoformat()}")
    return "; ".join(bits)


def per_flags(name: str, per: m.Per) -> tuple[str, list[str], list[str]]:
    """The flag columns of one aggregate: selected, then one per `has` and `lacks` type."""
    has = [f"{name}@h{i}" for i in range(len(per.has))]
    lacks = [f"{name}@l{i}" for i in range(len(per.lacks))]
    return f"{name}@f", has, lacks


def seen_types(key: AggKey) -> tuple[str, ...] | None:
    """The types whose rows can change the aggregate's verdicts (None: every type). With
    `has`, a value needs a row of a `has` type to pass, so other types only matter to
    `lacks`; without it, every selected row counts."""
    assert key.per is not None
    if key.per.has:
        return tuple(sorted({*key.per.has, *key.per.lacks}))
    return key.types


def plan_per_scans(
    spec: m.Spec,
    row_types: dict[str, dict[str, str]],
    aggs: dict[AggKey, str],
    as_of: datetime,
) -> list[PerScan]:
    """One `PerScan` per (sources, per column) of the per aggregates `aggs`."""
    groups: dict[tuple[tuple[str, ...], str], list[tuple[AggKey, str]]] = {}
    for key, name in aggs.items():
        assert key.per is not None
        groups.setdefault((key.sources, key.per.column), []).append((key, name))
    scans = []
    for (sources, column), members in groups.items():
        aggregates = tuple(PerAggregate(n, k, _passes(n, k)) for k, n in members)
        parts = tuple(_part(spec, s, row_types[s], members, as_of, spec.timezone) for s in sources)
        scans.append(PerScan(sources, column, parts, aggregates))
    return scans


def _passes(name: str, key: AggKey) -> ir.Expr:
    assert key.per is not None
    sel, has, lacks = per_flags(name, key.per)
    items: list[ir.Expr] = [ir.Col(sel), *(ir.Col(h) for h in has)]
    items += [ir.Not(ir.Col(c)) for c in lacks]
    return ir.And(tuple(items)) if len(items) > 1 else items[0]


def _part(
    spec: m.Spec,
    source: str,
    types: dict[str, str],
    members: list[tuple[AggKey, str]],
    as_of: datetime,
    tz: str,
) -> PerPart:
    src = spec.sources[source]
    flags: list[tuple[str, ir.Expr]] = []
    seen: set[str] = set()
    everything = False
    starts = []
    for key, name in members:
        assert key.per is not None
        selected = row_filter(key, src.type, src.time, types, tz, visible_at=as_of)
        sel, has, lacks = per_flags(name, key.per)
        flags.append((sel, selected))
        for col, t in (
            *zip(has, key.per.has, strict=True),
            *zip(lacks, key.per.lacks, strict=True),
        ):
            assert src.type is not None  # resolve: has/lacks need the source's type column
            of_type = ir.FillNull(ir.IsIn(ir.Col(src.type), (t,), as_text=True), ir.Lit(False))
            flags.append((col, ir.And((selected, of_type))))
        wanted = seen_types(key)
        if wanted is None:
            everything = True
        else:
            seen |= set(wanted)
        starts.append(window_start(key, tz))
    part_types = None if everything or src.type is None else tuple(sorted(seen))
    since = None
    if src.time is not None and all(s is not None for s in starts):
        since = min(s for s in starts if s is not None)
    return PerPart(source, part_types, since, tuple(flags))
