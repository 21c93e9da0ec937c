"""Execute one run's plan: contacts + aggregates + scores + segments, collected once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from segcli.engines.catalog import Catalog
from segcli.engines.contacts import field_columns, load_contacts, read_list
from segcli.errors import DataError
from segcli.plan.compile import Context, compile_condition, event_agg_key, segment_col
from segcli.plan.planner import Planner, combine_exprs, pooled_query, source_queries
from segcli.plan.scoring import model_score, rule_points, score_col
from segcli.spec import graph
from segcli.spec import model as m


def rule_col(name: str) -> str:
    """The per-contact column: does the contact match segment NAME's rule (before overrides)."""
    return f"__rule__{name}"


def base_col(name: str) -> str:
    """The per-contact column: is the contact in NAME's rule-made set after its kind's rule.

    dynamic: matches now; semi_dynamic: previous base or matches now; static: the frozen
    base (or matches now on its first run and on --refresh). Overrides apply on top.
    """
    return f"__base__{name}"


@dataclass(frozen=True)
class Carry:
    """What a segment brings from the last committed run: its mode and previous base keys."""

    mode: str  # "dynamic" | "accumulate" | "frozen" | "compute"
    previous: pl.Series | None = None


@dataclass
class Evaluation:
    """A run's computed result, before state and outputs."""

    frame: pl.DataFrame  # key, __seg__*, __rule__*, __score__* columns, sorted by key
    contacts: pl.DataFrame  # the contacts table (with SOURCE.COL of relation-one sources)
    segments: list[str]  # evaluated, in dependency order
    planner: Planner
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Builder:
    """Compiles segments and scores against one planner and tracks requested score columns."""

    spec: m.Spec
    as_of: datetime
    dtypes: dict[str, pl.DataType]
    planner: Planner
    scores: dict[tuple[str, datetime], str] = field(default_factory=dict)

    def ctx(self, as_of: datetime) -> Context:
        return Context(
            as_of=as_of,
            tz=self.spec.timezone,
            key=self.spec.contacts.key,
            dtypes=self.dtypes,
            register_agg=self.planner.register,
            segment_column=segment_col,
            score_column=self.score_column,
        )

    def score_column(self, model: str, as_of: datetime) -> str:
        name = score_col(model, as_of, self.as_of)
        self.scores[(model, as_of)] = name
        return name

    def top_value(self, by: m.TopBy) -> pl.Expr:
        if by.field is not None:
            return pl.col(by.field)
        if by.score is not None:
            return pl.col(self.score_column(by.score, self.as_of))
        assert by.change_model is not None and by.change_over is not None
        then = self.as_of - timedelta(seconds=by.change_over.seconds)
        return pl.col(self.score_column(by.change_model, self.as_of)) - pl.col(
            self.score_column(by.change_model, then)
        )

    def rule_expr(self, seg: m.Segment, lists: dict[str, pl.Series]) -> pl.Expr:
        key = pl.col(self.spec.contacts.key)
        ctx = self.ctx(self.as_of)
        if seg.from_file is not None:
            expr = key.is_in(lists[seg.from_file].implode())
        else:
            assert seg.where is not None
            expr = compile_condition(seg.where, ctx)
        if seg.exclude is not None:
            expr = expr & ~compile_condition(seg.exclude, ctx)
        if seg.top is not None:
            expr = top_filter(expr, self.top_value(seg.top.by), key, seg.top)
        return expr

    def base_expr(self, seg: m.Segment, carry: Carry | None) -> pl.Expr:
        key = pl.col(self.spec.contacts.key)
        rule = pl.col(rule_col(seg.name))
        if carry is None or carry.mode in ("dynamic", "compute"):
            return rule
        prev = key.is_in(carry.previous.implode()) if carry.previous is not None else pl.lit(False)
        return prev if carry.mode == "frozen" else rule | prev

    def member_expr(self, seg: m.Segment, lists: dict[str, pl.Series]) -> pl.Expr:
        key = pl.col(self.spec.contacts.key)
        expr = pl.col(base_col(seg.name))
        if seg.include_file:
            expr = expr | key.is_in(lists[seg.include_file].implode())
        if seg.exclude_file:
            expr = expr & ~key.is_in(lists[seg.exclude_file].implode())
        return expr


def top_filter(matches: pl.Expr, value: pl.Expr, key: pl.Expr, top: m.Top) -> pl.Expr:
    """Keep the highest `n` (or `percent` of matches, rounded up) by value; ties by key."""
    if top.n is not None:
        limit: pl.Expr = pl.lit(top.n)
    else:
        assert top.percent is not None
        limit = (matches.sum().cast(pl.Float64) * (top.percent / 100.0)).ceil()
    order = pl.int_range(pl.len()).sort_by(
        [~matches, value, key], descending=[False, True, False], nulls_last=True
    )
    rank = order.arg_sort()
    return matches & (rank < limit)


