"""Parse conditions (field, event, segment, score, bucket and their combinations).

`ConditionParser` turns a condition's YNode into a `model.Condition`: the boolean
combinators, field/segment/score/bucket leaves, and event conditions with their sources,
windows, row filters and aggregates. Operators and their values are `validate_operators`'.
"""

from __future__ import annotations

from collections.abc import Callable

from segcli.spec import codes
from segcli.spec import model as m
from segcli.spec.load import YNode
from segcli.spec.typecheck import category, op_problem, type_name
from segcli.spec.validate_base import _tname, hint, known
from segcli.spec.validate_operators import OperatorParser, op_hint

COND_KEYS = ("all", "any", "not", "field", "event", "segment", "score", "score_change", "bucket")
LEAF_SWITCHES = ("ignore_case", "include_missing")
EVENT_KEYS = ("source", "type", "where", "within", "during", *m.AGG_KINDS)


class ConditionParser(OperatorParser):
    """Parses conditions; `condition` dispatches on the kind to `cond_<kind>`."""

    def condition(self, node: YNode) -> m.Condition | None:
        """Parse one condition; returns None (with diagnostics) when it is malformed."""
        if not node.is_map:
            self.err(
                codes.WRONG_TYPE,
                f"a condition must be a mapping, got {_tname(node.value)}",
                node,
                f"start with one of: {', '.join(COND_KEYS)}",
            )
            return None
        if not node.value:
            self.err(
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
                self.err_key(
                    codes.UNKNOWN_KEY,
                    f"unknown condition '{first}'",
                    node,
                    first,
                    hint(first, COND_KEYS) or f"one of: {', '.join(COND_KEYS)}",
                )
            else:
                self.err(
                    codes.CONFLICT,
                    f"a condition has exactly one kind, got {', '.join(kinds)}",
                    node,
                    "combine several with all: [...] or any: [...]",
                )
            return None
        kind = kinds[0]
        handler: Callable[[YNode], m.Condition | None] = getattr(self, f"cond_{kind}")
        return handler(node)

    def _list_of_conditions(self, node: YNode, key: str) -> tuple[m.Condition, ...] | None:
        self.mapping(node, key, (key,))
        inner = node.value[key]
        if not inner.is_list:
            self.err(
                codes.WRONG_TYPE,
                f"{key} takes a list of conditions, got {_tname(inner.value)}",
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
        self.mapping(node, "not", ("not",))
        inner = self.condition(node.value["not"])
        return m.NotCond(inner) if inner is not None else None

    def cond_segment(self, node: YNode) -> m.Condition | None:
        self.mapping(node, "segment condition", ("segment",))
        name = self.string(node.value["segment"], "segment")
        if name is None:
            return None
        if name not in self.segment_names:
            self.err(
                codes.UNKNOWN_SEGMENT,
                f"unknown segment '{name}'",
                node.value["segment"],
                known(name, self.segment_names, "segments"),
            )
            return None
        return m.SegmentRef(name, node.line)

    def cond_bucket(self, node: YNode) -> m.Condition | None:
        self.mapping(node, "bucket condition", ("bucket",))
        body = self.mapping(node.value["bucket"], "bucket", ("percent", "salt"))
        if body is None:
            return None
        if "percent" not in body or "salt" not in body:
            self.err(codes.MISSING_KEY, "bucket needs percent and salt", node.value["bucket"])
            return None
        pct = self.number(body["percent"], "bucket.percent")
        salt = body["salt"].value
        if pct is not None and not 0 <= pct <= 100:
            self.err(
                codes.BAD_VALUE, f"bucket.percent must be in [0, 100], got {pct}", body["percent"]
            )
            return None
        if pct is None:
            return None
        return m.BucketCond(pct, str(salt))

    def cond_field(self, node: YNode) -> m.Condition | None:
        allowed = ("field", *m.ALL_OPS, *LEAF_SWITCHES)
        body = self._leaf_body(node, "field", allowed)
        name = self.string(node.value["field"], "field")
        if name is None or body is None:
            return None
        source = None
        column = name
        if "." in name:
            source, column = name.split(".", 1)
            if source not in self.source_names:
                if source not in self.declared_sources:
                    self.err(
                        codes.UNKNOWN_SOURCE,
                        f"unknown source '{source}' in field '{name}'",
                        node.value["field"],
                        known(source, self.source_names, "sources"),
                    )
                return None
            src = self.sources_by_name[source]
            if src.relation != "one" and source != "contacts":
                self.err(
                    codes.SOURCE_LACKS,
                    f"field '{name}' needs source '{source}' to be relation: one",
                    node.value["field"],
                    "use an event condition for relation: many sources",
                )
                return None
            if source == "contacts":
                source = None
        test = self.test(node, body, f"field '{name}'", require_op=True)
        self.check_column(node.value["field"], source or "contacts", column, test, name)
        return m.FieldCond(column, source, test, node.line) if test else None

    def cond_event(self, node: YNode) -> m.Condition | None:
        self.mapping(node, "event condition", ("event",))
        enode = node.value["event"]
        body = self.mapping(enode, "event", EVENT_KEYS)
        if body is None:
            return None
        if "source" not in body:
            self.err(codes.MISSING_KEY, "event needs 'source'", enode)
            return None
        srcs = self.str_list(body["source"], "source")
        if srcs is None:
            return None
        ok = True
        for s in srcs:
            if s not in self.source_names:
                if s not in self.declared_sources:
                    self.err(
                        codes.UNKNOWN_SOURCE,
                        f"unknown source '{s}'",
                        body["source"],
                        known(s, self.source_names, "sources"),
                    )
                ok = False
            elif self.sources_by_name[s].relation != "many":
                self.err(
                    codes.SOURCE_LACKS,
                    f"event conditions need a relation: many source, '{s}' is "
                    f"{'the contacts table' if s == 'contacts' else 'relation: one'}",
                    body["source"],
                    "use field: SOURCE.COLUMN for relation: one sources",
                )
                ok = False
        types = None
        if "type" in body:
            types = self.str_list(body["type"], "type")
            for s in srcs:
                if s in self.sources_by_name and self.sources_by_name[s].type is None:
                    self.err(
                        codes.SOURCE_LACKS,
                        f"event type filter needs source '{s}' to declare `type:`",
                        body["type"],
                        f"add `type: <column>` to source '{s}'",
                    )
                    ok = False
        window = None
        if "within" in body and "during" in body:
            self.err(codes.CONFLICT, "an event takes within or during, not both", enode)
            ok = False
        elif "within" in body or "during" in body:
            if "within" in body:
                d = self.duration(body["within"], "within")
                window = m.Window(within=d) if d else None
            else:
                p = self.period(body["during"])
                window = m.Window(during=p) if p else None
            ok &= window is not None
            for s in srcs:
                if s in self.sources_by_name and self.sources_by_name[s].time is None:
                    self.err(
                        codes.SOURCE_LACKS,
                        f"a time window needs source '{s}' to declare `time:`",
                        body.get("within") or body["during"],
                        f"add `time: <column>` to source '{s}'",
                    )
                    ok = False
        where: list[m.RowCond] = []
        if "where" in body:
            wnode = body["where"]
            if not wnode.is_map:
                self.err(codes.WRONG_TYPE, "where takes a mapping of column: {operators}", wnode)
                ok = False
            else:
                for col, cnode in wnode.value.items():
                    if not cnode.is_map:
                        self.err(
                            codes.WRONG_TYPE,
                            f"where.{col} takes a mapping of operators, e.g. {{eq: x}}",
                            cnode,
                        )
                        ok = False
                        continue
                    for k in cnode.value:
                        if k not in (*m.ALL_OPS, *LEAF_SWITCHES):
                            self.err_key(
                                codes.UNKNOWN_OPERATOR,
                                f"unknown operator '{k}'",
                                cnode,
                                k,
                                op_hint(str(k), (*m.ALL_OPS, *LEAF_SWITCHES)),
                            )
                            ok = False
                    t = self.test(
                        cnode,
                        {k: v for k, v in cnode.value.items() if k in (*m.ALL_OPS, *LEAF_SWITCHES)},
                        f"where.{col}",
                        require_op=True,
                    )
                    if t is None:
                        ok = False
                    else:
                        where.append(m.RowCond(col, t))
                        for s in srcs:
                            self.check_column(cnode, s, col, t)
        aggs = [k for k in m.AGG_KINDS if k in body]
        agg, column, test = "count", None, m.Test((m.Op("gte", 1),))
        if len(aggs) > 1:
            self.err(codes.CONFLICT, f"an event takes one test, got {', '.join(aggs)}", enode)
            ok = False
        elif aggs:
            agg = aggs[0]
            tnode = body[agg]
            allowed = (*m.ALL_OPS, *LEAF_SWITCHES)
            if agg in m.AGG_WITH_COLUMN:
                allowed = ("column", *allowed)
            tbody = self._leaf_body(tnode, "column", allowed) if tnode.is_map else None
            if tbody is None:
                self.err(
                    codes.WRONG_TYPE, f"{agg} takes a mapping of operators, e.g. {{gte: 3}}", tnode
                )
                return None
            if agg in m.AGG_WITH_COLUMN:
                if "column" not in tnode.value:
                    self.err(codes.MISSING_KEY, f"{agg} needs 'column'", tnode)
                    return None
                column = self.string(tnode.value["column"], "column")
            t = self.test(tnode, tbody, agg, require_op=True)
            if t is None:
                return None
            test = t
            if column is not None:
                for s in srcs:
                    self.check_column(tnode.value["column"], s, column, None)
                    dt = self.schemas.get(s, {}).get(column)
                    if agg != "distinct" and dt is not None and category(dt) != "number":
                        self.err(
                            codes.TYPE_MISMATCH,
                            f"{agg} needs a numeric column, but column '{column}' of source "
                            f"'{s}' has type {type_name(dt)}",
                            tnode.value["column"],
                        )
            cat = "time" if agg in ("last", "first") else "number"
            for op in t.ops:
                tname = "datetime" if cat == "time" else "float"
                problem = op_problem(op, cat, tname, f"an event's {agg}")
                if problem:
                    self.err(codes.TYPE_MISMATCH, problem, tnode)
        if not ok:
            return None
        return m.EventCond(srcs, types, tuple(where), window, agg, column, test, node.line)

    def cond_score(self, node: YNode) -> m.Condition | None:
        self.mapping(node, "score condition", ("score",))
        snode = node.value["score"]
        body = self._leaf_body(snode, "model", ("model", *m.ALL_OPS, *LEAF_SWITCHES))
        if body is None or "model" not in snode.value:
            self.err(codes.MISSING_KEY, "score needs model and operators", snode)
            return None
        model = self._model_ref(snode.value["model"])
        test = self.test(snode, body, "score", require_op=True)
        return m.ScoreCond(model, test, node.line) if model and test else None

    def cond_score_change(self, node: YNode) -> m.Condition | None:
        self.mapping(node, "score_change condition", ("score_change",))
        snode = node.value["score_change"]
        body = self._leaf_body(snode, "model", ("model", "over", *m.ALL_OPS, *LEAF_SWITCHES))
        if body is None or "model" not in snode.value or "over" not in snode.value:
            self.err(codes.MISSING_KEY, "score_change needs model, over and operators", snode)
            return None
        model = self._model_ref(snode.value["model"])
        over = self.duration(snode.value["over"], "over")
        body.pop("over", None)
        test = self.test(snode, body, "score_change", require_op=True)
        if model and over and test:
            return m.ScoreChangeCond(model, over, test, node.line)
        return None

    def _model_ref(self, node: YNode) -> str | None:
        name = self.string(node, "model")
        if name is not None and name not in self.model_names:
            self.err(
                codes.UNKNOWN_MODEL,
                f"unknown scoring model '{name}'",
                node,
                known(name, self.model_names, "scoring models"),
            )
            return None
        return name
