"""Sequences in SQL (SPEC §2.6), in the shape segcli.planning.sequences describes.

Per sequence, as common table expressions:

    seq{n}_rows  every visible row of its sources that matches a step or the then_not step:
                 key, time, the time in microseconds, the `same` values, one flag per step
    seq{n}_r0    the rows of step 1 (with non-null `same` values): each is reached
    seq{n}_w{i}  step i's candidates and step i-1's reached rows, pooled; per candidate, the
                 latest reached row strictly before it (a window over the rows before it,
                 ordered by time with candidates first among equal times, so a row at the
                 same instant never precedes it)
    seq{n}_r{i}  the candidates with such a row, at most `max_gap` before them
    seq{n}_x     with then_not: reached last-step rows whose wait is over, pooled with the
                 then_not rows; per reached row, the first then_not row strictly after it
    seq{n}       per contact, the earliest time the sequence completed

The windows are plain ROWS frames, which every dialect has, so nothing here depends on an
as-of join; the work stays on the rows that match a step.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from segcli.engines.sql import Translator, col, epoch_us, ident, lit, sql_type
from segcli.planning import ir
from segcli.planning.planner import SourceRead
from segcli.planning.sequences import SequencePlan

T = "__t"  # a row's time
E = "__e"  # the row's time in microseconds since the epoch
SIDE = "__side"  # in a pooled window: which of the two kinds of row this is
PE = "__pe"  # the time (us) of a row that may precede (or block), null on the others
P = "__p"  # the window's answer: the latest preceding (or first following) such time


def _flag(i: int | str) -> str:
    return f"__s{i}"


def _same(j: int) -> str:
    return f"__c{j}"


def _select(*items: exp.Expr) -> exp.Select:
    return exp.Select(expressions=list(items))


def _num(n: int) -> exp.Expr:
    return exp.Literal.number(n)


def _union(pieces: list[exp.Select]) -> exp.Expr:
    out: exp.Expr = pieces[0]
    for piece in pieces[1:]:
        out = exp.union(out, piece, distinct=False)
    return out


def _from(body: exp.Expr, alias: str) -> exp.Subquery:
    return exp.Subquery(this=body, alias=exp.TableAlias(this=exp.to_identifier(alias)))


def needed_columns(sp: SequencePlan, source: str) -> set[str]:
    """The raw columns of `source` that a sequence's flags and `same` read."""
    cols: set[str] = set(sp.same) if any(s == source for s, _ in sp.steps) else set()
    for s, flags in sp.steps:
        if s == source:
            for f in flags:
                cols |= ir.columns(f)
    for s, f in sp.then_not:
        if s == source:
            cols |= ir.columns(f)
    return cols


def _rows(
    sp: SequencePlan, reads: dict[str, SourceRead], srcs: dict[str, str], t: Translator, key: str
) -> exp.Expr:
    k = len(sp.cond.steps)
    pieces: list[exp.Select] = []
    for source in sp.sources:
        read = reads[source]
        assert read.time is not None  # validated: sequences need time
        step_flags = dict(sp.steps).get(source)
        blocker = dict(sp.then_not).get(source)
        items: list[exp.Expr] = [
            exp.alias_(col(read.key), ident(key), quoted=True, copy=False),
            exp.alias_(col(read.time), T, quoted=True, copy=False),
            exp.alias_(epoch_us(col(read.time), t.dialect), E, quoted=True, copy=False),
        ]
        for j, c in enumerate(sp.same):
            value: exp.Expr = col(c) if step_flags is not None else exp.null()
            items.append(exp.alias_(value, _same(j), quoted=True, copy=False))
        flags: list[exp.Expr] = []
        for i in range(k):
            f = t.expr(step_flags[i]) if step_flags is not None else exp.false()
            flags.append(f)
            items.append(exp.alias_(f, _flag(i), quoted=True, copy=False))
        if sp.then_not:
            f = t.expr(blocker) if blocker is not None else exp.false()
            flags.append(f)
            items.append(exp.alias_(f, _flag("x"), quoted=True, copy=False))
        any_flag = exp.or_(*(exp.paren(f) for f in flags), copy=False)
        has_time = exp.Not(this=exp.Is(this=col(read.time), expression=exp.null()))
        pieces.append(
            _select(*items)
            .from_(srcs[source], copy=False)
            .where(exp.and_(has_time, any_flag, copy=False))
        )
    return _union(pieces)


def _window(fn_cls: type[exp.Func], by: Sequence[exp.Expr], following: bool) -> exp.Window:
    """MAX/MIN of PE over the rows strictly before (or after) this one in (E, SIDE) order."""
    spec = (
        exp.WindowSpec(
            kind="ROWS",
            start=_num(1),
            start_side="FOLLOWING",
            end="UNBOUNDED",
            end_side="FOLLOWING",
        )
        if following
        else exp.WindowSpec(
            kind="ROWS",
            start="UNBOUNDED",
            start_side="PRECEDING",
            end=_num(1),
            end_side="PRECEDING",
        )
    )
    order = exp.Order(expressions=[exp.Ordered(this=col(E)), exp.Ordered(this=col(SIDE))])
    return exp.Window(this=fn_cls(this=col(PE)), partition_by=list(by), order=order, spec=spec)


