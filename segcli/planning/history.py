"""History leaves (SPEC §2.6) in the IR: `segment:` with `ever`, `member_for` or `left`, and
`field:` with `ever: true`.

The state's history reaches the engine as extra inputs, read by the api layer (the planner
never reads the state, so the plan stays a value):

- per segment X that a history option refers to, a frame joined to the contacts on the key
  with the columns `hist_col(X, part)`: `member` (a member after X's last committed run),
  `joined` (that stay's joined_at), `ever` (a member at some committed run), `left` (the
  as_of of the last committed run that recorded X's `left` change for the contact);
- per column an `ever` field leaf reads, the values stored at committed runs (key, value
  rows), tested by `ir.HeldBefore`.

Without those inputs (`compute`, `compile`: no state) every history leaf is compiled as on
a first run: `ever` is membership now, a stay begins now, nobody has left.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from segcli.planning import ir
from segcli.spec import graph
from segcli.spec import model as m
from segcli.spec.timeutil import before

SEGMENT_PARTS = ("member", "joined", "ever", "left")
# member_for's operators on the stay's length, as comparisons of the stay's start with
# as_of minus the duration (a longer stay began earlier).
_STAY = {"gte": "le", "gt": "lt", "lte": "ge", "lt": "gt", "eq": "eq"}


def hist_col(segment: str, part: str) -> str:
    """The per-contact column of one part of segment NAME's history (SEGMENT_PARTS)."""
    return f"__hist__{segment}#{part}"


def now_col(column: str) -> str:
    """The output column holding the current value of a column an `ever` leaf reads."""
    return f"__now__{column}"


def field_name(cond: m.FieldCond) -> str:
    """A field leaf's per-contact column: `col` or `SOURCE.col`."""
    return cond.column if cond.source is None else f"{cond.source}.{cond.column}"


def history_refs(spec: m.Spec) -> tuple[list[str], list[str]]:
    """Across the whole spec: the segments a history option refers to, and the per-contact
    columns `ever` field leaves read (each sorted)."""
    roots: list[m.Condition | None] = []
    for seg in spec.segments.values():
        roots += [seg.where, seg.exclude]
    for sm in spec.scoring.values():
        roots += [r.when for r in sm.rules]
    segments: set[str] = set()
    fields: set[str] = set()
    for root in roots:
        for c in graph.walk(root):
            if isinstance(c, m.SegmentRef) and c.history is not None:
                segments.add(c.name)
            elif isinstance(c, m.FieldCond) and c.ever:
                fields.add(field_name(c))
    return sorted(segments), sorted(fields)


def compile_history(
    cond: m.SegmentRef,
    now: ir.Expr,
    known: bool,
    as_of: datetime,
    tz: str,
    left_test: Callable[[ir.Expr], ir.Expr],
) -> ir.Expr:
    """A segment leaf with a history option; `now` is this run's membership of the segment,
    `known` whether its history frame is given (else: as on a first run); `left_test` turns
    the time of leaving into the leaf's test of it."""
    n = cond.name
    if cond.ever:
        if not known:
            return now
        return ir.Or((now, ir.FillNull(ir.Col(hist_col(n, "ever")), ir.Lit(False))))
    if cond.member_for is not None:
        start = stay_start(n, known, as_of)
        parts: list[ir.Expr] = []
        for op in cond.member_for.ops:
            assert isinstance(op.value, m.Duration)
            parts.append(ir.Cmp(_STAY[op.name], start, ir.Lit(before(as_of, op.value, tz))))
        return ir.And((now, *parts))
    assert cond.left is not None
    if not known:
        return ir.Const(False)
    return ir.And((ir.Not(now), left_test(left_time(n, as_of, now))))


def stay_start(segment: str, known: bool, as_of: datetime) -> ir.Expr:
    """When the current stay began: the joined_at of a member of the last committed run,
    else this run's as_of (a new member's stay is 0)."""
    if not known:
        return ir.Lit(as_of)
    return ir.FillNull(ir.Col(hist_col(segment, "joined")), ir.Lit(as_of))


def left_time(segment: str, as_of: datetime, now: ir.Expr) -> ir.Expr:
    """When the contact last left: this run's as_of if it was a member after the last
    committed run and is not now (this run records its `left`), else the recorded time."""
    was = ir.FillNull(ir.Col(hist_col(segment, "member")), ir.Lit(False))
    leaves = ir.And((was, ir.Not(now)))
    return ir.FillNull(ir.IfElse(leaves, ir.Lit(as_of)), ir.Col(hist_col(segment, "left")))


def history_value(cond: m.SegmentRef, known: bool, as_of: datetime, now: ir.Expr) -> ir.Expr | None:
    """What explain --contact shows of a history leaf: the stay's start (member_for; null
    when not a member now), the time of leaving (left, null when never), or whether it was a
    member at a committed run (ever)."""
    if cond.member_for is not None:
        return ir.IfElse(now, stay_start(cond.name, known, as_of))
    if cond.left is not None:
        return left_time(cond.name, as_of, now) if known else ir.Lit(None)
    if cond.ever:
        if not known:
            return ir.Const(False)
        return ir.FillNull(ir.Col(hist_col(cond.name, "ever")), ir.Lit(False))
    return None
