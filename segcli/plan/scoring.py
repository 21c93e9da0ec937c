"""Compile scoring models into per-contact score expressions (SPEC §2.4)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from segcli.plan.compile import Context, compile_condition, decay_weight, event_agg_key
from segcli.spec import model as m


def rule_points(rule: m.Rule, sm: m.ScoreModel, ctx: Context) -> pl.Expr:
    """The points one rule gives each contact at ctx.as_of (decay and cap applied)."""
    hl = sm.half_life.seconds if sm.half_life else None
    when = rule.when
    single_event = isinstance(when, m.EventCond) and when.is_default_test
    if rule.each:
        assert isinstance(when, m.EventCond)
        agg = "decay" if hl else "count"
        col = ctx.register_agg(event_agg_key(when, ctx.as_of, agg=agg, half_life_s=hl))
        pts = pl.lit(rule.points) * pl.col(col).cast(pl.Float64)
    elif hl and single_event:
        assert isinstance(when, m.EventCond)
        hit = compile_condition(when, ctx)
        last = pl.col(ctx.register_agg(event_agg_key(when, ctx.as_of, agg="last")))
        # The most recent matching row sets the weight; undated rows count fully.
        weight = decay_weight(last, ctx.as_of, hl)
        pts = pl.when(hit).then(pl.lit(rule.points) * weight).otherwise(0.0)
    else:
        pts = pl.when(compile_condition(when, ctx)).then(pl.lit(float(rule.points))).otherwise(0.0)
    if rule.max is not None:
        pts = (
            pts.clip(upper_bound=rule.max) if rule.points >= 0 else pts.clip(lower_bound=-rule.max)
        )
    return pts.cast(pl.Float64)


def model_score(sm: m.ScoreModel, ctx: Context) -> pl.Expr:
    """The model's total at ctx.as_of: the sum of rule points, clamped to [min, max]."""
    parts = [rule_points(r, sm, ctx) for r in sm.rules]
    total = pl.sum_horizontal(parts) if parts else pl.lit(0.0)
    if sm.min is not None or sm.max is not None:
        total = total.clip(lower_bound=sm.min, upper_bound=sm.max)
    return total.cast(pl.Float64)


def score_col(model: str, as_of: datetime, run_as_of: datetime) -> str:
    """Column name of a model's score at `as_of` (the run's own as_of gets the plain name)."""
    if as_of == run_as_of:
        return f"__score__{model}"
    back = int((run_as_of - as_of) / timedelta(seconds=1))
    return f"__score__{model}@-{back}s"
