"""The planner: a run's whole computation as one frozen, printable, engine-neutral `Plan`.

`build_plan` compiles every wanted segment (with what it depends on) and every scoring model
into the IR, registering each event aggregate once. Aggregates are then grouped so each
source is read in few narrow scans: per scan, a type filter and the widest window are pushed
down, every aggregate gets a row flag, and one group-by reduces them all. Aggregates over
pooled sources are split into per-source partials and recombined, except `distinct` and
`active_days`, which need the pooled rows and get their own pooled scan.

Building a plan reads schemas (column types), never rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from segcli.planning import ir
from segcli.planning.compile import (
    AggKey,
    Context,
    account_count,
    compile_condition,
    event_agg_key,
    field_values,
    grade_expr,
    holding_count,
    regular_periods,
    row_filter,
    window_start,
)
from segcli.planning.history import history_refs, history_value
from segcli.planning.per import PerScan, plan_per_scans
from segcli.planning.scoring import model_score, rule_points, score_col
from segcli.planning.sequences import SeqKey, SequencePlan, plan_sequence, sequence_col
from segcli.spec import graph
from segcli.spec import model as m
from segcli.spec.timeutil import before

ZERO_FILLED = ("count", "sum", "distinct", "active_days", "decay")
DECOMPOSABLE = ("count", "sum", "avg", "min", "max", "last", "first", "decay")
# How the segment kinds carry members from the last committed run (decided by
# segcli.state.kinds): recompute, recompute on a first run or refresh, add only, keep.
MODES = ("dynamic", "compute", "accumulate", "frozen")

# ---------------------------------------------------------------- column names


def segment_col(name: str) -> str:
    """The per-contact column that holds segment NAME's membership in this run."""
    return f"__seg__{name}"


def rule_col(name: str) -> str:
    """The per-contact column: does the contact match segment NAME's rule (before overrides)."""
    return f"__rule__{name}"


def base_col(name: str) -> str:
    """The per-contact column: is the contact in NAME's rule-made set after its kind's rule."""
    return f"__base__{name}"


def node_col(segment: str, part: str, index: int) -> str:
    """Column of one condition node of a segment's where/exclude tree (for explain)."""
    return f"__node__{segment}#{part}#{index}"


def agg_value_col(segment: str, part: str, index: int) -> str:
    """Column of the aggregate value an event node tests (for explain)."""
    return f"__aggv__{segment}#{part}#{index}"


def account_col(segment: str, part: str, index: int) -> str:
    """Column of the account id an account node groups by (for explain --contact)."""
    return f"__acct__{segment}#{part}#{index}"


def agg_list_col(segment: str, part: str, index: int) -> str:
    """Column of the passing values a `per` event node counts (for explain)."""
    return f"__aggl__{segment}#{part}#{index}"


def operand_value_col(segment: str, part: str, index: int, k: int) -> str:
    """Column of the k-th column operand's value of a field node (for explain)."""
    return f"__opv__{segment}#{part}#{index}#{k}"


def points_col(model: str, index: int) -> str:
    """Column of the points rule `index` of a model gives (for explain)."""
    return f"__pts__{model}#{index}"


# ---------------------------------------------------------------- the plan value


@dataclass(frozen=True)
class Aggregate:
    """One aggregate (or one source's partial of a pooled one) computed in a scan.

    `flag` is the row filter (as column `name@f`), `value` the per-row value reduced (as
    column `name@v`; None for a count of flags), `reduce` one of count, sum, avg, min, max,
    n_unique (`avg` yields `name@sum` and `name@cnt`).
    """

    name: str
    key: AggKey
    flag: ir.Expr
    value: ir.Expr | None
    reduce: str


@dataclass(frozen=True)
class Scan:
    """One pass over a source: rows of `types` only (None: every row), rows at or after
    `since` only (None: all of history), then one group-by of `aggregates`."""

    source: str
    types: tuple[str, ...] | None
    since: datetime | None
    aggregates: tuple[Aggregate, ...]


