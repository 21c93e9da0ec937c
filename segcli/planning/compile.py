"""Compile conditions into segcli's IR over the per-contact frame.

The per-contact frame has the contacts' columns, relation-one columns named `SOURCE.COL`,
one column per event aggregate (named by the planner), score columns and one boolean column
per segment. Every compiled condition is a non-null boolean: a leaf is true or false, never
unknown (the null rule of SPEC §2.1).

Column types are given as segcli's type names (`int`, `float`, `str`, `bool`, `date`,
`datetime`, `other`): the compiler reads schemas, never rows, and knows no engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from segcli.planning import ir
from segcli.planning.history import compile_history, field_name
from segcli.spec import model as m
from segcli.spec.timeutil import before, period_bounds, to_utc


@dataclass(frozen=True)
class AggKey:
    """One per-contact aggregate of an event condition; identical keys are computed once."""

    sources: tuple[str, ...]
    types: tuple[str, ...] | None
    where: tuple[m.RowCond, ...]
    window: m.Window | None
    agg: str  # count, sum, avg, min, max, distinct, active_days, last, first, decay
    column: str | None
    as_of: datetime
    half_life_s: int | None = None  # for agg == "decay": sum of 0.5^(age / half_life)
    # Only rows in (span[0], span[1]]: one period of a `regularly` cadence (SPEC §2.6).
    span: tuple[datetime, datetime] | None = None
    # agg == "count" of the values of a column whose rows pass (per-value grouping, §2.6).
    per: m.Per | None = None

    def selection_words(self) -> list[str]:
        """Which rows the aggregate reads, in words: type, window and `where` tests."""
        bits = []
        if self.types:
            bits.append(f"type in {list(self.types)}")
        if self.window and self.window.within:
            bits.append(f"within {self.window.within.text}")
        if self.window and self.window.during:
            bits.append(f"during {self.window.during.name}")
        for rc in self.where:
            ops = ", ".join(f"{o.name} {o.value!r}" for o in rc.test.ops)
            bits.append(f"{rc.column} {ops}")
        return bits


@dataclass(frozen=True)
class Context:
    """What compiling needs besides the condition: time, timezone and name lookups."""

    as_of: datetime
    tz: str
    key: str
    types: dict[str, str]  # per-contact frame columns (contacts + SOURCE.COL) -> type name
    register_agg: Callable[[AggKey], str]
    segment_column: Callable[[str], str]
    score_column: Callable[[str, datetime], str]
    models: dict[str, m.ScoreModel] = field(default_factory=dict)
    # (sequence, as_of) -> the per-contact column of its completion time (SPEC §2.6).
    register_seq: Callable[[tuple[m.SequenceCond, datetime]], str] | None = None
    # History inputs given to the engine (SPEC §2.6): segments with a history frame, and
    # per-contact columns with stored values. Leaves without them compile as a first run's.
    history_segments: frozenset[str] = frozenset()
    history_fields: frozenset[str] = frozenset()


def compile_condition(cond: m.Condition, ctx: Context) -> ir.Expr:
    """Dispatch on the condition's kind by name; unsupported kinds fail clearly."""
    name = type(cond).__name__
    fn = _DISPATCH.get(name)
    if fn is None:  # pragma: no cover - the validator only builds known kinds
        raise NotImplementedError(f"cannot compile condition kind {name}")
    return fn(cond, ctx)


def compile_all(cond: m.AllCond, ctx: Context) -> ir.Expr:
    if not cond.items:
        return ir.Const(True)
    return ir.And(tuple(compile_condition(c, ctx) for c in cond.items))


def compile_any(cond: m.AnyCond, ctx: Context) -> ir.Expr:
    if not cond.items:
        return ir.Const(False)
    return ir.Or(tuple(compile_condition(c, ctx) for c in cond.items))


def compile_not(cond: m.NotCond, ctx: Context) -> ir.Expr:
    return ir.Not(compile_condition(cond.item, ctx))


def holding_count(cond: m.AtLeastCond, ctx: Context) -> ir.Expr:
    """How many of an at_least's conditions hold (each is a non-null boolean)."""
    if not cond.items:
        return ir.Lit(0)
    return ir.Horizontal(
        "sum", tuple(ir.Cast(compile_condition(c, ctx), "int") for c in cond.items)
    )


