"""Parsing the history options of SPEC §2.6: `segment:` leaves with `ever`, `member_for` or
`left`, and `ever: true` on a `field:` leaf.

They read the state's committed runs (segcli.state.history); here only their structure is
checked, with located diagnostics. The option keys and their operators are declared in
`segcli.spec.language` (SEGMENT_REF, MEMBER_FOR_OPS, LEFT_OPS), so the JSON Schema agrees.
"""

from __future__ import annotations

from segcli.spec import codes
from segcli.spec import language as lang
from segcli.spec import model as m
from segcli.spec.diagnostics import Reporter
from segcli.spec.load import YNode
from segcli.spec.parse_ops import Operators, op_hint
from segcli.spec.parse_values import Values, describe
from segcli.spec.typecheck import op_problem

# Operators whose meaning depends on as_of: a stored value would mean another instant at each
# run, so `ever: true` cannot take them (a located error, S015).
AS_OF_OPS = ("within", "older_than", "during")


def parse_ever(r: Reporter, values: Values, node: YNode, what: str) -> bool | None:
    """`ever: true` of a leaf (`what` names it); None after reporting a bad value. `ever:
    false` is refused: it reads like "never", which is `not: {..., ever: true}`."""
    b = values.boolean(node, "ever")
    if b is None:
        return None
    if not b:
        r.err(
            codes.BAD_VALUE,
            f"ever: false on {what} is not a history option",
            node,
            "drop it for the value now; write not: {..., ever: true} for 'never'",
        )
        return None
    return True


def check_field_ever(r: Reporter, node: YNode, test: m.Test) -> bool:
    """An `ever` field leaf compares stored values: no operator relative to as_of, and only
    its own column (no column operand, no offset: SPEC §2.6 leaves their history open)."""
    ok = True
    if test.column_refs or test.offset is not None:
        what = "a column operand" if test.column_refs else "offset"
        r.err_key(
            codes.CONFLICT,
            f"ever: true cannot be combined with {what}: only the leaf's own column is "
            "stored at each run",
            node,
            "ever",
            "compare with literals in an ever leaf",
        )
        ok = False
    for op in test.ops:
        relative = op.name in AS_OF_OPS or isinstance(op.value, m.Relative)
        if isinstance(op.value, tuple):
            relative |= any(isinstance(x, m.Relative) for x in op.value)
        if relative:
            shown = op.name if op.name in AS_OF_OPS else f"{op.name} with a relative time"
            r.err_key(
                codes.CONFLICT,
                f"ever: true cannot be combined with {shown}: a time relative to as_of "
                "is another instant at each run",
                node,
                op.name,
                "compare with a date literal (2026-01-31) instead",
            )
            ok = False
    return ok


class SegmentHistory:
    """The options of a `segment:` leaf beside its name."""

    def __init__(self, r: Reporter, values: Values, ops: Operators) -> None:
        self.r = r
        self.v = values
        self.ops = ops

    def parse(self, node: YNode, name: str) -> m.SegmentRef | None:
        """The reference with its history option (at most one); None after reporting."""
        body = node.value
        options = [k for k in lang.SEGMENT_HISTORY if k in body]
        if len(options) > 1:
            self.r.err(
                codes.CONFLICT,
                f"a segment condition takes one history option, got {', '.join(options)}",
                node,
                "combine several with all: [...]",
            )
            return None
        if not options:
            return m.SegmentRef(name, node.line)
        opt = options[0]
        what = f"segment '{name}'"
        if opt == "ever":
            ever = parse_ever(self.r, self.v, body["ever"], what)
            return m.SegmentRef(name, node.line, ever=True) if ever else None
        test = self._test(body[opt], opt)
        if test is None:
            return None
        if opt == "member_for":
            return m.SegmentRef(name, node.line, member_for=test)
        return m.SegmentRef(name, node.line, left=test)

    def _test(self, tnode: YNode, opt: str) -> m.Test | None:
        allowed = lang.MEMBER_FOR_OPS if opt == "member_for" else lang.LEFT_OPS
        example = "{gte: 30d}" if opt == "member_for" else "{within: 7d}"
        if not tnode.is_map or not tnode.value:
            self.r.err(
                codes.WRONG_TYPE,
                f"{opt} takes a mapping of operators, e.g. {example}, got {describe(tnode.value)}",
                tnode,
                f"operators: {', '.join(allowed)}",
            )
            return None
        ok = True
        for k in tnode.value:
            if k not in allowed:
                self.r.err_key(
                    codes.UNKNOWN_OPERATOR,
                    f"{opt} does not take operator '{k}'",
                    tnode,
                    str(k),
                    op_hint(str(k), allowed) + f" ({opt} takes: {', '.join(allowed)})",
                )
                ok = False
        if not ok:
            return None
        if opt == "member_for":
            return self._durations(tnode)
        test = self.ops.test(tnode, dict(tnode.value), "left", require_op=True)
        if test is None:
            return None
        for op in test.ops:
            problem = op_problem(op, "time", "datetime", "the time of leaving")
            if problem:
                self.r.err(codes.TYPE_MISMATCH, problem, tnode.value[op.name])
                ok = False
        return test if ok else None

    def _durations(self, tnode: YNode) -> m.Test | None:
        """member_for's operators compare the stay's length with durations; `between [a, b]`
        is kept as gte a and lte b (both inclusive)."""
        ops: list[m.Op] = []
        ok = True
        for k, vnode in tnode.value.items():
            if k == "between":
                if not vnode.is_list or len(vnode.value) != 2:
                    self.r.err(codes.WRONG_TYPE, "between takes a list [low, high]", vnode)
                    ok = False
                    continue
                lo, hi = (self.v.duration(x, "member_for") for x in vnode.value)
                if lo is None or hi is None:
                    ok = False
                    continue
                ops += [m.Op("gte", lo), m.Op("lte", hi)]
                continue
            d = self.v.duration(vnode, f"member_for.{k}")
            if d is None:
                ok = False
            else:
                ops.append(m.Op(str(k), d))
        return m.Test(tuple(ops)) if ok else None
