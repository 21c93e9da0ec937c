"""The DuckDB engine: the plan's SQL (segcli.engines.sql_query) run in-process on DuckDB.

Rows are read by the same catalog as the Polars engine (segcli.engines.catalog): CSV parsing,
declared types and naive timestamps read in the project timezone are then one code path
for both engines, so they cannot disagree on what a file says. Only the needed columns of
each source are read, streamed into a scratch Parquet file that DuckDB scans; DuckDB does
every filter, aggregate, join and per-contact expression within its memory cap. Contacts
(with relation-one columns), list files and the previous sets of semi_dynamic and static
segments are registered as DuckDB relations. The result is the same Evaluation frame the
Polars engine produces.
"""

from __future__ import annotations

import time
from typing import Any

import polars as pl
from sqlglot import exp

from segcli.engines.catalog import Catalog, scratch_file, short_error
from segcli.engines.contacts import load_contacts, read_list
from segcli.engines.history import HIST_KEY, Histories, stored_values, with_segment_history
from segcli.engines.polars import Evaluation, type_name
from segcli.engines.sql import fn, ident
from segcli.engines.sql_query import ROW, Inputs, build_query, held_in, result_columns
from segcli.errors import DataError, UsageError
from segcli.planning.needs import source_need
from segcli.planning.planner import Plan

MEMORY_LIMIT = "1200MB"  # DuckDB's buffer memory; the process adds Polars' and Python's


def connect() -> Any:
    """A DuckDB connection in UTC; UsageError naming the extra when DuckDB is missing."""
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - duckdb is in the dev extras
        raise UsageError("the duckdb engine needs DuckDB: pip install 'segcli[duckdb]'") from exc
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # SPEC §6: peak memory under 2 GiB. DuckDB's default limit is 80% of the machine's
    # memory; capped here, its aggregates and joins spill to the scratch folder instead.
    # Rows need no order until the final ORDER BY.
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = '{scratch_file('.duckdb-spill')}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def con_errors(con: Any) -> type[Exception]:
    """DuckDB's error base class (duckdb is imported lazily, by `connect`)."""
    import duckdb

    return duckdb.Error


def _table(name: str) -> exp.Select:
    return exp.select("*").from_(exp.to_table(name))


def unknown_list_keys(rel: str, keys: pl.Series, known: pl.Series) -> list[str]:
    """The warning for list-file keys that are not contacts (as the Polars engine says it)."""
    unknown = keys.filter(~keys.is_in(known.implode()))
    if not len(unknown):
        return []
    shown = ", ".join(str(v) for v in unknown.head(5).to_list())
    return [f"{rel}: {len(unknown)} key(s) not in contacts, ignored: {shown}"]


def execute(
    plan: Plan,
    catalog: Catalog,
    previous: dict[str, pl.Series | None] | None = None,
    histories: Histories | None = None,
) -> Evaluation:
    """Run a plan on DuckDB; the same Evaluation as segcli.engines.polars.execute."""
    t0 = time.perf_counter()
    assert plan.spec is not None
    spec = plan.spec
    key = plan.key
    con = connect()
    contacts = load_contacts(spec, catalog, set(plan.contact_columns))
    key_dtype = contacts[key].dtype
    contacts = with_segment_history(contacts, plan, histories)
    con.register("__contacts", contacts.rename({c: ident(c) for c in contacts.columns}).to_arrow())
    warnings: list[str] = []
    lists: dict[str, str] = {}
    for i, rel in enumerate(plan.lists):
        keys = read_list(spec, rel, key_dtype)
        warnings += unknown_list_keys(rel, keys, contacts[key])
        lists[rel] = f"__list_{i}"
        con.register(lists[rel], pl.DataFrame({"k": keys}).to_arrow())
    prev: dict[str, str] = {}
    for i, (name, series) in enumerate((previous or {}).items()):
        if series is not None:
            prev[name] = f"__prev_{i}"
            con.register(prev[name], pl.DataFrame({"k": series.cast(key_dtype)}).to_arrow())
    stored: dict[str, str] = {}
    for i, (column, values) in enumerate(stored_values(plan, histories, key_dtype).items()):
        stored[column] = f"__stored_{i}"
        named = values.rename({column: ident(column)}) if column != HIST_KEY else values
        con.register(stored[column], named.to_arrow())
    dedupe = {r.name for r in plan.sources if r.dedupe}

    reads = {r.name: r for r in plan.sources}

    def source(name: str, columns: list[str]) -> exp.Select:
        src = catalog.sources[name]
        # A CSV event source is converted with only the rows and columns the plan reads
        # (segcli.planning.needs), as on the Polars engine.
        need = source_need(plan, reads[name]) if name in reads else None
        if need is not None and not set(columns) <= set(need.columns):
            need = None
        lf = catalog.frame(name, need)
        if name in dedupe:
            lf = lf.with_row_index(ROW)
            columns = [*columns, ROW]
        lf = lf.select(columns).with_columns(pl.col(src.key).cast(key_dtype, strict=False))
        # Streamed by Polars into a scratch Parquet file that DuckDB scans (as often as the
        # query needs): memory stays flat in the source's rows, where collecting it into
        # Arrow held every needed column of every row at once (8 GiB at 50M rows).
        path = scratch_file()
        try:
            lf.sink_parquet(path, compression="lz4")
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"source '{name}': cannot read: {short_error(exc)}") from None
        except OSError as exc:
            raise DataError(f"source '{name}': cannot stage its rows: {exc}") from None
        files = exp.Array(expressions=[exp.Literal.string(str(path))])
        return exp.select("*").from_(exp.Table(this=fn("read_parquet", files)))

    def in_list(item: exp.Expr, path: str) -> exp.Expr:
        return exp.In(this=item, query=exp.select("k").from_(lists[path]).subquery())

    def in_previous(item: exp.Expr, segment: str) -> exp.Expr:
        if segment not in prev:
            return exp.false()
        return exp.In(this=item, query=exp.select("k").from_(prev[segment]).subquery())

    key_type = type_name(key_dtype)
    inputs = Inputs(
        source,
        lambda name: name in dedupe,
        _table("__contacts"),
        key_type,
        {r.name: key_type for r in plan.sources},
        in_list,
        in_previous,
        held_in(stored),
    )
    query = build_query(plan, "duckdb", inputs, result_columns(plan), spec.file)
    try:
        table = con.sql(query.sql("duckdb", copy=False)).to_arrow_table()
    except con_errors(con) as exc:
        raise DataError(f"evaluating the plan on DuckDB failed: {exc}") from exc
    finally:
        con.close()
    return Evaluation.of_rows(table, plan, key_dtype, warnings, time.perf_counter() - t0)