def compile_at_least(cond: m.AtLeastCond, ctx: Context) -> ir.Expr:
    """At least n of the conditions hold (SPEC §2.6): n 0 is true for everyone."""
    if cond.n == 0:
        return ir.Const(True)
    return ir.Cmp("ge", holding_count(cond, ctx), ir.Lit(cond.n))


def compile_field(cond: m.FieldCond, ctx: Context) -> ir.Expr:
    name = field_name(cond)
    now = compile_test(ir.Col(name), ctx.types.get(name), cond.test, ctx.as_of, ctx.tz, ctx.types)
    if cond.ever and name in ctx.history_fields:
        # The same test over each value stored at a committed run (SPEC §2.6).
        return ir.Or((now, ir.HeldBefore(ir.Col(ctx.key), name, now)))
    return now


def field_values(cond: m.FieldCond, ctx: Context) -> tuple[ir.Expr, tuple[ir.Expr, ...]]:
    """What a field leaf compares, for explain: its value (a date as its local midnight,
    moved by the leaf's offset) and each column operand's value (moved by its offset)."""
    name = field_name(cond)
    value: ir.Expr = ir.Col(name)
    if ctx.types.get(name) == "date":
        value = ir.LocalMidnight(value, ctx.tz)
    value = shifted(value, cond.test.offset, ctx.tz)
    return value, tuple(operand(r, ctx.types, ctx.tz) for r in cond.test.column_refs)


def compile_segment(cond: m.SegmentRef, ctx: Context) -> ir.Expr:
    now = ir.Col(ctx.segment_column(cond.name))
    if cond.history is None:
        return now
    known = cond.name in ctx.history_segments
    left = cond.left

    def left_test(when: ir.Expr) -> ir.Expr:
        assert left is not None
        return compile_test(when, "datetime", left, ctx.as_of, ctx.tz)

    return compile_history(cond, now, known, ctx.as_of, ctx.tz, left_test)


def compile_bucket(cond: m.BucketCond, ctx: Context) -> ir.Expr:
    threshold = round(cond.percent * 100)
    return ir.Cmp("lt", ir.Bucket(ir.Col(ctx.key), cond.salt), ir.Lit(threshold))


