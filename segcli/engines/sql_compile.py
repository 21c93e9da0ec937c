"""`segcli compile`: a plan as SQL text for a warehouse (SPEC §3.1).

Sources: for DuckDB, each source is read by path (`read_parquet` / `read_csv` over its
files) and its columns converted as segcli reads them (CSV text parsed by the column's
segcli type, naive timestamps in the project timezone, declared types cast). For the other
dialects each source is a table named like the source, whose columns already have their
types (timestamps as instants). List files (`from_file`, `include_file`, `exclude_file`) are
inlined as key lists. No state is read: every kind is computed as dynamic.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
from sqlglot import exp

from segcli.engines.catalog import Catalog, file_format
from segcli.engines.contacts import read_list
from segcli.engines.polars import type_name
from segcli.engines.sql import DIALECTS, dtype, fn, ident, lit, local_midnight, sql_type
from segcli.engines.sql_query import Inputs, build_query
from segcli.errors import UsageError
from segcli.planning.planner import Plan, segment_col
from segcli.planning.scoring import score_col
from segcli.spec import model as m

_AWARE = r"([zZ]|[+-]\d{2}:?\d{2})$"


def _csv_value(c: exp.Expr, typ: str, tz: str) -> exp.Expr:
    """DuckDB: a CSV text cell as segcli reads it (unparseable values become null)."""
    v = exp.Trim(this=c)
    if typ in ("int", "float", "date"):
        return exp.TryCast(this=v, to=sql_type(typ, "duckdb"))
    if typ == "bool":
        low = exp.Lower(this=v)
        t, f = exp.Literal.string("true"), exp.Literal.string("false")
        return (
            exp.Case()
            .when(exp.EQ(this=low, expression=t), exp.true())
            .when(exp.EQ(this=low, expression=f), exp.false())
        )
    if typ == "datetime":
        aware = fn("regexp_matches", v, exp.Literal.string(_AWARE))
        naive = local_midnight(exp.TryCast(this=v, to=dtype("TIMESTAMP")), tz, "duckdb")
        return (
            exp.Case()
            .when(aware, exp.TryCast(this=v, to=sql_type("datetime", "duckdb")))
            .else_(naive)
        )
    return c


def _duckdb_source(spec: m.Spec, catalog: Catalog, name: str, columns: list[str]) -> exp.Select:
    """DuckDB: a source read from its files with its columns typed as segcli types them."""
    files = catalog.files(name)
    paths = exp.Array(expressions=[exp.Literal.string(str(f.resolve())) for f in files])
    types = {c: type_name(t) for c, t in catalog.schema(name).items()}
    declared = dict(catalog.sources[name].columns)
    items: list[exp.Expr] = []
    if file_format(files[0]) == "csv":
        opts = [exp.EQ(this=exp.var(k), expression=exp.true()) for k in ("header", "all_varchar")]
        rel = exp.Table(this=fn("read_csv", paths, *opts))
        for c in columns:
            value = _csv_value(exp.column(c, quoted=True), types.get(c, "str"), spec.timezone)
            items.append(exp.alias_(value, c, quoted=True, copy=False))
    else:
        rel = exp.Table(this=fn("read_parquet", paths))
        raw = pl.read_parquet_schema(files[0])
        for c in columns:
            e: exp.Expr = exp.column(c, quoted=True)
            dtype = raw.get(c)
            if c in declared:
                e = exp.TryCast(this=e, to=sql_type(declared[c], "duckdb"))
            elif isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
                e = local_midnight(e, spec.timezone, "duckdb")
            items.append(exp.alias_(e, c, quoted=True, copy=False))
    return exp.select(*items).from_(rel, copy=False)


def contacts_relation(
    spec: m.Spec,
    plan: Plan,
    source: Callable[[str, list[str]], exp.Select],
    key_type: str,
    key_types: dict[str, str],
    dialect: str,
) -> exp.Select:
    """The per-contact relation: contacts' columns and relation-one SOURCE.COL, by ident."""
    key = plan.key
    own = [
        c for c in plan.contact_columns if "." not in c or c.split(".", 1)[0] not in spec.sources
    ]
    items: list[exp.Expr] = [
        exp.alias_(exp.column(key, "c", quoted=True), ident(key), quoted=True, copy=False)
    ]
    items += [
        exp.alias_(exp.column(c, "c", quoted=True), ident(c), quoted=True, copy=False) for c in own
    ]
    q = exp.select(*items).from_(source("contacts", [key, *own]).subquery("c"), copy=False)
    for i, (name, src) in enumerate(spec.sources.items()):
        if name == "contacts" or src.relation != "one":
            continue
        wanted = [c for c in plan.contact_columns if c.startswith(f"{name}.")]
        raw = [c.split(".", 1)[1] for c in wanted]
        alias = f"r{i}"
        rkey: exp.Expr = exp.column(src.key, alias, quoted=True)
        if key_types.get(name) != key_type:
            rkey = exp.TryCast(this=rkey, to=sql_type(key_type, dialect))
        on = exp.EQ(this=exp.column(key, "c", quoted=True), expression=rkey)
        q = q.join(
            source(name, [src.key, *raw]).subquery(alias), on=on, join_type="left", copy=False
        )
        q = q.select(
            *(
                exp.alias_(exp.column(r, alias, quoted=True), ident(w), quoted=True, copy=False)
                for r, w in zip(raw, wanted, strict=True)
            ),
            append=True,
            copy=False,
        )
    return q


def compile_plan(
    spec: m.Spec, catalog: Catalog, plan: Plan, dialect: str, wanted: list[str] | None = None
) -> str:
    """The plan as SQL text in `dialect`: key, one boolean column per wanted segment, one
    float column per model."""
    if dialect not in DIALECTS:
        raise UsageError(f"unknown dialect {dialect!r}: use one of {', '.join(DIALECTS)}")
    types = {n: {c: type_name(t) for c, t in catalog.schema(n).items()} for n in spec.sources}
    key_type = types["contacts"][plan.key]
    key_types = {n: types[n].get(s.key, "other") for n, s in spec.sources.items()}

    def source(name: str, columns: list[str]) -> exp.Select:
        given = spec.sources[name].table
        if given is not None:  # a `table:` source is named by its table, in every dialect
            table = exp.to_table(given)
        elif dialect == "duckdb" and spec.sources[name].uri is None:
            return _duckdb_source(spec, catalog, name, columns)
        else:
            table = exp.Table(this=exp.to_identifier(name, quoted=True))
        return exp.select(*(exp.column(c, quoted=True) for c in columns)).from_(table, copy=False)

    key_dtype = catalog.schema("contacts")[plan.key]

    def in_list(item: exp.Expr, path: str) -> exp.Expr:
        keys = read_list(spec, path, key_dtype).sort().to_list()
        if not keys:
            return exp.false()
        return exp.In(this=item, expressions=[lit(k, dialect) for k in keys])

    contacts = contacts_relation(spec, plan, source, key_type, key_types, dialect)
    inputs = Inputs(source, lambda name: False, contacts, key_type, key_types, in_list)
    names = wanted or list(spec.segments)
    outputs = [(segment_col(n), n) for n in names]
    outputs += [(score_col(model, plan.as_of, plan.as_of), model) for model in plan.models]
    query = build_query(plan, dialect, inputs, outputs, spec.file)
    header = f"-- segcli compile: {dialect}, as of {plan.as_of.isoformat()}"
    if dialect in ("spark", "snowflake"):
        header += "\n-- run with the session time zone set to UTC (docs/engines.md)"
    return header + "\n" + query.sql(dialect, pretty=True, copy=False) + "\n"
