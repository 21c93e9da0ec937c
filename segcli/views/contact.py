"""Why one contact is in or out of each segment, and its score by rule (explain --contact).

`contact_verdicts` builds the structured answer (for `--json`); `contact_lines` renders it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from segcli.engines.polars import Evaluation
from segcli.planning.history import field_name
from segcli.planning.planner import (
    account_col,
    agg_list_col,
    agg_value_col,
    node_col,
    operand_value_col,
    points_col,
)
from segcli.spec import graph
from segcli.spec import model as m
from segcli.views.words import node_text


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, datetime):
        return v.isoformat()
    return "empty" if v is None else str(v)


def _json_value(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


PEERS_SHOWN = 5  # explain --contact names at most this many matching account peers


def _peers(ev: Evaluation, row: dict[str, Any], seg: str, part: str, i: int) -> dict[str, Any]:
    """The contact's account and the first keys of the other contacts of that account that
    satisfy the account condition's `where` (its child, node i + 1)."""
    account = row.get(account_col(seg, part, i))
    if account is None:
        return {"account": None, "peers": [], "matching": 0}
    key = ev.key
    found = ev.frame.filter(
        (pl.col(account_col(seg, part, i)) == account)
        & pl.col(node_col(seg, part, i + 1))
        & (pl.col(key) != row[key])
    )[key]
    return {"account": account, "peers": found.head(PEERS_SHOWN).to_list(), "matching": len(found)}


# What the value shown beside a history leaf is (SPEC §2.6).
HISTORY_LABELS = {
    "ever": "a member at a committed run",
    "member_for": "current stay since",
    "left": "left at",
}