def bucket_of(salt: str, key: str) -> int:
    """A stable bucket in [0, 10000) for a key: sha256("salt:key"), first 8 bytes, mod 10000."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10000


def compile_event(cond: m.EventCond, ctx: Context) -> ir.Expr:
    if cond.regularly is not None:
        return ir.Cmp("ge", regular_periods(cond, ctx), ir.Lit(cond.regularly.periods))
    cond = latest_as_window(cond)
    col = ctx.register_agg(event_agg_key(cond, ctx.as_of))
    typ = "datetime" if cond.agg in ("last", "first") else "float"
    return compile_test(ir.Col(col), typ, cond.test, ctx.as_of, ctx.tz)


def latest_as_window(cond: m.EventCond) -> m.EventCond:
    """`last: {within: D}` on an event leaf without a window of its own asks whether a
    matching row is in the last D: rows after as_of are never read, so the latest row is
    within D exactly when some row is. Said as a windowed count, its scan reads only the
    last D of the data (a time-ordered export's older files are skipped) instead of taking
    the latest row of every contact over all of history. Any other test keeps the latest."""
    test = cond.test
    if (
        cond.agg != "last"
        or cond.window is not None
        or cond.per is not None
        or len(test.ops) != 1
        or test.ops[0].name != "within"
        or test.include_missing is not None
        or test.offset is not None
    ):
        return cond
    within = test.ops[0].value
    assert isinstance(within, m.Duration)
    return replace(
        cond, window=m.Window(within=within), agg="count", test=m.Test((m.Op("gte", 1),))
    )


def event_agg_key(
    cond: m.EventCond, as_of: datetime, agg: str | None = None, half_life_s: int | None = None
) -> AggKey:
    """The aggregate an event condition needs (sources sorted so pooled order does not matter)."""
    return AggKey(
        tuple(sorted(set(cond.sources))),
        tuple(sorted(set(cond.types))) if cond.types else None,
        cond.where,
        cond.window,
        agg or cond.agg,
        cond.column,
        as_of,
        half_life_s,
        per=cond.per,
    )


def cadence_span(reg: m.Regularly, as_of: datetime, i: int, tz: str) -> tuple[datetime, datetime]:
    """Period i of a cadence: (as_of - (i+1)*every, as_of - i*every], as (start, end); with a
    calendar unit each bound is one calendar step of k units from as_of (SPEC §2.6)."""
    return before(as_of, times(reg.every, i + 1), tz), before(as_of, times(reg.every, i), tz)


def times(d: m.Duration, k: int) -> m.Duration:
    """k times a duration (a calendar one stays a calendar step: 3 x 1mo is 3mo)."""
    return m.Duration(f"{k}x{d.text}", d.seconds * k, d.months * k)


def regular_periods(cond: m.EventCond, ctx: Context) -> ir.Expr:
    """How many of the last `of` periods have at least `at_least` matching rows: one count
    aggregate per period, all in the scan of their source (counts are never null)."""
    reg = cond.regularly
    assert reg is not None
    hits = []
    for i in range(reg.of):
        key = replace(event_agg_key(cond, ctx.as_of), span=cadence_span(reg, ctx.as_of, i, ctx.tz))
        count = ir.Col(ctx.register_agg(key))
        hits.append(ir.Cast(ir.Cmp("ge", count, ir.Lit(reg.at_least)), "int"))
    return ir.Horizontal("sum", tuple(hits))


def compile_score(cond: m.ScoreCond, ctx: Context) -> ir.Expr:
    col = ir.Col(ctx.score_column(cond.model, ctx.as_of))
    return compile_test(col, "float", cond.test, ctx.as_of, ctx.tz)


def compile_score_change(cond: m.ScoreChangeCond, ctx: Context) -> ir.Expr:
    then = before(ctx.as_of, cond.over, ctx.tz)
    delta = ir.Arith(
        "sub",
        ir.Col(ctx.score_column(cond.model, ctx.as_of)),
        ir.Col(ctx.score_column(cond.model, then)),
    )
    return compile_test(delta, "float", cond.test, ctx.as_of, ctx.tz)


def grade_expr(score: ir.Expr, sm: m.ScoreModel) -> ir.Expr:
    """The grade a score earns, as text: the first (highest) threshold it reaches, else
    `below`. Scores are never null, so neither is the grade."""
    expr: ir.Expr = ir.Lit(sm.below)
    for name, threshold in reversed(sm.grades):
        expr = ir.IfElse(ir.Cmp("ge", score, ir.Lit(threshold)), ir.Lit(name), expr)
    return expr


def compile_grade(cond: m.GradeCond, ctx: Context) -> ir.Expr:
    score = ir.Col(ctx.score_column(cond.model, ctx.as_of))
    grade = grade_expr(score, ctx.models[cond.model])
    return compile_test(grade, "str", cond.test, ctx.as_of, ctx.tz)


def compile_sequence(cond: m.SequenceCond, ctx: Context) -> ir.Expr:
    """True when the sequence completed: its per-contact completion time is not null (the
    planner turns the sequence into a `SequencePlan`, see segcli.planning.sequences)."""
    if ctx.register_seq is None:  # pragma: no cover - the planner always registers
        raise NotImplementedError("sequence conditions need the planner")
    return ir.Not(ir.IsNull(ir.Col(ctx.register_seq((cond, ctx.as_of)))))


def account_count(cond: m.AccountCond, ctx: Context) -> ir.Expr:
    """How many contacts of the contact's account satisfy `where` (the contact itself not
    counted with `others`): one window sum per account over the per-contact frame. A null
    account has no peers: the count is 0, or the contact's own match without `others`."""
    account = ir.Col(cond.column)
    own = ir.IfElse(compile_condition(cond.where, ctx), ir.Lit(1), ir.Lit(0))
    total: ir.Expr = ir.IfElse(ir.IsNull(account), own, ir.PeerSum(own, account))
    if cond.others:
        total = ir.Arith("sub", total, own)
    return ir.Cast(total, "int")


def compile_account(cond: m.AccountCond, ctx: Context) -> ir.Expr:
    return compile_test(account_count(cond, ctx), "float", cond.test, ctx.as_of, ctx.tz)


