"""Parsing, step 2: a leaf condition's operators and their values (eq, in, between, ...).

`Operators` checks each operator's value by the kind the language table gives it
(`segcli.spec.language.OPERATORS`: scalar, list, ordered, range, string, regex, bool,
duration, period) and builds the `model.Test` of a field, score or row filter. Unknown
operators get help from `OP_ALIASES`, the names users bring from other tools.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import polars as pl

from segcli.spec import codes
from segcli.spec import model as m
from segcli.spec.diagnostics import Reporter
from segcli.spec.language import OPERATOR
from segcli.spec.load import YNode
from segcli.spec.parse_values import Values, describe, hint

_REL = re.compile(r"^-(\d+)(h|d|w|mo|y)$")
# Operator names users bring from SQL, HubSpot or Mautic; difflib cannot guess these.
OP_ALIASES = {
    "=": "eq",
    "==": "eq",
    "equals": "eq",
    "is": "eq",
    "!=": "ne",
    "<>": "ne",
    "not_equals": "ne",
    "neq": "ne",
    "is_not": "ne",
    ">": "gt",
    "greater_than": "gt",
    ">=": "gte",
    "ge": "gte",
    "at_least": "gte",
    "<": "lt",
    "less_than": "lt",
    "<=": "lte",
    "le": "lte",
    "at_most": "lte",
    "one_of": "in",
    "none_of": "not_in",
    "like": "contains",
    "regex": "matches",
    "exists": "is_null",
    "empty": "is_null",
    "since": "within",
    "last": "within",
    "before": "older_than",
}


def op_hint(word: str, choices: tuple[str, ...]) -> str:
    """Help for an unknown operator: a known alias, a close spelling, or the list."""
    alias = OP_ALIASES.get(word.lower())
    if alias == "is_null":
        return "did you mean 'is_null'? (is_null: false matches rows that have a value)"
    if alias in choices:
        return f"did you mean '{alias}'?"
    return hint(word, choices) or f"operators: {', '.join(m.ALL_OPS)}"


class Operators:
    """Parses the operators of leaf conditions into `model.Test`s."""

    def __init__(self, r: Reporter, values: Values) -> None:
        self.r = r
        self.v = values

    def leaf_body(self, node: YNode, key: str, allowed: tuple[str, ...]) -> dict[str, YNode] | None:
        if not node.is_map:
            return None
        for k in node.value:
            if k not in allowed:
                code = codes.UNKNOWN_OPERATOR if k != key else codes.UNKNOWN_KEY
                self.r.err_key(code, f"unknown operator '{k}'", node, k, op_hint(str(k), allowed))
        return {k: v for k, v in node.value.items() if k in allowed and k != key}

    def test(
        self, parent: YNode, body: dict[str, YNode], what: str, *, require_op: bool
    ) -> m.Test | None:
        """Parse operators plus ignore_case / include_missing from a leaf's body."""
        ops: list[m.Op] = []
        ignore_case = False
        include_missing: bool | None = None
        ok = True
        for key, vnode in body.items():
            if key == "ignore_case":
                b = self.v.boolean(vnode, "ignore_case")
                ignore_case = bool(b)
                ok &= b is not None
            elif key == "include_missing":
                include_missing = self.v.boolean(vnode, "include_missing")
                ok &= include_missing is not None
            elif key in m.ALL_OPS:
                val = self.op_value(key, vnode)
                if val is _BAD:
                    ok = False
                else:
                    ops.append(m.Op(key, val))
        # An unknown operator was reported already: "needs an operator" would repeat it.
        unknown = parent.is_map and any(
            k not in body and k not in ("field", "column", "model", "over") for k in parent.value
        )
        if require_op and not ops and ok and not unknown:
            self.r.err(
                codes.MISSING_KEY,
                f"{what} needs an operator",
                parent,
                f"e.g. eq, in, gt, contains, within; all: {', '.join(m.ALL_OPS)}",
            )
            return None
        return m.Test(tuple(ops), ignore_case, include_missing) if ok else None

    def op_value(self, op: str, node: YNode) -> Any:
        """The operator's value, checked by its kind in the language table (or _BAD)."""
        v = node.value
        kind = OPERATOR[op].value
        if kind == "scalar":
            if _is_scalar(v):
                return v
            self.r.err(
                codes.WRONG_TYPE,
                f"{op} takes a single value, got {describe(v)}",
                node,
                "use in: [...] for several values" if node.is_list else None,
            )
            return _BAD
        if kind == "list":
            if not node.is_list:
                shown = v if isinstance(v, str | int | float) and not isinstance(v, bool) else "..."
                self.r.err(
                    codes.WRONG_TYPE,
                    f"{op} takes a list, got {describe(v)}",
                    node,
                    f"write {op}: [{shown}]",
                )
                return _BAD
            vals = [c.value for c in v]
            if not all(_is_scalar(x) and x is not None for x in vals):
                self.r.err(codes.WRONG_TYPE, f"{op} takes a list of non-null values", node)
                return _BAD
            return tuple(vals)
        if kind == "ordered":
            return self.order_value(op, node)
        if kind == "range":
            if not node.is_list or len(v) != 2:
                self.r.err(codes.WRONG_TYPE, "between takes a list [low, high]", node)
                return _BAD
            lo, hi = self.order_value(op, v[0]), self.order_value(op, v[1])
            if lo is _BAD or hi is _BAD:
                return _BAD
            return (lo, hi)
        if kind in ("string", "regex"):
            if not isinstance(v, str):
                self.r.err(codes.WRONG_TYPE, f"{op} takes a string, got {describe(v)}", node)
                return _BAD
            if kind == "regex":
                problem = _regex_problem(v)
                if problem:
                    self.r.err(
                        codes.BAD_VALUE,
                        f"bad regular expression {v!r}: {problem}",
                        node,
                        "the syntax is Rust's regex (no look-around, no backreferences); "
                        "escape special characters with a backslash",
                    )
                    return _BAD
            return v
        if kind == "bool":
            if not isinstance(v, bool):
                self.r.err(codes.WRONG_TYPE, f"{op} takes true or false, got {describe(v)}", node)
                return _BAD
            return v
        if kind == "duration":
            d = self.v.duration(node, op)
            return d if d is not None else _BAD
        if kind == "period":
            p = self.v.period(node)
            return p if p is not None else _BAD
        raise AssertionError(op)  # pragma: no cover - ops are checked before

    def order_value(self, op: str, node: YNode) -> Any:
        v = node.value
        if isinstance(v, bool) or v is None:
            self.r.err(
                codes.WRONG_TYPE, f"{op} takes a number, a date or a relative time, got {v!r}", node
            )
            return _BAD
        if isinstance(v, int | float | date | datetime):
            return v
        if isinstance(v, str):
            if _REL.match(v):
                d = self.v.duration(replace(node, value=v[1:]), op)
                return m.Relative(d) if d is not None else _BAD
            try:
                return datetime.fromisoformat(v) if "T" in v or " " in v else date.fromisoformat(v)
            except ValueError:
                pass
        self.r.err(
            codes.BAD_VALUE,
            f"bad value {v!r} for {op}",
            node,
            "a number, an ISO date/datetime (2026-01-31T09:00:00) or a relative time (-30d)",
        )
        return _BAD


_BAD = object()


def _regex_problem(pattern: str) -> str | None:
    """Why Polars (Rust regex, which is what runs) cannot compile `pattern`, or None."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    try:
        pl.select(pl.lit("").str.contains(pattern))
    except pl.exceptions.PolarsError as exc:
        # Rust's message ends with "error: <reason>" after an excerpt of the pattern.
        lines = [ln.strip() for ln in str(exc).splitlines()]
        reasons = [ln.removeprefix("error:").strip() for ln in lines if ln.startswith("error:")]
        return reasons[0] if reasons else "not supported by the regex engine"
    return None


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool | date | datetime)
