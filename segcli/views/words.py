"""Conditions and segments in plain words (what explain, explain --contact and the docs say)."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Any

from segcli.spec import graph
from segcli.spec import model as m

_OP_WORDS = {
    "eq": "is",
    "ne": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "gt": "is greater than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "between": "is between",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "matches": "matches",
    "within": "is within the last",
    "older_than": "is older than",
    "during": "falls in",
}


def _value(v: Any) -> str:
    if isinstance(v, m.ColumnRef):
        shift = f" {'-' if v.offset.negative else '+'} {v.offset.duration.text}" if v.offset else ""
        return f"column {v.name}{shift}"
    if isinstance(v, m.Relative):
        return f"{v.duration.text} before as_of"
    if isinstance(v, m.Duration):
        return v.text
    if isinstance(v, m.Period):
        text = v.name.replace("_", " ")
        if "fiscal" in v.name and v.fiscal_start != 1:
            text += f" (fiscal years start on {calendar.month_name[v.fiscal_start]} 1)"
        return text
    if isinstance(v, tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, datetime | date):
        return v.isoformat()
    return repr(v) if isinstance(v, str) else str(v)


def describe_test(subject: str, test: m.Test) -> str:
    """`country is 'US' and ...` with the null switches spelt out; a leaf's `offset` is
    part of the subject (`trial_started_at + 14d falls in today`)."""
    if test.offset is not None:
        sign = "-" if test.offset.negative else "+"
        subject = f"{subject} {sign} {test.offset.duration.text}"
    parts = []
    for op in test.ops:
        if op.name == "is_null":
            parts.append(f"{subject} is {'empty' if op.value else 'not empty'}")
        elif op.name == "between":
            assert isinstance(op.value, tuple)
            parts.append(f"{subject} is between {_value(op.value[0])} and {_value(op.value[1])}")
        else:
            parts.append(f"{subject} {_OP_WORDS[op.name]} {_value(op.value)}")
    text = " and ".join(parts)
    if test.ignore_case:
        text += " (ignoring case)"
    if test.include_missing is True:
        text += " (or is empty)"
    elif test.include_missing is False:
        text += " (an empty value does not match)"
    return text


def describe_event(c: m.EventCond) -> str:
    """An event condition in words."""
    what = " or ".join(c.types) + " " if c.types else ""
    src = " + ".join(c.sources)
    bits = [f"{what}rows of {src}"]
    if c.where:
        bits.append("where " + " and ".join(describe_test(r.column, r.test) for r in c.where))
    if c.window and c.window.within:
        bits.append(f"in the last {c.window.within.text}")
    if c.window and c.window.during:
        bits.append(f"during {c.window.during.name.replace('_', ' ')}")
    if c.regularly is not None:
        r = c.regularly
        return (
            f"at least {r.at_least} {' '.join(bits)} in each of at least {r.periods} of the "
            f"last {r.of} periods of {r.every.text}"
        )
    if c.per is not None:
        return describe_test(f"{describe_per(c.per)} among " + " ".join(bits), c.test)
    subject = {
        "count": "number of",
        "sum": f"sum of {c.column} over",
        "avg": f"average {c.column} over",
        "min": f"smallest {c.column} of",
        "max": f"largest {c.column} of",
        "distinct": f"distinct {c.column} values among",
        "active_days": "active days with",
        "last": "time of the latest of",
        "first": "time of the earliest of",
    }[c.agg]
    return describe_test(f"{subject} " + " ".join(bits), c.test)


def describe_per(per: m.Per) -> str:
    """`number of campaign_id values with sent and without open` (SPEC §2.6)."""
    text = f"number of {per.column} values"
    if per.has:
        text += f" with {' and '.join(per.has)}"
    if per.lacks:
        text += f"{' and' if per.has else ''} without {' or '.join(per.lacks)}"
    return text


def describe_step(step: m.SeqStep) -> str:
    """A sequence step in words: `form_submit rows of web where ...`."""
    what = " or ".join(step.types) + " " if step.types else ""
    text = f"{what}rows of {' + '.join(step.sources)}"
    if step.where:
        text += " where " + " and ".join(describe_test(r.column, r.test) for r in step.where)
    return text


def describe_sequence(c: m.SequenceCond) -> str:
    """A sequence in words: its steps in order and each option (SPEC §2.6)."""
    steps = ", then ".join(f"({describe_step(s)})" for s in c.steps)
    bits = [f"in this order, each strictly later: {steps}"]
    if c.max_gap is not None:
        bits.append(f"each at most {c.max_gap.text} after the one before")
    if c.window and c.window.within:
        bits.append(f"all in the last {c.window.within.text}")
    if c.window and c.window.during:
        bits.append(f"all during {c.window.during.name.replace('_', ' ')}")
    if c.same:
        bits.append(f"all with the same non-empty {', '.join(c.same)}")
    if c.then_not is not None and c.wait is not None:
        bits.append(
            f"and then no ({describe_step(c.then_not)}) within {c.wait.text} after the last "
            f"step, once {c.wait.text} has passed"
        )
    return "; ".join(bits)


def describe_account(c: m.AccountCond) -> str:
    """An account condition in words; its `where` follows as its child (SPEC §2.7)."""
    who = "other contacts" if c.others else "contacts (this one included)"
    subject = f"number of {who} of the same account ({c.column}) for whom this holds"
    return describe_test(subject, c.test) + ":"


_STAY_WORDS = {
    "gte": "at least",
    "gt": "longer than",
    "lte": "at most",
    "lt": "less than",
    "eq": "exactly",
}


def describe_segment_ref(cond: m.SegmentRef) -> str:
    """`segment:` with its history option in words (SPEC §2.6)."""
    name = cond.name
    if cond.ever:
        return f"is a member of segment {name} now or was one at a committed run"
    if cond.member_for is not None:
        stay = " and ".join(
            f"the current stay lasts {_STAY_WORDS[op.name]} {_value(op.value)}"
            for op in cond.member_for.ops
        )
        return f"is a member of segment {name} and {stay} (from its joined_at to as_of)"
    if cond.left is not None:
        when = describe_test("the time it left", cond.left)
        return f"is not a member of segment {name} and {when} (as_of of the run that recorded it)"
    return f"is a member of segment {name}"


def node_text(cond: m.Condition) -> str:
    """One condition node in words, without its children (`all of:`, `country is 'US'`)."""
    if isinstance(cond, m.AllCond):
        return "all of:" if cond.items else "always true (empty all)"
    if isinstance(cond, m.AnyCond):
        return "any of:" if cond.items else "never true (empty any)"
    if isinstance(cond, m.NotCond):
        return "not:"
    if isinstance(cond, m.AtLeastCond):
        if cond.n == 0:
            return f"always true (at least 0 of {len(cond.items)}):"
        return f"at least {cond.n} of these {len(cond.items)}:"
    if isinstance(cond, m.FieldCond):
        name = cond.column if cond.source is None else f"{cond.source}.{cond.column}"
        text = describe_test(name, cond.test)
        if cond.ever:
            text += ", now or at any committed run since its values are stored"
        return text
    if isinstance(cond, m.EventCond):
        return describe_event(cond)
    if isinstance(cond, m.SegmentRef):
        return describe_segment_ref(cond)
    if isinstance(cond, m.ScoreCond):
        return describe_test(f"score {cond.model}", cond.test)
    if isinstance(cond, m.ScoreChangeCond):
        return describe_test(f"change of score {cond.model} over {cond.over.text}", cond.test)
    if isinstance(cond, m.GradeCond):
        return describe_test(f"grade in model {cond.model}", cond.test)
    if isinstance(cond, m.SequenceCond):
        return describe_sequence(cond)
    if isinstance(cond, m.AccountCond):
        return describe_account(cond)
    if isinstance(cond, m.BucketCond):
        return f"falls in a stable {cond.percent:g}% bucket (salt {cond.salt!r})"
    raise NotImplementedError(type(cond).__name__)  # pragma: no cover


def describe(cond: m.Condition, indent: int = 0) -> list[str]:
    """The condition tree as indented lines of plain words."""
    lines = ["  " * indent + node_text(cond)]
    for c in graph.children(cond):
        lines += describe(c, indent + 1)
    return lines


def describe_segment(spec: m.Spec, name: str) -> list[str]:
    """A segment's definition in words: kind, rule, exclusions, cap, overrides, dependencies."""
    seg = spec.segments[name]
    lines = [f"segment {name} ({seg.kind})"]
    if seg.description:
        lines.append(f"  {seg.description}")
    if seg.from_file:
        lines.append(f"  members listed in {seg.from_file}")
    if seg.where is not None:
        lines.append("  matches contacts where:")
        lines += describe(seg.where, 2)
    if seg.exclude is not None:
        lines.append("  except those where:")
        lines += describe(seg.exclude, 2)
    if seg.top is not None:
        by = seg.top.by
        what = (
            f"field {by.field}"
            if by.field
            else f"score {by.score}"
            if by.score
            else f"change of score {by.change_model} over "
            f"{by.change_over.text if by.change_over else ''}"
        )
        cap = f"{seg.top.n}" if seg.top.n else f"{seg.top.percent:g}% (rounded up)"
        lines.append(f"  keeping the top {cap} by {what}, highest first, ties by key")
    if seg.include_file:
        lines.append(f"  plus everyone listed in {seg.include_file}")
    if seg.exclude_file:
        lines.append(f"  minus everyone listed in {seg.exclude_file} (this wins)")
    deps = graph.order(spec.segments, [name])[:-1]
    if deps:
        lines.append(f"  depends on: {', '.join(deps)} (evaluated first)")
    return lines