_DISPATCH: dict[str, Callable[[Any, Context], ir.Expr]] = {
    "AllCond": compile_all,
    "AnyCond": compile_any,
    "NotCond": compile_not,
    "AtLeastCond": compile_at_least,
    "FieldCond": compile_field,
    "EventCond": compile_event,
    "SegmentRef": compile_segment,
    "BucketCond": compile_bucket,
    "ScoreCond": compile_score,
    "ScoreChangeCond": compile_score_change,
    "GradeCond": compile_grade,
    "SequenceCond": compile_sequence,
    "AccountCond": compile_account,
}

# ---------------------------------------------------------------- tests (operators)


def shifted(value: ir.Expr, offset: m.Offset | None, tz: str) -> ir.Expr:
    """An instant moved by a signed duration: h/d/w exactly, mo/y as calendar steps."""
    if offset is None:
        return value
    sign = -1 if offset.negative else 1
    d = offset.duration
    if d.months:
        return ir.Shift(value, 0, sign * d.months, tz)
    return ir.Shift(value, sign * d.seconds, 0, tz)


def operand(ref: m.ColumnRef, types: dict[str, str], tz: str) -> ir.Expr:
    """A column operand's value: a date as its local midnight, then shifted by its offset."""
    value: ir.Expr = ir.Col(ref.name)
    if types.get(ref.name) == "date":
        value = ir.LocalMidnight(value, tz)
    return shifted(value, ref.offset, tz)


def compile_test(
    value: ir.Expr,
    typ: str | None,
    test: m.Test,
    as_of: datetime,
    tz: str,
    types: dict[str, str] | None = None,
) -> ir.Expr:
    """Operators ANDed over `value` with the null rule and `include_missing` applied.

    `types` are the column types of the frame `value` lives in: column operands read it.
    The leaf's `offset` shifts the value before every operator (SPEC §2.6)."""
    temporal = typ in ("datetime", "date")
    if typ == "date":
        value = ir.LocalMidnight(value, tz)
    value = shifted(value, test.offset, tz)
    cols = types or {}

    def lit(v: Any) -> ir.Expr:
        if isinstance(v, m.ColumnRef):
            return operand(v, cols, tz)
        return _lit(v, temporal, as_of, tz)

    parts = tuple(
        compile_op(value, op, test.ignore_case, temporal, as_of, tz, lit) for op in test.ops
    )
    result: ir.Expr = ir.And(parts) if parts else ir.Lit(True)
    if len(parts) == 1:
        result = parts[0]
    if test.include_missing is not None:
        result = ir.IfElse(ir.IsNull(value), ir.Lit(test.include_missing), result)
    return result


def compile_op(
    v: ir.Expr,
    op: m.Op,
    ignore_case: bool,
    temporal: bool,
    as_of: datetime,
    tz: str,
    lit: Callable[[Any], ir.Expr] | None = None,
) -> ir.Expr:
    """One operator; positive ones are false on null, negative ones their exact complement.

    `lit` turns an operator's value into an expression (a literal, or a column operand)."""
    if op.name == "is_null":
        return ir.IsNull(v) if op.value else ir.Not(ir.IsNull(v))
    if op.name in m.NEGATIVE_OPS:
        pos = m.Op(m.NEGATIVE_OPS[op.name], op.value)
        return ir.Not(compile_op(v, pos, ignore_case, temporal, as_of, tz, lit))
    value = lit or (lambda x: _lit(x, temporal, as_of, tz))
    return ir.FillNull(_positive(v, op, ignore_case, temporal, as_of, tz, value), ir.Lit(False))


def _lit(value: Any, temporal: bool, as_of: datetime, tz: str) -> ir.Expr:
    if isinstance(value, m.Relative):
        return ir.Lit(before(as_of, value.duration, tz))
    if temporal and isinstance(value, date | datetime):
        return ir.Lit(to_utc(value, tz))
    if temporal and isinstance(value, str):
        return ir.Lit(to_utc(datetime.fromisoformat(value.replace("Z", "+00:00")), tz))
    return ir.Lit(value)


