"""Compile scoring models into per-contact score expressions of the IR (SPEC §2.4)."""

from __future__ import annotations

from datetime import datetime, timedelta

from segcli.planning import ir
from segcli.planning.compile import Context, compile_condition, event_agg_key
from segcli.spec import model as m


def rule_points(rule: m.Rule, sm: m.ScoreModel, ctx: Context) -> ir.Expr:
    """The points one rule gives each contact at ctx.as_of (decay and cap applied)."""
    hl = sm.half_life.seconds if sm.half_life else None
    when = rule.when
    single_event = isinstance(when, m.EventCond) and when.is_default_test
    pts: ir.Expr
    if rule.each:
        assert isinstance(when, m.EventCond)
        # Rows decay; the values of a `per` condition do not (docs/semantics.md).
        decays = hl is not None and when.per is None
        agg, weight_hl = ("decay", hl) if decays else ("count", None)
        col = ctx.register_agg(event_agg_key(when, ctx.as_of, agg=agg, half_life_s=weight_hl))
        pts = ir.Arith("mul", ir.Lit(float(rule.points)), ir.Cast(ir.Col(col), "float"))
    elif hl and single_event:
        assert isinstance(when, m.EventCond)
        hit = compile_condition(when, ctx)
        last = ir.Col(ctx.register_agg(event_agg_key(when, ctx.as_of, agg="last")))
        # The most recent matching row sets the weight; undated rows count fully.
        weight = ir.DecayWeight(last, ctx.as_of, hl)
        pts = ir.IfElse(hit, ir.Arith("mul", ir.Lit(float(rule.points)), weight), ir.Lit(0.0))
    else:
        pts = ir.IfElse(compile_condition(when, ctx), ir.Lit(float(rule.points)), ir.Lit(0.0))
    if rule.max is not None:
        pts = ir.Clip(pts, upper=rule.max) if rule.points >= 0 else ir.Clip(pts, lower=-rule.max)
    return ir.Cast(pts, "float")


def model_score(sm: m.ScoreModel, ctx: Context) -> ir.Expr:
    """The model's total at ctx.as_of: the sum of rule points, clamped to [min, max]."""
    parts = tuple(rule_points(r, sm, ctx) for r in sm.rules)
    total: ir.Expr = ir.Horizontal("sum", parts) if parts else ir.Lit(0.0)
    if sm.min is not None or sm.max is not None:
        total = ir.Clip(total, sm.min, sm.max)
    return ir.Cast(total, "float")


def score_col(model: str, as_of: datetime, run_as_of: datetime) -> str:
    """Column name of a model's score at `as_of` (the run's own as_of gets the plain name)."""
    if as_of == run_as_of:
        return f"__score__{model}"
    back = int((run_as_of - as_of) / timedelta(seconds=1))
    return f"__score__{model}@-{back}s"
