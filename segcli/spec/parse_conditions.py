"""Parsing, step 3: conditions (field, event, segment, score, bucket and their combinations).

`Conditions` turns a condition's YNode into a `model.Condition`: the boolean combinators,
field/segment/score/bucket leaves, and event conditions with their sources, windows, row
filters and aggregates. It checks structure only: the names, columns and types it meets are
recorded as `refs` for `resolve` to check. Operators and their values are `parse_ops`'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from segcli.spec import codes, refs
from segcli.spec import language as lang
from segcli.spec import model as m
from segcli.spec.cadence import parse_regularly
from segcli.spec.diagnostics import Reporter
from segcli.spec.grades import parse_grade_cond
from segcli.spec.history import SegmentHistory, check_field_ever, parse_ever
from segcli.spec.load import YNode
from segcli.spec.parse_ops import Operators, op_hint
from segcli.spec.parse_values import Values, describe, hint, split_field
from segcli.spec.per import parse_per
from segcli.spec.sequences import SequenceParser
from segcli.spec.typecheck import op_problem

COND_KEYS = tuple(lang.CONDITIONS)
LEAF_SWITCHES = lang.LEAF_SWITCHES
FIELD_OPTIONS = lang.FIELD_OPTIONS
EVENT_KEYS = lang.names(lang.EVENT)
BUCKET_KEYS = lang.names(lang.BUCKET)
ACCOUNT_KEYS = lang.names(lang.ACCOUNT)
AT_LEAST_KEYS = lang.names(lang.AT_LEAST)


def kinds_node(body: dict[str, YNode], per: m.Per | None) -> YNode | None:
    """The `has` (else `lacks`) node of a per condition that lists a type: it needs the
    sources' `type:` column. An empty list asks nothing of the rows, so needs nothing."""
    if per is None:
        return None
    if per.has:
        return body["has"]
    return body["lacks"] if per.lacks else None


