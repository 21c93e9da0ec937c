"""Why one contact is in or out of each segment, and its score rule by rule (explain --contact)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from segcli.engines.polars import Evaluation
from segcli.plan.planner import (
    agg_value_col,
    base_col,
    node_col,
    points_col,
    rule_col,
    segment_col,
)
from segcli.plan.scoring import score_col
from segcli.spec import graph
from segcli.spec import model as m
from segcli.views.explain import node_text


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, datetime):
        return v.isoformat()
    return "empty" if v is None else str(v)


def _tree(row: dict[str, Any], seg: str, part: str, root: m.Condition | None) -> list[str]:
    """The condition tree with a mark per node: [x] holds, [ ] does not."""
    if root is None:
        return []
    depth: dict[int, int] = {}
    lines = []
    nodes = list(graph.walk(root))
    # walk() is depth first; recompute each node's depth from its parent's children.
    depth[id(nodes[0])] = 0
    for node in nodes:
        for c in graph.children(node):
            depth[id(c)] = depth[id(node)] + 1
    for i, node in enumerate(nodes):
        mark = "[x]" if row.get(node_col(seg, part, i)) else "[ ]"
        text = node_text(node)
        val = agg_value_col(seg, part, i)
        if val in row:
            text += f"  (value: {_fmt(row[val])})"
        lines.append(f"      {'  ' * depth[id(node)]}{mark} {text}")
    return lines


def explain_contact(spec: m.Spec, ev: Evaluation, row: dict[str, Any]) -> list[str]:
    """Lines: each model's points rule by rule, then each segment in/out with its tree."""
    lines: list[str] = []
    for model, sm in spec.scoring.items():
        at = ev.plan.as_of
        total = row.get(score_col(model, at, at)) or 0.0
        pct = total / sm.sales_ready * 100
        lines.append(f"score {model}: {total:g} ({pct:g}% of sales-ready {sm.sales_ready:g})")
        for j, rule in enumerate(sm.rules):
            pts = row.get(points_col(model, j)) or 0.0
            extra = []
            if rule.each:
                extra.append(f"{rule.points:g} per row")
            if rule.max is not None:
                extra.append(f"max {rule.max:g}")
            decays = isinstance(rule.when, m.EventCond) and (rule.each or rule.when.is_default_test)
            if sm.half_life and decays:
                extra.append(f"decayed, half-life {sm.half_life.text}")
            stage = f" [{rule.stage}]" if rule.stage else ""
            note = f"  ({', '.join(extra)})" if extra else ""
            lines.append(f"  {pts:+8.2f}  {rule.name}{stage}{note}")
        clamp = [
            f"min {sm.min:g}" if sm.min is not None else "",
            f"max {sm.max:g}" if sm.max is not None else "",
        ]
        clamp = [c for c in clamp if c]
        if clamp:
            lines.append(f"  total clamped to {', '.join(clamp)}")
    for n in ev.segments:
        seg = spec.segments[n]
        member, matched, base = (bool(row.get(c(n))) for c in (segment_col, rule_col, base_col))
        if member and matched:
            why = "matches the rule"
        elif member and base:
            why = f"kept: a {seg.kind} member from an earlier run that no longer matches"
        elif member:
            why = "added by include_file"
        elif matched or base:
            why = "removed by exclude_file"
        elif seg.exclude is not None and row.get(node_col(n, "where", 0)):
            why = "matches `where` but is removed by `exclude`"
        else:
            why = "does not match the rule"
        lines.append(f"{'IN ' if member else 'out'} {n}: {why}")
        if seg.where is not None:
            lines.append("    where:")
            lines += _tree(row, n, "where", seg.where)
        if seg.exclude is not None:
            lines.append("    exclude:")
            lines += _tree(row, n, "exclude", seg.exclude)
        if seg.top is not None and not matched and row.get(node_col(n, "where", 0)):
            lines.append("    (matched, but not within `top`)")
    return lines
