"""Sequences on the Polars engine (SPEC §2.6; the plan's shape: segcli.planning.sequences).

One pass per source computes every sequence's step flags and keeps only the rows that match
a step (or a `then_not` step) of some sequence; those rows are collected once, beside the
plan's scans (`sequence_passes`). Each sequence
then pools its rows by time and chains its steps with as-of joins (sorted work on the
matching rows only, no Python loop over rows), giving per contact the earliest time the
sequence completed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import polars as pl

from segcli.engines.polars_text import read_by_any
from segcli.planning import ir
from segcli.planning.needs import row_prefilter
from segcli.planning.planner import Plan, SourceRead
from segcli.planning.sequences import SequencePlan

T = "__t"  # a row's time
PREV = "__p"  # the latest reached row of the previous step strictly before it
NEXT = "__n"  # the first then_not row strictly after the last step
UTC_DT = pl.Datetime("us", "UTC")

Translate = Callable[[ir.Expr], pl.Expr]


def _flag(n: int, step: int | str) -> str:
    return f"__q{n}s{step}"


def _same(n: int, j: int) -> str:
    return f"__q{n}c{j}"


def _source_pass(
    source: str,
    seqs: list[SequencePlan],
    read: SourceRead,
    frame: pl.LazyFrame,
    key: str,
    translate: Translate,
) -> pl.LazyFrame:
    """One pass over a source: every sequence's flags, rows matching any of them only."""
    assert read.time is not None  # validated: sequences need time
    cols: dict[str, pl.Expr] = {}
    flags: list[str] = []
    raw: list[ir.Expr] = []
    for n, sp in enumerate(seqs):
        for s, step_flags in sp.steps:
            if s == source:
                for i, f in enumerate(step_flags):
                    cols[_flag(n, i)] = translate(f)
                    flags.append(_flag(n, i))
                    raw.append(f)
                cols.update({_same(n, j): pl.col(c) for j, c in enumerate(sp.same)})
        for s, f in sp.then_not:
            if s == source:
                cols[_flag(n, "x")] = translate(f)
                flags.append(_flag(n, "x"))
                raw.append(f)
    lf = frame.filter(pl.col(read.time).is_not_null())
    # The rows some flag can match, as filters on the type and time columns alone: they reach
    # the Parquet reader, which skips row groups (and files) outside every window.
    wanted = row_prefilter(raw, read)
    if raw and all(t is not None or s is not None for t, s in wanted):
        lf = lf.filter(read_by_any(wanted, read.type, read.time))
    lf = lf.with_columns([e.alias(c) for c, e in cols.items()])
    lf = lf.filter(pl.any_horizontal([pl.col(c) for c in flags]))
    keep = [pl.col(read.key).alias(key), pl.col(read.time).cast(UTC_DT).alias(T)]
    return lf.select([*keep, *(pl.col(c) for c in cols)])


def _chain(sp: SequencePlan, n: int, parts: dict[str, pl.DataFrame], key: str) -> pl.DataFrame:
    """Per contact, the earliest completion time of sequence `n`."""
    k = len(sp.cond.steps)
    same = [_same(n, j) for j in range(len(sp.same))]
    steps = [_flag(n, i) for i in range(k)]
    pieces = [
        parts[s].select(key, T, *same, *steps).filter(pl.any_horizontal(steps)) for s, _ in sp.steps
    ]
    rows = pl.concat(pieces, how="vertical_relaxed")
    if same:
        rows = rows.drop_nulls(same)
    by = [key, *same]
    reached = rows.filter(pl.col(steps[0])).select(*by, T)
    for i in range(1, k):
        cand = rows.filter(pl.col(steps[i])).select(*by, T).sort(T)
        prev = reached.select(*by, pl.col(T).alias(PREV)).sort(PREV)
        joined = cand.join_asof(
            prev,
            left_on=T,
            right_on=PREV,
            by=by,
            strategy="backward",
            allow_exact_matches=False,  # rows at the same instant do not follow each other
            check_sortedness=False,
        )
        ok = pl.col(PREV).is_not_null()
        if sp.max_gap_s is not None:
            ok &= (pl.col(T) - pl.col(PREV)) <= pl.lit(timedelta(seconds=sp.max_gap_s))
        reached = joined.filter(ok).select(*by, T)
    done = reached.select(key, T)
    if sp.then_not:
        assert sp.wait_s is not None
        wait = pl.lit(timedelta(seconds=sp.wait_s))
        done = done.filter(pl.col(T) + wait <= pl.lit(sp.as_of, dtype=UTC_DT)).sort(T)
        flag = _flag(n, "x")
        blocks = pl.concat(
            [
                parts[s].filter(pl.col(flag)).select(key, pl.col(T).alias(NEXT))
                for s, _ in sp.then_not
            ],
            how="vertical_relaxed",
        ).sort(NEXT)
        done = done.join_asof(
            blocks,
            left_on=T,
            right_on=NEXT,
            by=key,
            strategy="forward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        # A then_not row exactly at tk + wait blocks: the interval is (tk, tk + wait].
        done = done.filter(pl.col(NEXT).is_null() | (pl.col(NEXT) > pl.col(T) + wait))
    return done.group_by(key).agg(pl.col(T).min().alias(sp.name))


def sequence_passes(
    plan: Plan, frames: dict[str, pl.LazyFrame], key: str, translate: Translate
) -> dict[str, pl.LazyFrame]:
    """Per source some sequence reads, the query of its rows that match a step (to be
    collected with the plan's other queries, then given to `sequence_frames`)."""
    reads = {r.name: r for r in plan.sources}
    seqs = list(plan.sequences)
    sources = list(dict.fromkeys(s for sp in seqs for s in sp.sources))
    return {s: _source_pass(s, seqs, reads[s], frames[s], key, translate) for s in sources}


def sequence_frames(plan: Plan, parts: dict[str, pl.DataFrame], key: str) -> list[pl.DataFrame]:
    """Each sequence's per-contact completion time (key, column named like the sequence),
    from the collected `sequence_passes`."""
    return [_chain(sp, n, parts, key) for n, sp in enumerate(plan.sequences)]