def evaluate(
    spec: m.Spec,
    catalog: Catalog,
    as_of: datetime,
    wanted: list[str] | None = None,
    carry: dict[str, Carry] | None = None,
    detail: bool = False,
) -> Evaluation:
    """Compile and execute every wanted segment (and its dependencies) and every model."""
    import time

    t0 = time.perf_counter()
    key = spec.contacts.key
    contacts = load_contacts(spec, catalog, field_columns(spec))
    key_dtype = contacts[key].dtype
    names = graph.order(spec.segments, wanted)
    planner = Planner(spec)
    b = Builder(spec, as_of, dict(contacts.schema), planner)
    warnings: list[str] = []
    lists: dict[str, pl.Series] = {}
    known = contacts[key]
    for name in names:
        seg = spec.segments[name]
        for rel in (seg.from_file, seg.include_file, seg.exclude_file):
            if rel and rel not in lists:
                lists[rel] = read_list(spec, rel, key_dtype)
                unknown = lists[rel].filter(~lists[rel].is_in(known.implode()))
                if len(unknown):
                    shown = ", ".join(str(v) for v in unknown.head(5).to_list())
                    warnings.append(
                        f"{rel}: {len(unknown)} key(s) not in contacts, ignored: {shown}"
                    )
    rules = {n: b.rule_expr(spec.segments[n], lists) for n in names}
    members = {n: b.member_expr(spec.segments[n], lists) for n in names}
    for model in spec.scoring:
        b.score_column(model, as_of)
    score_exprs: dict[str, pl.Expr] = {}
    pending = list(b.scores.items())
    for (model, at), col in pending:
        score_exprs[col] = model_score(spec.scoring[model], b.ctx(at))
    detail_exprs = detail_columns(spec, b, names) if detail else {}

    lf = contacts.lazy()
    frames = {s: catalog.frame(s) for s in spec.sources if s != "contacts"}
    for src_name, parts in planner.per_source().items():
        if "+" in src_name:
            queries = [pooled_query(spec, frames, src_name.split("+"), parts, key_dtype, as_of)]
        else:
            queries = source_queries(spec, frames[src_name], src_name, parts, key_dtype, as_of)
        for q in queries:
            lf = lf.join(q, on=key, how="left", coalesce=True)
    if planner.aggs:
        lf = lf.with_columns(combine_exprs(planner))
    if score_exprs:
        lf = lf.with_columns([e.alias(c) for c, e in score_exprs.items()])
    for n in names:
        lf = lf.with_columns(rules[n].alias(rule_col(n)))
        base = b.base_expr(spec.segments[n], (carry or {}).get(n))
        lf = lf.with_columns(base.alias(base_col(n)))
        lf = lf.with_columns(members[n].alias(segment_col(n)))
    seg_cols = [c for n in names for c in (rule_col(n), base_col(n), segment_col(n))]
    if detail_exprs:
        lf = lf.with_columns([e.alias(c) for c, e in detail_exprs.items()])
    keep = [key, *seg_cols, *score_exprs, *detail_exprs]
    try:
        # Common-subplan elimination would cache each source's whole scan in memory to share
        # it between row groups: faster by ~10% but 2.5x the peak memory (docs/performance.md).
        opts = pl.QueryOptFlags(comm_subplan_elim=False)
        frame = lf.select(keep).collect(engine="streaming", optimizations=opts)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"evaluating the plan failed: {exc}") from exc
    if not frame[key].is_sorted():
        frame = frame.sort(key)
    return Evaluation(frame, contacts, names, planner, warnings, time.perf_counter() - t0)


def node_col(segment: str, part: str, index: int) -> str:
    """Column of one condition node of a segment's where/exclude tree (for explain)."""
    return f"__node__{segment}#{part}#{index}"


def agg_value_col(segment: str, part: str, index: int) -> str:
    """Column of the aggregate value an event node tests (for explain)."""
    return f"__aggv__{segment}#{part}#{index}"


def points_col(model: str, index: int) -> str:
    """Column of the points rule `index` of a model gives (for explain)."""
    return f"__pts__{model}#{index}"


def detail_columns(spec: m.Spec, b: Builder, names: list[str]) -> dict[str, pl.Expr]:
    """Every condition node's truth, event aggregate values and per-rule points (explain)."""
    ctx = b.ctx(b.as_of)
    out: dict[str, pl.Expr] = {}
    for n in names:
        seg = spec.segments[n]
        for part, root in (("where", seg.where), ("exclude", seg.exclude)):
            for i, node in enumerate(graph.walk(root)):
                out[node_col(n, part, i)] = compile_condition(node, ctx)
                if isinstance(node, m.EventCond):
                    col = b.planner.register(event_agg_key(node, b.as_of))
                    out[agg_value_col(n, part, i)] = pl.col(col)
    for model, sm in spec.scoring.items():
        for j, rule in enumerate(sm.rules):
            out[points_col(model, j)] = rule_points(rule, sm, ctx)
    return out
