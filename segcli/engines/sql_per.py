"""A `PerScan` (per-value grouping, SPEC §2.6) as one SQL common table expression.

    SELECT key, SUM(CASE WHEN <value passes> THEN 1 ELSE 0 END) AS agg, ...
    FROM (SELECT key, value, MAX(CASE WHEN flag THEN 1 ELSE 0 END) = 1 AS flag, ...
          FROM (<each source: prefilters, non-null value, flags, selected rows>
                UNION ALL ...) u
          GROUP BY key, value) g
    GROUP BY key

MAX over CASE rather than BOOL_OR, and the comparison with 1 to make the group's flag a
boolean again, are written the same way in every dialect.
"""

from __future__ import annotations

from sqlglot import exp

from segcli.engines.sql import Translator, col, fn, ident, lit, sql_type, unsupported
from segcli.planning.per import LISTED, PerAggregate, PerScan
from segcli.planning.planner import SourceRead

PER_VALUE = "__per_value"


def _select(*items: exp.Expr) -> exp.Select:
    return exp.Select(expressions=list(items))


def _one_if(cond: exp.Expr) -> exp.Expr:
    return exp.Case().when(cond, exp.Literal.number(1)).else_(exp.Literal.number(0))


def per_reduction(a: PerAggregate, t: Translator) -> exp.Expr:
    """The number of passing values, or (explain --contact, DuckDB only) the first of them
    as text in text order, joined by ", "; null when none passes."""
    passes = t.expr(a.passes)
    if a.key.agg != "values":
        return exp.Sum(this=_one_if(passes))
    if t.dialect != "duckdb":
        raise unsupported(t.dialect, "listing the passing values of a per condition", t.file)
    value = exp.cast(col(PER_VALUE), sql_type("str", t.dialect))
    listed = exp.Filter(this=fn("list", value), expression=exp.Where(this=passes))
    first = fn("list_slice", fn("list_sort", listed), lit(1, "duckdb"), lit(LISTED, "duckdb"))
    joined = fn("array_to_string", first, exp.Literal.string(", "))
    any_passes = exp.EQ(this=exp.Max(this=_one_if(passes)), expression=exp.Literal.number(1))
    return exp.Case().when(any_passes, joined)


def per_cte(
    ps: PerScan, reads: dict[str, SourceRead], srcs: dict[str, str], t: Translator, key: str
) -> exp.Select:
    """The scan's passing values counted per contact (one row per contact with any row)."""
    pieces: list[exp.Select] = []
    for part in ps.parts:
        read = reads[part.source]
        flags = [exp.alias_(t.expr(e), ident(n), quoted=True) for n, e in part.flags]
        rows = _select(exp.Star(), *flags).from_(srcs[part.source], copy=False)
        if part.types is not None and read.type is not None:
            typ = exp.cast(col(read.type), sql_type("str", t.dialect))
            values = [exp.Literal.string(x) for x in part.types]
            rows = rows.where(exp.In(this=typ, expressions=values), copy=False)
        if part.since is not None and read.time is not None:
            since = exp.GTE(this=col(read.time), expression=lit(part.since, t.dialect))
            rows = rows.where(since, copy=False)
        present = exp.Not(this=exp.Is(this=col(ps.column), expression=exp.null()))
        rows = rows.where(present, copy=False)
        picked: list[exp.Expr] = [
            exp.alias_(col(read.key), ident(key), quoted=True),
            exp.alias_(col(ps.column), PER_VALUE, quoted=True),
            *(col(n) for n in ps.flags),
        ]
        any_selected = exp.or_(*(col(n) for n in ps.selected))
        piece = _select(*picked).from_(rows.subquery("f"), copy=False).where(any_selected)
        pieces.append(piece)
    union: exp.Expr = pieces[0]
    for piece in pieces[1:]:
        union = exp.union(union, piece, distinct=False)
    any_flags = [
        exp.alias_(
            exp.EQ(this=exp.Max(this=_one_if(col(n))), expression=exp.Literal.number(1)),
            ident(n),
            quoted=True,
        )
        for n in ps.flags
    ]
    groups = (
        _select(col(key), col(PER_VALUE), *any_flags)
        .from_(exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("u"))))
        .group_by(col(key), col(PER_VALUE), copy=False)
    )
    counts = [exp.alias_(per_reduction(a, t), ident(a.name), quoted=True) for a in ps.aggregates]
    return (
        _select(col(key), *counts)
        .from_(groups.subquery("g"), copy=False)
        .group_by(col(key), copy=False)
    )
