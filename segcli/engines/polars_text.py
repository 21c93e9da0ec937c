"""Row tests shared by the Polars engine and the CSV reader: text membership, and whether a
row is one some reader of a source reads."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from segcli.engines.csv_stream import UTC_DT

# Up to this many texts, a membership test is a chain of equalities: string-view equality
# is a 16-byte compare, 2x faster than is_in's hash probe (which was 13% of a benchmark
# run's CPU; docs/performance.md).
_EQ_CHAIN = 8


def text_in(v: pl.Expr, values: list[str]) -> pl.Expr:
    """Whether text `v` is one of `values` (null stays null)."""
    if 0 < len(values) <= _EQ_CHAIN:
        tests = [v == x for x in values]
        return tests[0] if len(tests) == 1 else pl.any_horizontal(tests)
    return v.is_in(pl.Series(values, dtype=pl.String).implode())


def read_by_any(
    readers: list[tuple[tuple[str, ...] | None, datetime | None]],
    type_col: str | None,
    time_col: str | None,
) -> pl.Expr:
    """Whether a row is read by one of `readers`: its type among the reader's types (None: any
    type) and its time at or after the reader's start (None: all of history). Only the type
    and time columns are read, so the filter reaches the reader of the file. No readers: no
    row."""
    terms: list[pl.Expr] = []
    for types, since in readers:
        term = pl.lit(True)
        if types is not None and type_col is not None:
            term = text_in(pl.col(type_col).cast(pl.String), list(types))
        if since is not None and time_col is not None:
            term = term & (pl.col(time_col) >= pl.lit(since, dtype=UTC_DT))
        terms.append(term)
    if not terms:
        return pl.lit(False)
    found = pl.any_horizontal(terms).fill_null(False)
    starts = [since for _, since in readers]
    if time_col is not None and all(s is not None for s in starts):
        # Implied by the terms, but said alone, at the top: the Parquet reader skips the files
        # and row groups older than every reader's start by their statistics, which it cannot
        # do through the OR above (a 30-day sequence pass read all of history without it).
        earliest = min(s for s in starts if s is not None)
        found = (pl.col(time_col) >= pl.lit(earliest, dtype=UTC_DT)) & found
    return found
