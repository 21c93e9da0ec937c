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
from segcli.spec import language as lang
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
        # The YAML nodes of the last test's column operands, in the order of its column_refs.
        self.operand_nodes: list[YNode] = []

    def leaf_body(self, node: YNode, key: str, allowed: tuple[str, ...]) -> dict[str, YNode] | None:
        if not node.is_map:
            return None
        for k in node.value:
            if k not in allowed:
                code = codes.UNKNOWN_OPERATOR if k != key else codes.UNKNOWN_KEY
                self.r.err_key(code, f"unknown operator '{k}'", node, k, op_hint(str(k), allowed))
        return {k: v for k, v in node.value.items() if k in allowed and k != key}

    def test(
        self,
        parent: YNode,
        body: dict[str, YNode],
        what: str,
        *,
        require_op: bool,
        columns: bool = False,
    ) -> m.Test | None:
        """Parse operators plus ignore_case / include_missing from a leaf's body; with
        `columns` (field leaves, `where:` rows) operator values may be column operands."""
        ops: list[m.Op] = []
        self.operand_nodes = []
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
                val = self.op_value(key, vnode, columns)
                if val is _BAD:
                    ok = False
                else:
                    ops.append(m.Op(key, val))
        # An unknown operator was reported already: "needs an operator" would repeat it.
        unknown = parent.is_map and any(
            k not in body and k not in ("field", "column", "model", "over", *lang.FIELD_OPTIONS)
            for k in parent.value
        )
        if require_op and not ops and ok and not unknown:
            self.r.err(
                codes.MISSING_KEY,
                f"{what} needs an operator",
                parent,
                f"e.g. eq, in, gt, contains, within; all: {', '.join(m.ALL_OPS)}",
            )
            return None
        test = m.Test(tuple(ops), ignore_case, include_missing)
        if ok and ignore_case and test.column_refs:
            self.r.err_key(
                codes.CONFLICT,
                "ignore_case applies to literal text, not to a comparison with a column",
                parent,
                "ignore_case",
                "compare the columns exactly, or drop ignore_case",
            )
            return None
        return test if ok else None

    def op_value(self, op: str, node: YNode, columns: bool = False) -> Any:
        """The operator's value, checked by its kind in the language table (or _BAD)."""
        v = node.value
        kind = OPERATOR[op].value
        if node.is_map and ("column" in v or "offset" in v):
            return self.column_operand(op, node, columns)
        if kind == "range" and node.is_list and len(v) == 2 and any(x.is_map for x in v):
            bounds = [
                self.column_operand(op, x, columns)
                if x.is_map and ("column" in x.value or "offset" in x.value)
                else self.order_value(op, x)
                for x in v
            ]
            return _BAD if _BAD in bounds else tuple(bounds)
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

    def column_operand(self, op: str, node: YNode, allowed: bool) -> Any:
        """`{column: C, offset: D}` as a ColumnRef (its source is split off by the caller)."""
        if not allowed or op not in m.COLUMN_OPS:
            where = (
                f"'{op}' takes a literal, not a column"
                if allowed
                else "a column operand is only allowed in field: leaves and where: rows"
            )
            self.r.err(
                codes.WRONG_TYPE,
                f"{where} (got {{column: ...}})",
                node,
                f"column operands work with {', '.join(m.COLUMN_OPS)} in field: and where:",
            )
            return _BAD
        body = self.v.mapping(node, f"{op}'s column operand", ("column", "offset"))
        if body is None:
            return _BAD
        if "column" not in body:
            self.r.err(
                codes.MISSING_KEY,
                "a column operand needs 'column'",
                node,
                f"e.g. {op}: {{column: trial_ends_at, offset: 14d}}",
            )
            return _BAD
        name = self.v.string(body["column"], "column")
        offset = self.v.offset(body["offset"], "offset") if "offset" in body else None
        if name is None or ("offset" in body and offset is None):
            return _BAD
        if len(body) != len(node.value):
            return _BAD  # an unknown key was reported
        self.operand_nodes.append(node)
        return m.ColumnRef(name, None, offset)

    def order_value(self, op: str, node: YNode) -> Any:
        v = node.value
        if isinstance(v, bool) or v is None or node.is_map or node.is_list:
            self.r.err(
                codes.WRONG_TYPE,
                f"{op} takes a number, a date or a relative time, got {describe(v)}",
                node,
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
