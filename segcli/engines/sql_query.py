"""A Plan as one SQL query (sqlglot), in the planner's shape.

    WITH src_*  (each source: key cast, dedupe, date-only time as local midnight, future
                 rows dropped)
         scan_* (one pass per planned scan: type and window prefilters, one flag column per
                 aggregate, matching rows only, one GROUP BY with CASE aggregates)
         pool_* (pooled sources: per-source values UNION ALL, then COUNT(DISTINCT))
         per_*  (per-value grouping: flagged rows grouped by contact and value, then the
                 passing values counted; segcli.engines.sql_per)
         l0     (contacts LEFT JOIN every scan and pool)
         l1 ... (per-contact aggregates, scores, then each segment's rule, kind set and
                 membership, one layer each, so later segments read earlier ones)
    SELECT ... ORDER BY key

Where the rows come from is the caller's: `Inputs` gives each source's relation, the
per-contact relation, and the SQL of list files and previous sets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from segcli.engines.history import HIST_KEY
from segcli.engines.sql import (
    Translator,
    col,
    ident,
    lit,
    local_midnight,
    sql_type,
)
from segcli.engines.sql_per import per_cte
from segcli.engines.sql_sequences import needed_columns, sequence_ctes
from segcli.planning import ir
from segcli.planning.history import now_col
from segcli.planning.planner import (
    Aggregate,
    Plan,
    PooledScan,
    Scan,
    SegmentPlan,
    SourceRead,
    base_col,
    rule_col,
    segment_col,
)

ROW = "__row"  # the row-order column a source relation may carry (keep-first dedupe)


@dataclass
class Inputs:
    """Where a query's rows come from.

    `source(name, columns)`: a relation with (at least) those raw columns of the source, and
    ROW when `ordered(name)` (file order, for dedupe's keep-first). `contacts`: the
    per-contact relation, columns named by `ident` (contacts columns and SOURCE.COL).
    `key_types`: each source key's segcli type and the contacts key's (for the cast).
    """

    source: Callable[[str, list[str]], exp.Select]
    ordered: Callable[[str], bool]
    contacts: exp.Expr
    key_type: str
    source_key_types: dict[str, str]
    in_list: Callable[[exp.Expr, str], exp.Expr] | None = None
    in_previous: Callable[[exp.Expr, str], exp.Expr] | None = None
    # held_before(item, column, test): the SQL of ir.HeldBefore (values stored by the state).
    held_before: Callable[[exp.Expr, str, exp.Expr], exp.Expr] | None = None


def result_columns(plan: Plan) -> list[tuple[str, str]]:
    """(name, column) of an engine's per-contact result: each segment's rule, base and
    member flags, the scores and detail columns, and the current value of each column an
    `ever` leaf reads (what the state stores)."""
    cols = [c for n in plan.order for c in (rule_col(n), base_col(n), segment_col(n))]
    cols += [n for n, _ in plan.scores] + [n for n, _ in plan.details]
    return [(c, c) for c in cols] + [(c, now_col(c)) for c in plan.history_fields]


def held_in(stored: dict[str, str]) -> Callable[[exp.Expr, str, exp.Expr], exp.Expr]:
    """Inputs.held_before over relations of stored values: `stored[column]` names one with
    HIST_KEY and the column (by `ident`); a column with none stored was never held."""

    def held_before(item: exp.Expr, column: str, test: exp.Expr) -> exp.Expr:
        if column not in stored:
            return exp.false()
        keys = exp.select(exp.column(HIST_KEY, quoted=True)).from_(stored[column]).where(test)
        return exp.In(this=item, query=keys.subquery())

    return held_before


def _select(*items: exp.Expr) -> exp.Select:
    return exp.Select(expressions=list(items))


def _needed(plan: Plan, source: str) -> list[str]:
    """The raw columns of a source that its scans read (flags and values), plus key/time/type."""
    read = next(r for r in plan.sources if r.name == source)
    cols: set[str] = {read.key}
    for c in (read.time, read.type):
        if c is not None:
            cols.add(c)
    aggs: list[Aggregate] = [a for s in plan.scans if s.source == source for a in s.aggregates]
    aggs += [a for p in plan.pooled for src, part in p.parts if src == source for a in part]
    for a in aggs:
        cols |= ir.columns(a.flag)
        if a.value is not None:
            cols |= ir.columns(a.value)
    for ps in plan.per_scans:
        for part in ps.parts:
            if part.source == source:
                cols.add(ps.column)
                for _, flag in part.flags:
                    cols |= ir.columns(flag)
    for sp in plan.sequences:
        cols |= needed_columns(sp, source)
    return sorted(c for c in cols if "@" not in c and not c.startswith("__agg"))


def source_cte(plan: Plan, read: SourceRead, t: Translator, inputs: Inputs) -> exp.Select:
    """A source's rows as the scans see them (SourceRead's preparation)."""
    cols = _needed(plan, read.name)
    extra = [c for c in read.dedupe if c not in cols]
    rel = inputs.source(read.name, [*cols, *extra]).subquery("s")
    key: exp.Expr = exp.column(read.key, quoted=True)
    if inputs.source_key_types.get(read.name) != inputs.key_type:
        key = exp.TryCast(this=key, to=sql_type(inputs.key_type, t.dialect))
    items: list[exp.Expr] = []
    for c in cols:
        e: exp.Expr = key if c == read.key else exp.column(c, quoted=True)
        if c == read.time and read.time_is_date:
            e = local_midnight(e, plan.timezone, t.dialect)
        items.append(exp.alias_(e, ident(c), quoted=True, copy=False))
    inner: exp.Expr = rel
    if read.dedupe:
        # Rows repeated across exports count once: the first in file order (or, where the
        # relation has no order, one of them: they are meant to be identical).
        order = (
            [exp.Ordered(this=exp.column(ROW, quoted=True))]
            if inputs.ordered(read.name)
            else [exp.Ordered(this=exp.column(c, quoted=True)) for c in cols]
        )
        rn = exp.Window(
            this=exp.RowNumber(),
            partition_by=[exp.column(c, quoted=True) for c in read.dedupe],
            order=exp.Order(expressions=order),
        )
        numbered = _select(exp.Star(), exp.alias_(rn, "__rn", quoted=True, copy=False)).from_(
            rel, copy=False
        )
        first = exp.EQ(this=exp.column("__rn", quoted=True), expression=exp.Literal.number(1))
        inner = (
            _select(exp.Star())
            .from_(numbered.subquery("d"), copy=False)
            .where(first, copy=False)
            .subquery("r")
        )
    q = _select(*items).from_(inner, copy=False)
    if read.time is not None:
        outer = _select(exp.Star()).from_(q.subquery("p"), copy=False)
        tcol = col(read.time)
        visible = exp.or_(
            exp.Is(this=tcol, expression=exp.null()),
            exp.LTE(this=tcol, expression=lit(plan.as_of, t.dialect)),
            copy=False,
        )
        return outer.where(visible, copy=False)
    return q


def _reductions(a: Aggregate, value: exp.Expr | None) -> list[exp.Expr]:
    name = ident(a.name)
    if a.reduce == "count":
        flag = (
            exp.Case().when(col(f"{a.name}@f"), exp.Literal.number(1)).else_(exp.Literal.number(0))
        )
        return [exp.alias_(exp.Sum(this=flag), name, quoted=True, copy=False)]
    assert value is not None
    if a.reduce == "avg":
        return [
            exp.alias_(exp.Sum(this=value), ident(f"{a.name}@sum"), quoted=True, copy=False),
            exp.alias_(exp.Count(this=value), ident(f"{a.name}@cnt"), quoted=True, copy=False),
        ]
    if a.reduce == "n_unique":
        return [
            exp.alias_(
                exp.Count(this=exp.Distinct(expressions=[value])), name, quoted=True, copy=False
            )
        ]
    cls = {"sum": exp.Sum, "min": exp.Min, "max": exp.Max}[a.reduce]
    return [exp.alias_(cls(this=value), name, quoted=True, copy=False)]


def scan_cte(scan: Scan, read: SourceRead, src: str, t: Translator, key: str) -> exp.Select:
    """One scan: prefilters, flags, matching rows only, one GROUP BY."""
    flags = [
        exp.alias_(t.expr(a.flag), ident(f"{a.name}@f"), quoted=True, copy=False)
        for a in scan.aggregates
    ]
    rows = _select(exp.Star(), *flags).from_(src, copy=False)
    if scan.types is not None and read.type is not None:
        typ = exp.cast(col(read.type), sql_type("str", t.dialect), copy=False)
        rows = rows.where(exp.In(this=typ, expressions=[exp.Literal.string(x) for x in scan.types]))
    if scan.since is not None and read.time is not None:
        rows = rows.where(exp.GTE(this=col(read.time), expression=lit(scan.since, t.dialect)))
    any_flag = exp.or_(*(col(f"{a.name}@f") for a in scan.aggregates), copy=False)
    out: list[exp.Expr] = [exp.alias_(col(read.key), ident(key), quoted=True, copy=False)]
    for a in scan.aggregates:
        out += _reductions(a, None if a.value is None else t.expr(a.value))
    return (
        _select(*out)
        .from_(rows.subquery("f"), copy=False)
        .where(any_flag, copy=False)
        .group_by(col(read.key), copy=False)
    )


def pooled_cte(
    p: PooledScan, reads: dict[str, SourceRead], srcs: dict[str, str], t: Translator, key: str
) -> exp.Select:
    """distinct / active_days over pooled sources: values UNION ALL, then counted."""
    pieces: list[exp.Select] = []
    for source, aggregates in p.parts:
        flags = [
            exp.alias_(t.expr(a.flag), ident(f"{a.name}@f"), quoted=True, copy=False)
            for a in aggregates
        ]
        rows = _select(exp.Star(), *flags).from_(srcs[source], copy=False).subquery("f")
        vals: list[exp.Expr] = [
            exp.alias_(col(reads[source].key), ident(key), quoted=True, copy=False)
        ]
        for a in aggregates:
            assert a.value is not None
            vals.append(exp.alias_(t.expr(a.value), ident(f"{a.name}@v"), quoted=True, copy=False))
        pieces.append(_select(*vals).from_(rows, copy=False))
    union: exp.Expr = pieces[0]
    for piece in pieces[1:]:
        union = exp.union(union, piece, distinct=False)
    first = p.parts[0][1]
    out: list[exp.Expr] = [col(key)]
    for a in first:
        out += _reductions(a, col(f"{a.name}@v"))
    return (
        _select(*out)
        .from_(exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("u"))))
        .group_by(col(key), copy=False)
    )


def _by_depth(plan: Plan) -> list[list[SegmentPlan]]:
    """Segments grouped so each group reads only earlier groups' members (fewer layers)."""
    depth: dict[str, int] = {}
    for s in plan.segments:  # dependency order: references are already placed
        refs = [n for n in depth if segment_col(n) in ir.columns(s.rule)]
        depth[s.name] = 1 + max((depth[n] for n in refs), default=-1)
    groups: list[list[SegmentPlan]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for s in plan.segments:
        groups[depth[s.name]].append(s)
    return groups


Layer = list[tuple[str, ir.Expr]]


def _innermost_peer_sums(e: ir.Expr, found: dict[ir.PeerSum, str]) -> bool:
    """Record the PeerSums under `e` that contain no other; True when `e` holds any."""
    inner = [_innermost_peer_sums(c, found) for c in ir.children(e)]
    if isinstance(e, ir.PeerSum):
        if not any(inner) and e not in found:
            found[e] = ""
        return True
    return any(inner)


def hoist_peer_sums(layers: list[Layer]) -> list[Layer]:
    """Each account window sum as a column of its own, computed in a layer before the one
    that reads it (innermost first): SQL cannot nest a window in another window or in a
    `top` ranking, and a column is what every dialect reads the same way."""
    out: list[Layer] = []
    made = 0
    for layer in layers:
        while True:
            found: dict[ir.PeerSum, str] = {}
            for _, e in layer:
                _innermost_peer_sums(e, found)
            if not found:
                break
            for node in found:
                found[node] = f"__peer{made}"
                made += 1

            def to_col(node: ir.Expr, found: dict[ir.PeerSum, str] = found) -> ir.Expr | None:
                name = found.get(node) if isinstance(node, ir.PeerSum) else None
                return None if name is None else ir.Col(name)

            out.append([(name, node) for node, name in found.items()])
            layer = [(n, ir.transform(e, to_col)) for n, e in layer]
        out.append(layer)
    return out


def build_query(
    plan: Plan,
    dialect: str,
    inputs: Inputs,
    outputs: list[tuple[str, str]],
    file: str = "",
) -> exp.Select:
    """The plan as one SELECT: `outputs` are (plan column, output name) pairs after the key."""
    t = Translator(dialect, file, inputs.in_list, inputs.in_previous, inputs.held_before)
    key = plan.key
    q = _select(exp.Star()).from_("l0", copy=False)
    ctes: list[tuple[str, exp.Expr]] = []
    reads = {r.name: r for r in plan.sources}
    srcs: dict[str, str] = {}
    for i, r in enumerate(plan.sources):
        srcs[r.name] = f"src_{i}"
        ctes.append((srcs[r.name], source_cte(plan, r, t, inputs)))
    joins: list[str] = []
    for i, s in enumerate(plan.scans):
        ctes.append((f"scan_{i}", scan_cte(s, reads[s.source], srcs[s.source], t, key)))
        joins.append(f"scan_{i}")
    for i, p in enumerate(plan.pooled):
        ctes.append((f"pool_{i}", pooled_cte(p, reads, srcs, t, key)))
        joins.append(f"pool_{i}")
    for i, ps in enumerate(plan.per_scans):
        ctes.append((f"per_{i}", per_cte(ps, reads, srcs, t, key)))
        joins.append(f"per_{i}")
    for i, sp in enumerate(plan.sequences):
        ctes += sequence_ctes(sp, i, reads, srcs, t, key)
        joins.append(f"seq{i}")
    # l0: contacts, then each scan's columns by a left join (no rows: nulls, filled below)
    contacts = exp.Subquery(this=inputs.contacts, alias=exp.TableAlias(this=exp.to_identifier("c")))
    l0 = _select(exp.Column(this=exp.Star(), table=exp.to_identifier("c"))).from_(
        contacts, copy=False
    )
    for j in joins:
        l0 = l0.join(
            exp.to_table(j).as_(j),
            on=exp.EQ(this=col(key, "c"), expression=col(key, j)),
            join_type="left",
        )
    named: list[str] = []
    for s in plan.scans:
        for a in s.aggregates:
            named += [f"{a.name}@sum", f"{a.name}@cnt"] if a.reduce == "avg" else [a.name]
    for p in plan.pooled:
        named += list(p.names)
    for ps in plan.per_scans:
        named += [a.name for a in ps.aggregates]
    done = [sp.name for sp in plan.sequences]  # completion times: not partials, kept as named
    # Partials are named like the aggregates they make: suffixed here so the aggregate
    # layer's columns replace nothing.
    part = {n: f"{n}@p" for n in named}
    kept = [exp.alias_(col(n), ident(part[n]), quoted=True, copy=False) for n in named]
    kept += [exp.alias_(col(n), ident(n), quoted=True, copy=False) for n in done]
    l0 = l0.select(*kept, append=True) if kept else l0
    ctes.append(("l0", l0))
    layers: list[list[tuple[str, ir.Expr]]] = []
    if plan.aggregates:
        layers.append(list(plan.aggregates))
    if plan.scores:
        layers.append(list(plan.scores))
    for group in _by_depth(plan):
        layers += [
            [(rule_col(s.name), s.rule) for s in group],
            [(base_col(s.name), s.base) for s in group],
            [(segment_col(s.name), s.member) for s in group],
        ]
    if plan.details:
        layers.append(list(plan.details))
    first = layers[0] if plan.aggregates else None
    layers = hoist_peer_sums(layers)
    prev = "l0"
    for i, layer in enumerate(layers, start=1):
        t.rename = part if layer is first else {}
        cols = [exp.alias_(t.expr(e), ident(n), quoted=True, copy=False) for n, e in layer]
        ctes.append((f"l{i}", _select(exp.Star(), *cols).from_(prev, copy=False)))
        prev = f"l{i}"
    final: list[exp.Expr] = [exp.alias_(col(key), key, quoted=True, copy=False)]
    final += [exp.alias_(col(n), out, quoted=True, copy=False) for n, out in outputs]
    q = _select(*final).from_(prev, copy=False).order_by(col(key), copy=False)
    for name, body in ctes:
        q = q.with_(name, as_=body, copy=False)
    return q