@dataclass(frozen=True)
class PooledScan:
    """distinct / active_days over several sources: each source's matching values
    concatenated, then counted per contact. `parts[i]` is (source, aggregates on it)."""

    sources: tuple[str, ...]
    parts: tuple[tuple[str, tuple[Aggregate, ...]], ...]
    names: tuple[str, ...]


@dataclass(frozen=True)
class SourceRead:
    """How a relation-many source is prepared before its scans: key cast to the contacts
    key's type, `dedupe`, a date-only time read as local midnight, future rows dropped."""

    name: str
    key: str
    time: str | None
    type: str | None
    dedupe: tuple[str, ...]
    time_is_date: bool


@dataclass(frozen=True)
class SegmentPlan:
    """A segment's three per-contact expressions: the rule, the kind's rule-made set, and
    membership after the overrides (include_file / exclude_file)."""

    name: str
    kind: str
    mode: str
    rule: ir.Expr
    base: ir.Expr
    member: ir.Expr


@dataclass(frozen=True)
class Plan:
    """Everything a run computes, in dependency order, engine-neutral."""

    as_of: datetime
    timezone: str
    key: str
    contact_columns: tuple[str, ...]
    sources: tuple[SourceRead, ...]
    scans: tuple[Scan, ...]
    pooled: tuple[PooledScan, ...]
    aggregates: tuple[tuple[str, ir.Expr], ...]
    scores: tuple[tuple[str, ir.Expr], ...]
    segments: tuple[SegmentPlan, ...]
    details: tuple[tuple[str, ir.Expr], ...]
    lists: tuple[str, ...]
    models: tuple[str, ...] = ()
    # The order in which aggregates' sources were first needed: one source, or a pool.
    reads: tuple[tuple[str, ...], ...] = ()
    # Sequence conditions (SPEC §2.6), each read in a shared per-source sequence pass.
    sequences: tuple[SequencePlan, ...] = ()
    # Per-value grouping (SPEC §2.6): one pass per pooled sources and `per` column.
    per_scans: tuple[PerScan, ...] = ()
    # History inputs the engine must be given (SPEC §2.6, segcli.planning.history): the
    # segments with a history frame, and the per-contact columns with stored values (the
    # engine also returns their current values, for the state to store).
    history_segments: tuple[str, ...] = ()
    history_fields: tuple[str, ...] = ()
    spec: m.Spec | None = field(default=None, compare=False, repr=False)

    @property
    def order(self) -> list[str]:
        """The evaluated segments in dependency order."""
        return [s.name for s in self.segments]

    def segment(self, name: str) -> SegmentPlan:
        for s in self.segments:
            if s.name == name:
                return s
        raise KeyError(name)

    def levels(self) -> list[list[SegmentPlan]]:
        """The segments in groups an engine can compute side by side: a segment's group
        comes after the group of every segment whose rule, rule-made set or membership
        column it reads, and as early as that allows (segments keep their order within a
        group). One step per group, not three per segment, keeps the query shallow."""
        level: dict[str, int] = {}
        for s in self.segments:
            reads = ir.columns(s.rule) | ir.columns(s.base) | ir.columns(s.member)
            after = [level[o] for o in level if {rule_col(o), base_col(o), segment_col(o)} & reads]
            level[s.name] = max(after, default=-1) + 1
        groups: list[list[SegmentPlan]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for s in self.segments:
            groups[level[s.name]].append(s)
        return groups

    def describe(self) -> list[str]:
        """The plan in segcli's words (for `explain`): each source's scans and aggregates."""
        lines: list[str] = []
        for unit in self.reads:
            if len(unit) == 1:
                scans = [s for s in self.scans if s.source == unit[0]]
                n = sum(len(s.aggregates) for s in scans)
                lines.append(f"source {unit[0]}: {len(scans)} scan(s), {n} aggregate(s)")
                for s in scans:
                    rows = "every row" if s.types is None else f"rows with type in {list(s.types)}"
                    lines.append(f"  scan {rows}: one group_by of {len(s.aggregates)} aggregate(s)")
                    lines += [
                        f"    {a.name}: {describe_key(a.key, self.timezone)}" for a in s.aggregates
                    ]
                continue
            p = next(x for x in self.pooled if x.sources == unit)
            lines.append(
                f"pooled {' + '.join(p.sources)}: matching values of the sources "
                f"concatenated, {len(p.names)} aggregate(s) in one group_by"
            )
            first = p.parts[0][1]
            lines += [f"    {a.name}: {describe_key(a.key, self.timezone)}" for a in first]
        for ps in self.per_scans:
            lines += ps.describe(self.timezone)
        for sp in self.sequences:
            lines += sp.describe(self.timezone)
        if not lines:
            lines.append("no event aggregates: contacts only")
        return lines


def describe_key(k: AggKey, tz: str = "UTC") -> str:
    """An aggregate in words: `count; type in ['click']; within 30d; as of ...` (the instant
    shown in `tz`, with its offset)."""
    bits = [k.agg + (f"({k.column})" if k.column else ""), *k.selection_words()]
    if k.span is not None:
        lo, hi = (x.astimezone(ZoneInfo(tz)).isoformat() for x in k.span)
        bits.append(f"in ({lo}, {hi}]")
    bits.append(f"as of {k.as_of.astimezone(ZoneInfo(tz)).isoformat()}")
    return "; ".join(bits)


# ---------------------------------------------------------------- building


@dataclass
class _Builder:
    spec: m.Spec
    as_of: datetime
    types: dict[str, str]
    aggs: dict[AggKey, str] = field(default_factory=dict)
    scores: dict[tuple[str, datetime], str] = field(default_factory=dict)
    seqs: dict[SeqKey, str] = field(default_factory=dict)
    history_segments: frozenset[str] = frozenset()
    history_fields: frozenset[str] = frozenset()

    def register_seq(self, key: SeqKey) -> str:
        if key not in self.seqs:
            self.seqs[key] = sequence_col(len(self.seqs))
        return self.seqs[key]

    def register(self, key: AggKey) -> str:
        if key not in self.aggs:
            self.aggs[key] = f"__agg{len(self.aggs)}"
        return self.aggs[key]

    def score_column(self, model: str, as_of: datetime) -> str:
        name = score_col(model, as_of, self.as_of)
        self.scores[(model, as_of)] = name
        return name

    def ctx(self, as_of: datetime) -> Context:
        return Context(
            as_of=as_of,
            tz=self.spec.timezone,
            key=self.spec.contacts.key,
            types=self.types,
            register_agg=self.register,
            segment_column=segment_col,
            score_column=self.score_column,
            models=self.spec.scoring,
            register_seq=self.register_seq,
            history_segments=self.history_segments,
            history_fields=self.history_fields,
        )

    def top_value(self, by: m.TopBy) -> ir.Expr:
        if by.field is not None:
            return ir.Col(by.field)
        if by.score is not None:
            return ir.Col(self.score_column(by.score, self.as_of))
        assert by.change_model is not None and by.change_over is not None
        then = before(self.as_of, by.change_over, self.spec.timezone)
        return ir.Arith(
            "sub",
            ir.Col(self.score_column(by.change_model, self.as_of)),
            ir.Col(self.score_column(by.change_model, then)),
        )

    def rule(self, seg: m.Segment) -> ir.Expr:
        key = ir.Col(self.spec.contacts.key)
        ctx = self.ctx(self.as_of)
        expr: ir.Expr
        if seg.from_file is not None:
            expr = ir.InList(key, seg.from_file)
        else:
            assert seg.where is not None
            expr = compile_condition(seg.where, ctx)
        if seg.exclude is not None:
            expr = ir.And((expr, ir.Not(compile_condition(seg.exclude, ctx))))
        if seg.top is not None:
            t = seg.top
            expr = ir.Top(expr, self.top_value(t.by), key, t.n, t.percent)
        return expr


def kind_rule(name: str, mode: str, key: str) -> ir.Expr:
    """A segment's rule-made set under its kind's mode: the rule (dynamic, or a first run or
    refresh), the rule or the previous set (semi_dynamic: add only), the previous set
    (static: frozen)."""
    rule = ir.Col(rule_col(name))
    if mode in ("dynamic", "compute"):
        return rule
    prev = ir.InPrevious(ir.Col(key), name)
    return prev if mode == "frozen" else ir.Or((rule, prev))


def overrides(seg: m.Segment, key: str) -> ir.Expr:
    """Membership: the rule-made set plus include_file, minus exclude_file (which wins)."""
    expr: ir.Expr = ir.Col(base_col(seg.name))
    if seg.include_file:
        expr = ir.Or((expr, ir.InList(ir.Col(key), seg.include_file)))
    if seg.exclude_file:
        expr = ir.And((expr, ir.Not(ir.InList(ir.Col(key), seg.exclude_file))))
    return expr


def build_plan(
    spec: m.Spec,
    schemas: dict[str, dict[str, str]],
    as_of: datetime,
    wanted: list[str] | None = None,
    modes: dict[str, str] | None = None,
    detail: bool = False,
    history: bool = False,
) -> Plan:
    """The plan of a run at `as_of`: every wanted segment (and its dependencies) and model.

    `schemas`: each source's column types (segcli type names). `modes`: each segment's kind
    mode from the state (default: dynamic). `detail`: also every condition node's truth,
    the aggregate values and per-rule points (for `explain --contact`). `history`: the
    engine will be given the state's history (`history_segments`, `history_fields`);
    without it history leaves are compiled as on a first run.
    """
    key = spec.contacts.key
    types = contact_types(spec, schemas)
    names = graph.order(spec.segments, wanted)
    b = _Builder(spec, as_of, types)
    if history:
        hist_segs, hist_fields = history_refs(spec)
        b.history_segments = frozenset(n for n in hist_segs if n in names)
        b.history_fields = frozenset(hist_fields)
    rules = {n: b.rule(spec.segments[n]) for n in names}
    for model in spec.scoring:
        b.score_column(model, as_of)
    scores: list[tuple[str, ir.Expr]] = []
    for (model, at), col in list(b.scores.items()):
        scores.append((col, model_score(spec.scoring[model], b.ctx(at))))
    details = _details(spec, b, names) if detail else []
    segments = []
    for n in names:
        seg = spec.segments[n]
        mode = (modes or {}).get(n, "dynamic")
        assert mode in MODES, mode
        segments.append(
            SegmentPlan(n, seg.kind, mode, rules[n], kind_rule(n, mode, key), overrides(seg, key))
        )
    lists = []
    for n in names:
        seg = spec.segments[n]
        for rel in (seg.from_file, seg.include_file, seg.exclude_file):
            if rel and rel not in lists:
                lists.append(rel)
    plain = {k: n for k, n in b.aggs.items() if k.per is None}
    reads, scans, pooled = _scans(spec, schemas, plain, as_of)
    row_types = {s: _row_types(spec, schemas, s) for s in spec.sources}
    per_aggs = {k: n for k, n in b.aggs.items() if k.per is not None}
    per_scans = plan_per_scans(spec, row_types, per_aggs, as_of)
    sequences = tuple(plan_sequence(n, k, spec, row_types, as_of) for k, n in b.seqs.items())
    for needs in (*(p.sources for p in per_scans), *(sp.sources for sp in sequences)):
        reads += [_read(spec, schemas, s) for s in needs if s not in {r.name for r in reads}]
    units = tuple(_per_source(plain))
    return Plan(
        as_of=as_of,
        timezone=spec.timezone,
        key=key,
        contact_columns=tuple(sorted(field_columns(spec))),
        sources=tuple(reads),
        scans=tuple(scans),
        pooled=tuple(pooled),
        aggregates=tuple(combine(b.aggs)),
        scores=tuple(scores),
        segments=tuple(segments),
        details=tuple(details),
        lists=tuple(lists),
        models=tuple(spec.scoring),
        reads=units,
        sequences=sequences,
        per_scans=tuple(per_scans),
        history_segments=tuple(sorted(b.history_segments)),
        history_fields=tuple(sorted(b.history_fields)),
        spec=spec,
    )


def contact_types(spec: m.Spec, schemas: dict[str, dict[str, str]]) -> dict[str, str]:
    """The per-contact frame's column types: contacts' own, and SOURCE.COL of relation-one
    sources (their key excepted)."""
    out = dict(schemas.get("contacts", {}))
    for name, src in spec.sources.items():
        if name == "contacts" or src.relation != "one":
            continue
        for col, typ in schemas.get(name, {}).items():
            if col != src.key:
                out[f"{name}.{col}"] = typ
    return out


def field_columns(spec: m.Spec) -> set[str]:
    """Every per-contact column a condition or `top` reads (`col` or `SOURCE.col`)."""
    roots: list[m.Condition | None] = []
    for seg in spec.segments.values():
        roots += [seg.where, seg.exclude]
    for sm in spec.scoring.values():
        roots += [r.when for r in sm.rules]
    out: set[str] = set()
    for root in roots:
        for c in graph.walk(root):
            if isinstance(c, m.FieldCond):
                out.add(c.column if c.source is None else f"{c.source}.{c.column}")
                out |= {ref.name for ref in c.test.column_refs}  # column operands (§2.6)
            elif isinstance(c, m.AccountCond):
                out.add(c.column)
    out |= {s.top.by.field for s in spec.segments.values() if s.top and s.top.by.field}
    return out


def _details(spec: m.Spec, b: _Builder, names: list[str]) -> list[tuple[str, ir.Expr]]:
    ctx = b.ctx(b.as_of)
    out: list[tuple[str, ir.Expr]] = []
    for n in names:
        seg = spec.segments[n]
        for part, root in (("where", seg.where), ("exclude", seg.exclude)):
            for i, node in enumerate(graph.walk(root)):
                out.append((node_col(n, part, i), compile_condition(node, ctx)))
                if isinstance(node, m.EventCond) and node.regularly is not None:
                    out.append((agg_value_col(n, part, i), regular_periods(node, ctx)))
                elif isinstance(node, m.EventCond):
                    col = b.register(event_agg_key(node, b.as_of))
                    out.append((agg_value_col(n, part, i), ir.Col(col)))
                    if node.per is not None:
                        listed = b.register(event_agg_key(node, b.as_of, agg="values"))
                        out.append((agg_list_col(n, part, i), ir.Col(listed)))
                elif isinstance(node, m.SequenceCond):
                    col = b.register_seq((node, b.as_of))
                    out.append((agg_value_col(n, part, i), ir.Col(col)))
                elif isinstance(node, m.AccountCond):
                    out.append((agg_value_col(n, part, i), account_count(node, ctx)))
                    out.append((account_col(n, part, i), ir.Col(node.column)))
                elif isinstance(node, m.SegmentRef) and node.history is not None:
                    known = node.name in b.history_segments
                    now = ir.Col(segment_col(node.name))
                    value = history_value(node, known, b.as_of, now)
                    if value is not None:
                        out.append((agg_value_col(n, part, i), value))
                elif isinstance(node, m.FieldCond) and (
                    node.test.column_refs or node.test.offset is not None
                ):
                    # both sides of a column comparison, as compared (SPEC §2.6)
                    left, operands = field_values(node, ctx)
                    out.append((agg_value_col(n, part, i), left))
                    for k, e in enumerate(operands):
                        out.append((operand_value_col(n, part, i, k), e))
                elif isinstance(node, m.AtLeastCond):
                    out.append((agg_value_col(n, part, i), holding_count(node, ctx)))
                elif isinstance(node, m.GradeCond):
                    score = ir.Col(b.score_column(node.model, b.as_of))
                    grade = grade_expr(score, spec.scoring[node.model])
                    out.append((agg_value_col(n, part, i), grade))
    for model, sm in spec.scoring.items():
        for j, rule in enumerate(sm.rules):
            out.append((points_col(model, j), rule_points(rule, sm, ctx)))
    return out


# ---------------------------------------------------------------- scans


@dataclass
class _Partial:
    key: AggKey
    name: str


def _per_source(aggs: dict[AggKey, str]) -> dict[tuple[str, ...], list[_Partial]]:
    """Partials grouped by source; pooled non-decomposable ones under the tuple of sources."""
    out: dict[tuple[str, ...], list[_Partial]] = {}
    for key, name in aggs.items():
        if len(key.sources) == 1:
            out.setdefault(key.sources, []).append(_Partial(key, name))
        elif key.agg in DECOMPOSABLE:
            for s in key.sources:
                out.setdefault((s,), []).append(_Partial(key, f"{name}#{s}"))
        else:
            out.setdefault(key.sources, []).append(_Partial(key, name))
    return out


def _read(spec: m.Spec, schemas: dict[str, dict[str, str]], source: str) -> SourceRead:
    src = spec.sources[source]
    is_date = src.time is not None and schemas.get(source, {}).get(src.time) == "date"
    return SourceRead(source, src.key, src.time, src.type, src.dedupe, is_date)


def _row_types(spec: m.Spec, schemas: dict[str, dict[str, str]], source: str) -> dict[str, str]:
    """A source's column types as its rows reach the flags: a date-only time column has
    become the instant of its local midnight."""
    out = dict(schemas.get(source, {}))
    time_col = spec.sources[source].time
    if time_col is not None and out.get(time_col) == "date":
        out[time_col] = "datetime"
    return out


def _value(p: _Partial, src: m.Source, tz: str) -> ir.Expr | None:
    """The per-row value an aggregate reduces (null where the row does not match)."""
    k = p.key
    flag = ir.Col(f"{p.name}@f")
    if k.agg == "count":
        return None
    if k.agg in ("sum", "avg", "min", "max", "distinct"):
        assert k.column is not None
        return ir.IfElse(flag, ir.Col(k.column))
    t: ir.Expr = ir.Col(src.time) if src.time else ir.Lit(None)
    if k.agg in ("last", "first"):
        return ir.IfElse(flag, t)
    if k.agg == "active_days":
        return ir.IfElse(flag, ir.LocalDate(t, tz))
    if k.agg == "decay":
        assert k.half_life_s is not None
        return ir.IfElse(flag, ir.DecayWeight(t, k.as_of, k.half_life_s))
    raise NotImplementedError(k.agg)  # pragma: no cover


_REDUCE = {
    "count": "count",
    "sum": "sum",
    "decay": "sum",
    "avg": "avg",
    "min": "min",
    "first": "min",
    "max": "max",
    "last": "max",
    "distinct": "n_unique",
    "active_days": "n_unique",
}


def _aggregate(
    p: _Partial,
    spec: m.Spec,
    source: str,
    types: dict[str, str],
    as_of: datetime,
    *,
    visible_at: datetime | None,
    types_done: bool,
) -> Aggregate:
    src = spec.sources[source]
    flag = row_filter(
        p.key,
        src.type,
        src.time,
        types,
        spec.timezone,
        visible_at=visible_at,
        types_done=types_done,
    )
    return Aggregate(p.name, p.key, flag, _value(p, src, spec.timezone), _REDUCE[p.key.agg])


@dataclass
class _Group:
    types: tuple[str, ...] | None
    exact: bool
    parts: list[_Partial]


def _groups(parts: list[_Partial]) -> list[_Group]:
    """Group a source's partials into scans.

    Each scan costs a pass over the source's columns, and each flag costs a pass over the
    scan's rows, so: a single-type filter shared by several partials gets its own scan
    (`event_type == 'click'` drops most rows before any flag runs); single partials on one
    type share one scan over the union of their types; partials without a type filter
    share the scan of every row. (Merging wide multi-type filters into the every-row scan was
    measured slower: it serialises the longest pipeline; see docs/performance.md.)
    """
    by_types: dict[tuple[str, ...] | None, list[_Partial]] = {}
    for p in parts:
        by_types.setdefault(p.key.types, []).append(p)
    groups: list[_Group] = []
    singles: list[_Partial] = []
    everything: list[_Partial] = []
    for types, group in by_types.items():
        if types is None:
            everything += group
        elif len(group) == 1:
            singles += group
        else:
            groups.append(_Group(types, True, group))
    # Windowed partials, with or without a type filter, share a scan that first drops rows
    # older than their widest window; mixing them with whole-history ones would make that
    # scan read all of history (and compute, say, an `active_days` local date on every row).
    # Whole-history singles join the every-row scan when there is one: one hash
    # aggregation over all rows instead of two.
    windowed = [p for p in singles + everything if p.key.window is not None]
    whole = [p for p in singles if p.key.window is None]
    everything = [p for p in everything if p.key.window is None]
    if everything:
        everything += whole
        whole = []
    for bunch in (windowed, whole):
        if len(bunch) == 1:
            groups.append(_Group(bunch[0].key.types, True, bunch))
        elif any(p.key.types is None for p in bunch):
            groups.append(_Group(None, False, bunch))
        elif bunch:
            union = tuple(sorted({t for p in bunch for t in p.key.types or ()}))
            groups.append(_Group(union, False, bunch))
    if everything:
        groups.append(_Group(None, False, everything))
    return groups


# Whole-history scans of one source whose types hold together at most this share of its
# rows read the source once between them (`share_scans`).
SHARED_SCAN_SHARE = 0.25


def whole_history_typed(scans: list[Scan], source: str) -> list[Scan]:
    """A source's whole-history scans with a type filter (what `share_scans` may merge)."""
    return [s for s in scans if s.source == source and s.since is None and s.types]


def share_scans(
    scans: list[Scan], type_columns: dict[str, str], shares: dict[str, dict[str, float]]
) -> list[Scan]:
    """The plan's scans with a source's rare-type whole-history scans made one.

    A whole-history scan of a few rare types (clicks, bounces, searches) costs mostly the
    decoding of the whole source, for the few rows its type filter keeps; two such scans
    decode it twice. So on each source, the whole-history scans with a type filter are
    taken rarest first while their types together hold at most SHARED_SCAN_SHARE of the
    rows, and those (two or more) become one scan over the union of their types, each
    aggregate testing its own types. Common types stay apart: there, every flag would run
    on most rows (measured slower, docs/performance.md).

    `shares[source][type]` is the share of the source's rows of that type (from a sample:
    it decides speed only, never results); `type_columns[source]` its type column.
    """
    out = list(scans)
    for source, share in shares.items():
        rare = sorted(
            whole_history_typed(scans, source),
            key=lambda s: sum(share.get(t, 0.0) for t in s.types or ()),
        )
        taken: list[Scan] = []
        union: set[str] = set()
        for scan in rare:
            wider = union | set(scan.types or ())
            if sum(share.get(t, 0.0) for t in wider) > SHARED_SCAN_SHARE:
                break
            taken.append(scan)
            union = wider
        if len(taken) < 2:
            continue
        tcol = ir.Col(type_columns[source])
        aggregates = tuple(
            replace(
                a,
                flag=ir.FillNull(
                    ir.And((ir.IsIn(tcol, a.key.types or s.types or (), as_text=True), a.flag)),
                    ir.Lit(False),
                ),
            )
            for s in taken
            for a in s.aggregates
        )
        merged = Scan(source, tuple(sorted(union)), None, aggregates)
        at = out.index(taken[0])
        out = [s for s in out if s not in taken]
        out.insert(at, merged)
    return out


def _scans(
    spec: m.Spec,
    schemas: dict[str, dict[str, str]],
    aggs: dict[AggKey, str],
    as_of: datetime,
) -> tuple[list[SourceRead], list[Scan], list[PooledScan]]:
    reads: dict[str, SourceRead] = {}
    scans: list[Scan] = []
    pooled: list[PooledScan] = []
    for sources, parts in _per_source(aggs).items():
        for s in sources:
            reads.setdefault(s, _read(spec, schemas, s))
        types = {s: _row_types(spec, schemas, s) for s in sources}
        if len(sources) > 1:
            per = tuple(
                (
                    s,
                    tuple(
                        _aggregate(p, spec, s, types[s], as_of, visible_at=None, types_done=False)
                        for p in parts
                    ),
                )
                for s in sources
            )
            pooled.append(PooledScan(sources, per, tuple(p.name for p in parts)))
            continue
        source = sources[0]
        src = spec.sources[source]
        for g in _groups(parts):
            starts = [window_start(p.key, spec.timezone) for p in g.parts]
            since = None
            if src.time is not None and all(s is not None for s in starts):
                since = min(s for s in starts if s is not None)
            # A partial whose types are exactly the scan's filter needs no type test of its
            # own (the whole-history bunch's union is often one partial's types).
            aggregates = tuple(
                _aggregate(
                    p,
                    spec,
                    source,
                    types[source],
                    as_of,
                    visible_at=as_of,
                    types_done=g.exact or (g.types is not None and p.key.types == g.types),
                )
                for p in g.parts
            )
            scan_types = g.types if src.type is not None else None
            scans.append(Scan(source, scan_types, since, aggregates))
    return list(reads.values()), scans, pooled


def combine(aggs: dict[AggKey, str]) -> list[tuple[str, ir.Expr]]:
    """Final aggregate columns from partials, with the zero-row values of SPEC §2.2."""
    out: list[tuple[str, ir.Expr]] = []
    for key, name in aggs.items():
        # A per aggregate's pooled rows are grouped together: one partial, not one a source.
        multi = len(key.sources) > 1 and key.agg in DECOMPOSABLE and key.per is None
        names = [f"{name}#{s}" for s in key.sources] if multi else [name]
        e: ir.Expr
        if key.per is not None and key.agg == "values":
            out.append((name, ir.Col(name)))  # text, null when no value passes
            continue
        if key.agg == "avg":
            total = ir.Horizontal("sum", tuple(ir.Col(f"{n}@sum") for n in names))
            cnt = ir.Horizontal(
                "sum", tuple(ir.FillNull(ir.Col(f"{n}@cnt"), ir.Lit(0)) for n in names)
            )
            e = ir.IfElse(ir.Cmp("gt", cnt, ir.Lit(0)), ir.Arith("div", total, cnt))
        elif key.agg in ZERO_FILLED:
            e = ir.Horizontal("sum", tuple(ir.FillNull(ir.Col(n), ir.Lit(0)) for n in names))
        elif key.agg in ("min", "first"):
            e = ir.Horizontal("min", tuple(ir.Col(n) for n in names))
        else:
            e = ir.Horizontal("max", tuple(ir.Col(n) for n in names))
        if key.agg in ("count", "distinct", "active_days"):
            e = ir.Cast(e, "int")
        elif key.agg not in ("last", "first"):
            e = ir.Cast(e, "float")
        out.append((name, e))
    return out