def sequence_ctes(
    sp: SequencePlan,
    n: int,
    reads: dict[str, SourceRead],
    srcs: dict[str, str],
    t: Translator,
    key: str,
) -> list[tuple[str, exp.Expr]]:
    """The CTEs of sequence `n`; the last, named `seq{n}`, has (key, sp.name) per contact
    that completed it."""
    k = len(sp.cond.steps)
    rows = f"seq{n}_rows"
    ctes: list[tuple[str, exp.Expr]] = [(rows, _rows(sp, reads, srcs, t, key))]
    same = [col(_same(j)) for j in range(len(sp.same))]
    by = [col(key), *same]
    carried = [col(key), *same, col(T), col(E)]
    same_known = [exp.Not(this=exp.Is(this=c, expression=exp.null())) for c in same]
    big = sql_type("int", t.dialect)

    def step_rows(i: int) -> exp.Select:
        return (
            _select(*carried)
            .from_(rows, copy=False)
            .where(exp.and_(col(_flag(i)), *same_known, copy=False))
        )

    reached = f"seq{n}_r0"
    ctes.append((reached, step_rows(0)))
    for i in range(1, k):
        cand = step_rows(i).select(
            exp.alias_(_num(0), SIDE, quoted=True, copy=False),
            exp.alias_(exp.cast(exp.null(), big, copy=False), PE, quoted=True),
            append=True,
            copy=False,
        )
        prev = _select(
            *carried,
            exp.alias_(_num(1), SIDE, quoted=True, copy=False),
            exp.alias_(col(E), PE, quoted=True, copy=False),
        ).from_(reached, copy=False)
        pooled = _select(
            exp.Star(),
            exp.alias_(_window(exp.Max, by, following=False), P, quoted=True, copy=False),
        ).from_(_from(_union([cand, prev]), "u"), copy=False)
        ctes.append((f"seq{n}_w{i}", pooled))
        ok: list[exp.Expr] = [
            exp.EQ(this=col(SIDE), expression=_num(0)),
            exp.Not(this=exp.Is(this=col(P), expression=exp.null())),
        ]
        if sp.max_gap_s is not None:
            gap = exp.Sub(this=col(E), expression=col(P))
            ok.append(exp.LTE(this=gap, expression=_num(sp.max_gap_s * 1_000_000)))
        reached = f"seq{n}_r{i}"
        ctes.append(
            (reached, _select(*carried).from_(f"seq{n}_w{i}").where(exp.and_(*ok, copy=False)))
        )
    done = reached
    if sp.then_not:
        assert sp.wait_s is not None
        wait_us = sp.wait_s * 1_000_000
        as_of_us = epoch_us(lit(sp.as_of, t.dialect), t.dialect)
        over = exp.LTE(
            this=exp.Add(this=col(E), expression=_num(wait_us)),
            expression=as_of_us,
        )
        # then_not rows sort first among equal times: one at tk itself does not follow tk.
        last = _select(
            col(key),
            col(T),
            col(E),
            exp.alias_(_num(1), SIDE, quoted=True, copy=False),
            exp.alias_(exp.cast(exp.null(), big, copy=False), PE, quoted=True),
        ).from_(reached, copy=False)
        last = last.where(over, copy=False)
        blocks = (
            _select(
                col(key),
                col(T),
                col(E),
                exp.alias_(_num(0), SIDE, quoted=True, copy=False),
                exp.alias_(col(E), PE, quoted=True, copy=False),
            )
            .from_(rows, copy=False)
            .where(col(_flag("x")), copy=False)
        )
        pooled = _select(
            exp.Star(),
            exp.alias_(_window(exp.Min, [col(key)], following=True), P, quoted=True, copy=False),
        ).from_(_from(_union([last, blocks]), "u"), copy=False)
        ctes.append((f"seq{n}_x", pooled))
        # A then_not row exactly at tk + wait blocks: the interval is (tk, tk + wait].
        free = exp.or_(
            exp.Is(this=col(P), expression=exp.null()),
            exp.GT(this=col(P), expression=exp.Add(this=col(E), expression=_num(wait_us))),
            copy=False,
        )
        kept = exp.and_(exp.EQ(this=col(SIDE), expression=_num(1)), free, copy=False)
        done = f"seq{n}_d"
        ctes.append((done, _select(col(key), col(T)).from_(f"seq{n}_x").where(kept)))
    final = (
        _select(col(key), exp.alias_(exp.Min(this=col(T)), ident(sp.name), quoted=True, copy=False))
        .from_(done, copy=False)
        .group_by(col(key), copy=False)
    )
    ctes.append((f"seq{n}", final))
    return ctes