class Conditions:
    """Parses conditions; `condition` dispatches on the kind to `cond_<kind>`."""

    def __init__(self, r: Reporter, values: Values, found: list[refs.Reference]) -> None:
        self.r = r
        self.v = values
        self.ops = Operators(r, values)
        self.found = found  # references for resolve to check
        self.declared_sources: tuple[str, ...] = ()  # set once `sources:` is read
        # contacts' `account:` column, and whether contacts parsed (set once sources are read)
        self.account_column: str | None = None
        self.contacts_ok = False

    def condition(self, node: YNode) -> m.Condition | None:
        """Parse one condition; returns None (with diagnostics) when it is malformed."""
        if not node.is_map:
            self.r.err(
                codes.WRONG_TYPE,
                f"a condition must be a mapping, got {describe(node.value)}",
                node,
                f"start with one of: {', '.join(COND_KEYS)}",
            )
            return None
        if not node.value:
            self.r.err(
                codes.MISSING_KEY,
                "a condition cannot be empty",
                node,
                f"start with one of: {', '.join(COND_KEYS)}",
            )
            return None
        kinds = [k for k in node.value if k in COND_KEYS]
        if len(kinds) != 1:
            if not kinds:
                first = next(iter(node.value), "")
                self.r.err_key(
                    codes.UNKNOWN_KEY,
                    f"unknown condition '{first}'",
                    node,
                    first,
                    hint(first, COND_KEYS) or f"one of: {', '.join(COND_KEYS)}",
                )
            else:
                self.r.err(
                    codes.CONFLICT,
                    f"a condition has exactly one kind, got {', '.join(kinds)}",
                    node,
                    "combine several with all: [...] or any: [...]",
                )
            return None
        kind = kinds[0]
        handler: Callable[[YNode], m.Condition | None] = getattr(self, f"cond_{kind}")
        return handler(node)

    def _list_of_conditions(
        self, node: YNode, key: str, *, whole: bool = True
    ) -> tuple[m.Condition, ...] | None:
        """The list of conditions under `key` of `node` (`whole`: `key` is node's only key)."""
        if whole:
            self.v.mapping(node, key, (key,))
        inner = node.value[key]
        if not inner.is_list:
            self.r.err(
                codes.WRONG_TYPE,
                f"{key} takes a list of conditions, got {describe(inner.value)}",
                inner,
            )
            return None
        items = [self.condition(c) for c in inner.value]
        if any(i is None for i in items):
            return None
        return tuple(i for i in items if i is not None)

    def cond_all(self, node: YNode) -> m.Condition | None:
        items = self._list_of_conditions(node, "all")
        return m.AllCond(items) if items is not None else None

    def cond_any(self, node: YNode) -> m.Condition | None:
        items = self._list_of_conditions(node, "any")
        return m.AnyCond(items) if items is not None else None

    def cond_not(self, node: YNode) -> m.Condition | None:
        self.v.mapping(node, "not", ("not",))
        inner = self.condition(node.value["not"])
        return m.NotCond(inner) if inner is not None else None

    def cond_at_least(self, node: YNode) -> m.Condition | None:
        """`at_least: {n: N, of: [c, ...]}` (SPEC §2.6): n an integer 0 ... len(of)."""
        self.v.mapping(node, "at_least condition", ("at_least",))
        anode = node.value["at_least"]
        body = self.v.mapping(anode, "at_least", AT_LEAST_KEYS)
        if body is None:
            return None
        missing = [k for k in AT_LEAST_KEYS if k not in body]
        if missing:
            self.r.err(
                codes.MISSING_KEY,
                f"at_least needs {' and '.join(repr(k) for k in missing)}",
                anode,
                "e.g. at_least: {n: 2, of: [{field: a, eq: 1}, {field: b, eq: 2}]}",
            )
            return None
        n = self.v.integer(body["n"], "at_least.n", 0)
        items = self._list_of_conditions(anode, "of", whole=False)
        if n is None or items is None:
            return None
        if n > len(items):
            self.r.err(
                codes.BAD_VALUE,
                f"at_least.n ({n}) cannot exceed the number of conditions in of ({len(items)})",
                body["n"],
                "lower n, or add conditions to of",
            )
            return None
        return m.AtLeastCond(n, items)

    def cond_segment(self, node: YNode) -> m.Condition | None:
        self.v.mapping(node, "segment condition", ("segment", *lang.SEGMENT_HISTORY))
        name = self.v.string(node.value["segment"], "segment")
        if name is None:
            return None
        self.found.append(refs.SegmentUse(node.value["segment"], name))
        return SegmentHistory(self.r, self.v, self.ops).parse(node, name)

    def cond_bucket(self, node: YNode) -> m.Condition | None:
        self.v.mapping(node, "bucket condition", ("bucket",))
        body = self.v.mapping(node.value["bucket"], "bucket", BUCKET_KEYS)
        if body is None:
            return None
        if "percent" not in body or "salt" not in body:
            self.r.err(codes.MISSING_KEY, "bucket needs percent and salt", node.value["bucket"])
            return None
        pct = self.v.number(body["percent"], "bucket.percent")
        salt = body["salt"].value
        if pct is not None and not 0 <= pct <= 100:
            self.r.err(
                codes.BAD_VALUE, f"bucket.percent must be in [0, 100], got {pct}", body["percent"]
            )
            return None
        if pct is None:
            return None
        return m.BucketCond(pct, str(salt))

    def cond_field(self, node: YNode) -> m.Condition | None:
        allowed = ("field", "ever", *m.ALL_OPS, *LEAF_SWITCHES, *FIELD_OPTIONS)
        body = self.ops.leaf_body(node, "field", allowed)
        name = self.v.string(node.value["field"], "field")
        if name is None or body is None:
            return None
        source, column = split_field(name, self.declared_sources)
        offset_node = body.pop("offset", None)
        offset = self.v.offset(offset_node, "offset") if offset_node is not None else None
        test = self.ops.test(node, body, f"field '{name}'", require_op=True, columns=True)
        if test is not None:
            test = self._split_operands(replace(test, offset=offset))
        operands = tuple(self.ops.operand_nodes)
        self.found.append(
            refs.FieldUse(node.value["field"], name, source, column, test, offset_node, operands)
        )
        if source == "contacts":
            source = None
        if offset_node is not None and offset is None:
            return None
        ever = False
        if "ever" in body:
            parsed = parse_ever(self.r, self.v, body["ever"], f"field '{name}'")
            if parsed is None or (test is not None and not check_field_ever(self.r, node, test)):
                return None
            ever = True
        return m.FieldCond(column, source, test, node.line, ever) if test else None

    def _split_operands(self, test: m.Test) -> m.Test:
        """A field leaf's column operands name contacts columns or SOURCE.COL."""

        def split(v: object) -> object:
            if not isinstance(v, m.ColumnRef):
                return v
            source, column = split_field(v.column, self.declared_sources)
            return m.ColumnRef(column, None if source == "contacts" else source, v.offset)

        ops = []
        for op in test.ops:
            value = op.value
            if isinstance(value, tuple):
                ops.append(m.Op(op.name, tuple(split(x) for x in value)))  # type: ignore[misc]
            else:
                ops.append(m.Op(op.name, split(value)))  # type: ignore[arg-type]
        return replace(test, ops=tuple(ops))

    def cond_event(self, node: YNode) -> m.Condition | None:
        self.v.mapping(node, "event condition", ("event",))
        enode = node.value["event"]
        body = self.v.mapping(enode, "event", EVENT_KEYS)
        if body is None:
            return None
        if "source" not in body:
            self.r.err(codes.MISSING_KEY, "event needs 'source'", enode)
            return None
        srcs = self.v.str_list(body["source"], "source")
        if srcs is None:
            return None
        ok = True
        types = self.v.str_list(body["type"], "type") if "type" in body else None
        window, ok = self.v.window(enode, body, "an event")
        where, where_ok = self._row_filters(body.get("where"))
        ok &= where_ok
        aggs = [k for k in m.AGG_KINDS if k in body]
        agg, column, test = "count", None, m.Test((m.Op("gte", 1),))
        column_node = None
        if len(aggs) > 1:
            self.r.err(codes.CONFLICT, f"an event takes one test, got {', '.join(aggs)}", enode)
            ok = False
        elif aggs:
            agg = aggs[0]
            parsed = self._aggregate(agg, body[agg])
            if parsed is None:
                return None
            test, column_node, column = parsed
        regularly = None
        if "regularly" in body:
            if aggs:
                self.r.err(
                    codes.CONFLICT,
                    f"an event takes regularly or a test, not both (got {', '.join(aggs)})",
                    enode,
                    "regularly is the event's test: drop the other one",
                )
                ok = False
            regularly = parse_regularly(self.r, self.v, body["regularly"])
            ok &= regularly is not None
        per, per_ok = parse_per(self.r, self.v, enode, body, aggs, types)
        ok &= per_ok
        self.found.append(
            refs.EventUse(
                body["source"],
                srcs,
                body.get("type"),
                body.get("within") or body.get("during") or body.get("regularly"),
                tuple(where),
                agg,
                column_node,
                column,
                body.get("per") if per is not None else None,
                per.column if per is not None else None,
                kinds_node(body, per),
            )
        )
        if not ok:
            return None
        conds = tuple(m.RowCond(f.column, f.test) for f in where)
        return m.EventCond(srcs, types, conds, window, agg, column, test, node.line, regularly, per)

    def _row_filters(self, wnode: YNode | None) -> tuple[list[refs.RowFilter], bool]:
        if wnode is None:
            return [], True
        if not wnode.is_map:
            self.r.err(codes.WRONG_TYPE, "where takes a mapping of column: {operators}", wnode)
            return [], False
        out: list[refs.RowFilter] = []
        ok = True
        allowed = (*m.ALL_OPS, *LEAF_SWITCHES)
        for col, cnode in wnode.value.items():
            if not cnode.is_map:
                self.r.err(
                    codes.WRONG_TYPE,
                    f"where.{col} takes a mapping of operators, e.g. {{eq: x}}",
                    cnode,
                )
                ok = False
                continue
            for k in cnode.value:
                if k not in allowed:
                    self.r.err_key(
                        codes.UNKNOWN_OPERATOR,
                        f"unknown operator '{k}'",
                        cnode,
                        k,
                        op_hint(str(k), allowed),
                    )
                    ok = False
            body = {k: v for k, v in cnode.value.items() if k in allowed}
            t = self.ops.test(cnode, body, f"where.{col}", require_op=True, columns=True)
            if t is None:
                ok = False
            else:
                out.append(refs.RowFilter(cnode, col, t, tuple(self.ops.operand_nodes)))
        return out, ok

    def _aggregate(
        self, agg: str, tnode: YNode, label: str = "an event's"
    ) -> tuple[m.Test, YNode | None, str | None] | None:
        """An event's test: its operators, and its column node and name when it takes one."""
        spec = lang.AGGREGATE[agg]
        allowed: tuple[str, ...] = (*m.ALL_OPS, *LEAF_SWITCHES)
        if spec.column:
            allowed = ("column", *allowed)
        tbody = self.ops.leaf_body(tnode, "column", allowed) if tnode.is_map else None
        if tbody is None:
            self.r.err(
                codes.WRONG_TYPE, f"{agg} takes a mapping of operators, e.g. {{gte: 3}}", tnode
            )
            return None
        column_node, column = None, None
        if spec.column:
            if "column" not in tnode.value:
                self.r.err(codes.MISSING_KEY, f"{agg} needs 'column'", tnode)
                return None
            column_node = tnode.value["column"]
            column = self.v.string(column_node, "column")
        t = self.ops.test(tnode, tbody, agg, require_op=True)
        if t is None:
            return None
        tname = "datetime" if spec.result == "time" else "float"
        for op in t.ops:
            problem = op_problem(op, spec.result, tname, f"{label} {agg}")
            if problem:
                self.r.err(codes.TYPE_MISMATCH, problem, tnode)
        return t, (column_node if column is not None else None), column

    def cond_score(self, node: YNode) -> m.Condition | None:
        self.v.mapping(node, "score condition", ("score",))
        snode = node.value["score"]
        body = self.ops.leaf_body(snode, "model", ("model", *m.ALL_OPS, *LEAF_SWITCHES))
        if body is None or "model" not in snode.value:
            self.r.err(codes.MISSING_KEY, "score needs model and operators", snode)
            return None
        model = self._model_ref(snode.value["model"])
        test = self.ops.test(snode, body, "score", require_op=True)
        return m.ScoreCond(model, test, node.line) if model and test else None

    def cond_score_change(self, node: YNode) -> m.Condition | None:
        self.v.mapping(node, "score_change condition", ("score_change",))
        snode = node.value["score_change"]
        body = self.ops.leaf_body(snode, "model", ("model", "over", *m.ALL_OPS, *LEAF_SWITCHES))
        if body is None or "model" not in snode.value or "over" not in snode.value:
            self.r.err(codes.MISSING_KEY, "score_change needs model, over and operators", snode)
            return None
        model = self._model_ref(snode.value["model"])
        over = self.v.duration(snode.value["over"], "over")
        body.pop("over", None)
        test = self.ops.test(snode, body, "score_change", require_op=True)
        if model and over and test:
            return m.ScoreChangeCond(model, over, test, node.line)
        return None

    def cond_grade(self, node: YNode) -> m.Condition | None:
        cond, use = parse_grade_cond(self.r, self.v, self.ops, node)
        if use is not None:
            self.found.append(use)
        return cond

    def cond_account(self, node: YNode) -> m.Condition | None:
        """`account: {where, count, others}` (SPEC §2.7): needs contacts' `account:` column."""
        self.v.mapping(node, "account condition", ("account",))
        anode = node.value["account"]
        body = self.v.mapping(anode, "account", ACCOUNT_KEYS)
        if body is None:
            return None
        ok = True
        if self.account_column is None and self.contacts_ok:
            self.r.err(
                codes.SOURCE_LACKS,
                "an account condition needs the contacts source to declare its account column",
                anode,
                "add `account: <column>` to sources.contacts, e.g. account: company_id",
            )
            ok = False
        if "where" not in body:
            self.r.err(
                codes.MISSING_KEY,
                "account needs 'where': the condition its other contacts are counted by",
                anode,
                "e.g. account: {where: {segment: hard_bounced}}",
            )
            return None
        where = self.condition(body["where"])
        test = m.Test((m.Op("gte", 1),))
        if "count" in body:
            parsed = self._aggregate("count", body["count"], "an account's")
            ok &= parsed is not None
            if parsed is not None:
                test = parsed[0]
        others = True
        if "others" in body:
            flag = self.v.boolean(body["others"], "account.others")
            ok &= flag is not None
            others = flag if flag is not None else True
        if where is None or not ok or self.account_column is None:
            return None
        return m.AccountCond(where, test, others, self.account_column, node.line)

    def cond_sequence(self, node: YNode) -> m.Condition | None:
        return SequenceParser(self.r, self.v, self, self.found).parse(node)

    def _model_ref(self, node: YNode) -> str | None:
        name = self.v.string(node, "model")
        if name is not None:
            self.found.append(refs.ModelUse(node, name))
        return name
