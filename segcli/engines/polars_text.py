"""Text tests shared by the Polars engine and the CSV reader."""

from __future__ import annotations

import polars as pl

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