def _positive(
    v: ir.Expr,
    op: m.Op,
    ignore_case: bool,
    temporal: bool,
    as_of: datetime,
    tz: str,
    value: Callable[[Any], ir.Expr],
) -> ir.Expr:
    name, val = op.name, op.value
    texts = val if isinstance(val, tuple) else (val,)
    if name in m.STRING_OPS or (
        ignore_case
        and not temporal
        and name in ("eq", "in")
        and all(isinstance(x, str) for x in texts)
    ):
        # ignore_case is for text: `{eq: 10, ignore_case: true}` on a number stays numeric.
        text = tuple(str(x) for x in val) if isinstance(val, tuple) else str(val)
        return ir.StrTest(name, v, text, ignore_case)
    if name == "eq":
        return ir.Cmp("eq", v, value(val))
    if name == "in":
        assert isinstance(val, tuple)
        if temporal:
            return ir.Or(tuple(ir.Cmp("eq", v, _lit(x, True, as_of, tz)) for x in val))
        if all(isinstance(x, str) for x in val):
            return ir.IsIn(v, tuple(str(x) for x in val))
        # Numbers compare by value: an int column with a float list (or a mixed list) too.
        return ir.Or(tuple(ir.Cmp("eq", v, ir.Lit(x)) for x in val))  # type: ignore[arg-type]
    if name in ("gt", "gte", "lt", "lte"):
        cmp = {"gt": "gt", "gte": "ge", "lt": "lt", "lte": "le"}[name]
        return ir.Cmp(cmp, v, value(val))
    if name == "between":
        assert isinstance(val, tuple)
        lo, hi = (value(x) for x in val)
        return ir.And((ir.Cmp("ge", v, lo), ir.Cmp("le", v, hi)))
    if name == "within":
        assert isinstance(val, m.Duration)
        start = before(as_of, val, tz)
        return ir.And((ir.Cmp("ge", v, ir.Lit(start)), ir.Cmp("le", v, ir.Lit(as_of))))
    if name == "older_than":
        assert isinstance(val, m.Duration)
        return ir.Cmp("lt", v, ir.Lit(before(as_of, val, tz)))
    if name == "during":
        assert isinstance(val, m.Period)
        start, end, inclusive = period_bounds(val, as_of, tz)
        upper = ir.Cmp("le" if inclusive else "lt", v, ir.Lit(end))
        return ir.And((ir.Cmp("ge", v, ir.Lit(start)), upper))
    raise NotImplementedError(f"operator {name}")  # pragma: no cover


def row_filter(
    key: AggKey,
    type_col: str | None,
    time_col: str | None,
    types: dict[str, str],
    tz: str,
    *,
    visible_at: datetime | None = None,
    types_done: bool = False,
) -> ir.Expr:
    """The per-row condition of an aggregate on one source: visible, type, window and where.

    `visible_at`: rows after this instant are already gone, so the visibility test is only
    needed for an aggregate evaluated earlier (time travel). `types_done`: the rows were
    already filtered to the aggregate's types.
    """
    parts: list[ir.Expr] = []
    if time_col is not None and (visible_at is None or key.as_of < visible_at):
        t = ir.Col(time_col)
        parts.append(ir.Or((ir.IsNull(t), ir.Cmp("le", t, ir.Lit(key.as_of)))))
    if key.types is not None and type_col is not None and not types_done:
        parts.append(ir.IsIn(ir.Col(type_col), key.types, as_text=True))
    if key.window is not None and time_col is not None:
        op = (
            m.Op("within", key.window.within)
            if key.window.within
            else m.Op("during", key.window.during)
        )
        parts.append(compile_op(ir.Col(time_col), op, False, True, key.as_of, tz))
    if key.span is not None and time_col is not None:
        t = ir.Col(time_col)
        lo, hi = (ir.Lit(x) for x in key.span)
        parts.append(ir.And((ir.Cmp("gt", t, lo), ir.Cmp("le", t, hi))))
    for rc in key.where:
        col = ir.Col(rc.column)
        parts.append(compile_test(col, types.get(rc.column), rc.test, key.as_of, tz, types))
    return ir.FillNull(ir.And(tuple(parts)), ir.Lit(False)) if parts else ir.Lit(True)


def window_start(key: AggKey, tz: str) -> datetime | None:
    """The earliest row time an aggregate can use (None when it looks at all of history)."""
    starts = [key.span[0]] if key.span is not None else []
    if key.window is not None and key.window.within is not None:
        starts.append(before(key.as_of, key.window.within, tz))
    elif key.window is not None:
        assert key.window.during is not None
        starts.append(period_bounds(key.window.during, key.as_of, tz)[0])
    return max(starts) if starts else None