def _tree(
    row: dict[str, Any],
    seg: str,
    part: str,
    root: m.Condition,
    ev: Evaluation | None = None,
    since: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """The condition tree with each node's truth and, for event nodes, the aggregate value;
    an account node shows its account and matching peers instead of its `where` (which is
    about those peers, not about the contact); history leaves say what their value is, and
    `ever` field leaves since when the state stores the column's values (`since`: column ->
    ISO time, None when not yet)."""
    nodes = list(graph.walk(root))
    index = {id(n): i for i, n in enumerate(nodes)}

    def build(node: m.Condition) -> dict[str, Any]:
        i = index[id(node)]
        out: dict[str, Any] = {
            "text": node_text(node),
            "holds": bool(row.get(node_col(seg, part, i))),
        }
        val = agg_value_col(seg, part, i)
        if val in row:
            out["value"] = _json_value(row[val])
        listed = agg_list_col(seg, part, i)
        if listed in row:  # a per condition: its first passing values, as text
            out["passing"] = [] if row[listed] is None else row[listed].split(", ")
        if isinstance(node, m.AccountCond) and ev is not None:
            out.update(_peers(ev, row, seg, part, i))
            out["key"] = ev.key
        if isinstance(node, m.SegmentRef) and node.history is not None:
            out["label"] = HISTORY_LABELS[node.history]
        if isinstance(node, m.FieldCond) and node.ever:
            out["history_since"] = (since or {}).get(field_name(node))
        operands: list[Any] = []
        while operand_value_col(seg, part, i, len(operands)) in row:
            operands.append(_json_value(row[operand_value_col(seg, part, i, len(operands))]))
        if operands:  # the other side of a column comparison (SPEC §2.6)
            out["compared_with"] = operands
        kids = [build(c) for c in graph.children(node)]
        if kids:
            out["children"] = kids
        return out

    return build(root)


def _reason(seg: m.Segment, member: bool, matched: bool, base: bool, where_holds: bool) -> str:
    if member and matched:
        return "matches the rule"
    if member and base:
        return f"kept: a {seg.kind} member from an earlier run that no longer matches"
    if member:
        return "added by include_file"
    if matched or base:
        return "removed by exclude_file"
    if seg.exclude is not None and where_holds:
        return "matches `where` but is removed by `exclude`"
    return "does not match the rule"


def contact_verdicts(
    spec: m.Spec,
    ev: Evaluation,
    row: dict[str, Any],
    since: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Each model's points rule by rule, then each segment in or out with its marked tree
    (`since`: for `ever` columns, since when the state stores their values)."""
    at = ev.plan.as_of
    scores = []
    for model, sm in spec.scoring.items():
        total = float(ev.score_of(row, model) or 0.0)
        rules = []
        for j, rule in enumerate(sm.rules):
            per = isinstance(rule.when, m.EventCond) and rule.when.per is not None
            rules.append(
                {
                    "rule": rule.name,
                    "stage": rule.stage,
                    "points": float(row.get(points_col(model, j)) or 0.0),
                    "each": rule.each,
                    "per_row": rule.points if rule.each else None,
                    # An `each` rule counts rows, or the passing values of a `per` event.
                    "unit": "value" if per else "row",
                    "max": rule.max,
                    "decayed": bool(
                        sm.half_life
                        and isinstance(rule.when, m.EventCond)
                        and not per
                        and (rule.each or rule.when.is_default_test)
                    ),
                }
            )
        scores.append(
            {
                "model": model,
                "score": total,
                "percent": total / sm.sales_ready * 100,
                "sales_ready": sm.sales_ready,
                "half_life": sm.half_life.text if sm.half_life else None,
                "min": sm.min,
                "max": sm.max,
                "rules": rules,
                "grade": sm.grade_of(total) if sm.grades else None,
                "grades": [[g, t] for g, t in sm.grades] if sm.grades else None,
            }
        )
    segments = []
    for n in ev.segments:
        seg = spec.segments[n]
        member, matched, base = ev.flags_of(row, n)
        where_holds = bool(row.get(node_col(n, "where", 0)))
        entry: dict[str, Any] = {
            "segment": n,
            "kind": seg.kind,
            "member": member,
            "reason": _reason(seg, member, matched, base, where_holds),
        }
        if seg.where is not None:
            entry["where"] = _tree(row, n, "where", seg.where, ev, since)
        if seg.exclude is not None:
            entry["exclude"] = _tree(row, n, "exclude", seg.exclude, ev, since)
        entry["cut_by_top"] = bool(seg.top is not None and not matched and where_holds)
        segments.append(entry)
    return {"as_of": at.isoformat(), "scores": scores, "segments": segments}


def _from_json(value: Any) -> Any:
    """A node's value as stored in the verdicts: times are ISO text, grades plain text."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _tree_lines(node: dict[str, Any], depth: int) -> list[str]:
    mark = "[x]" if node["holds"] else "[ ]"
    text = node["text"]
    if "value" in node:
        value = node["value"]
        shown = _fmt(_from_json(value))
        if "account" in node:
            shown += f"; {_account_text(node)}"
        if node.get("passing"):
            more = ", ..." if isinstance(value, int) and value > len(node["passing"]) else ""
            shown += f"; passing: {', '.join(node['passing'])}{more}"
        others = node.get("compared_with")
        if others:
            shown += ", compared with " + ", ".join(_fmt(_from_json(v)) for v in others)
        if node.get("label") == "left at" and value is None:
            shown = "never at a committed run"
        if node.get("label") == "current stay since" and value is None:
            shown = "not a member now"
        text += f"  ({node.get('label', 'value')}: {shown})"
    if "history_since" in node:
        since = node["history_since"]
        text += (
            f"  (values stored since {since})"
            if since
            else "  (no values stored yet: only the current value counts)"
        )
    lines = [f"      {'  ' * depth}{mark} {text}"]
    for c in node.get("children", []):
        lines += _tree_lines(c, depth + 1)
    return lines


def _account_text(node: dict[str, Any]) -> str:
    """`account 17; matching others: id=4, id=9` (the first few), or `no account`; the marks
    below an account node are the contact's own."""
    below = "; marks below: this contact itself"
    if node["account"] is None:
        return "no account" + below
    peers = node["peers"]
    listed = ", ".join(f"{node['key']}={p}" for p in peers)
    more = f" and {node['matching'] - len(peers)} more" if node["matching"] > len(peers) else ""
    found = f"matching others: {listed}{more}" if peers else "no other contact matches"
    return f"account {node['account']}; {found}{below}"


def contact_lines(verdicts: dict[str, Any]) -> list[str]:
    """The verdicts as text: scores rule by rule, then IN/out per segment with its tree."""
    lines: list[str] = []
    for s in verdicts["scores"]:
        grade = ""
        if s.get("grade") is not None:
            bounds = ", ".join(f"{g} >= {t:g}" for g, t in s["grades"])
            grade = f", grade {s['grade']} ({bounds})"
        lines.append(
            f"score {s['model']}: {s['score']:g} ({s['percent']:g}% of sales-ready "
            f"{s['sales_ready']:g}){grade}"
        )
        for r in s["rules"]:
            extra = []
            if r["each"]:
                extra.append(f"{r['per_row']:g} per {r.get('unit', 'row')}")
            if r["max"] is not None:
                extra.append(f"max {r['max']:g}")
            if r["decayed"]:
                extra.append(f"decayed, half-life {s['half_life']}")
            stage = f" [{r['stage']}]" if r["stage"] else ""
            note = f"  ({', '.join(extra)})" if extra else ""
            lines.append(f"  {r['points']:+8.2f}  {r['rule']}{stage}{note}")
        clamp = [
            f"min {s['min']:g}" if s["min"] is not None else "",
            f"max {s['max']:g}" if s["max"] is not None else "",
        ]
        clamp = [c for c in clamp if c]
        if clamp:
            lines.append(f"  total clamped to {', '.join(clamp)}")
    for seg in verdicts["segments"]:
        lines.append(f"{'IN ' if seg['member'] else 'out'} {seg['segment']}: {seg['reason']}")
        for part in ("where", "exclude"):
            if part in seg:
                lines.append(f"    {part}:")
                lines += _tree_lines(seg[part], 0)
        if seg["cut_by_top"]:
            lines.append("    (matched, but not within `top`)")
        if "recorded" in seg:
            lines.append(f"    note: {seg['recorded']}")
    return lines
