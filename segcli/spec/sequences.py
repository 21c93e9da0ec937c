"""Sequences (SPEC §2.6): the `sequence:` condition, parsed and resolved.

```yaml
sequence:
  steps: [{source: web, type: page_view}, {source: web, type: form_submit}]
  max_gap: 7d            # optional
  within: 30d            # optional, or during:
  same: [session_id]     # optional
  then_not: {step: {source: web, type: purchase}, wait: 1d}   # optional
```

Each step is like an event condition without a test: its sources, type and where are checked
as an event's are (recorded as `refs.EventUse`); a sequence also needs every step source to
declare `time:` (`refs.SequenceUse`), and every `same` column in each step source (`ColumnUse`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from segcli.spec import codes, refs
from segcli.spec import language as lang
from segcli.spec import model as m
from segcli.spec.diagnostics import Reporter
from segcli.spec.load import YNode
from segcli.spec.parse_values import Values, describe

SEQUENCE_KEYS = lang.names(lang.SEQUENCE)
STEP_KEYS = lang.names(lang.SEQ_STEP)
THEN_NOT_KEYS = lang.names(lang.THEN_NOT)


class RowFilters(Protocol):
    """What parsing a step needs of the condition parser: its `where:` reader."""

    def _row_filters(self, wnode: YNode | None) -> tuple[list[refs.RowFilter], bool]: ...


@dataclass
class SequenceParser:
    """Parses one `sequence:` condition; references go to `found`."""

    r: Reporter
    v: Values
    rows: RowFilters
    found: list[refs.Reference]

    def parse(self, node: YNode) -> m.SequenceCond | None:
        self.v.mapping(node, "sequence condition", ("sequence",))
        snode = node.value["sequence"]
        body = self.v.mapping(snode, "sequence", SEQUENCE_KEYS)
        if body is None:
            return None
        ok = True
        steps = self._steps(snode, body.get("steps"))
        ok &= steps is not None
        max_gap = None
        if "max_gap" in body:
            max_gap = self.exact(body["max_gap"], "max_gap")
            ok &= max_gap is not None
        window, window_ok = self.v.window(snode, body, "a sequence")
        ok &= window_ok
        same: tuple[str, ...] = ()
        if "same" in body:
            got = self.v.str_list(body["same"], "same")
            ok &= got is not None
            same = got or ()
        then_not, wait = None, None
        if "then_not" in body:
            parsed = self._then_not(body["then_not"])
            ok &= parsed is not None
            if parsed is not None:
                then_not, wait = parsed
        if steps is not None:
            for step, step_node in steps:
                self.found.append(refs.SequenceUse(step_node, step.sources))
            step_sources = dict.fromkeys(s for step, _ in steps for s in step.sources)
            for col in same:
                for s in step_sources:
                    self.found.append(refs.ColumnUse(body["same"], col, s, col))
        if not ok or steps is None:
            return None
        return m.SequenceCond(
            tuple(s for s, _ in steps), max_gap, window, same, then_not, wait, node.line
        )

    def exact(self, node: YNode, what: str) -> m.Duration | None:
        """A duration of exact length (h, d, w): gaps and waits between two rows' times."""
        d = self.v.duration(node, what)
        if d is not None and d.is_calendar:
            self.r.err(
                codes.BAD_VALUE,
                f"{what} must be an exact length, got the calendar step {d.text!r}",
                node,
                "use h, d or w, e.g. 30d",
            )
            return None
        return d

    def _steps(self, snode: YNode, lnode: YNode | None) -> list[tuple[m.SeqStep, YNode]] | None:
        if lnode is None:
            self.r.err(
                codes.MISSING_KEY,
                "sequence needs 'steps'",
                snode,
                "e.g. steps: [{source: web, type: cart}, {source: web, type: purchase}]",
            )
            return None
        if not lnode.is_list or len(lnode.value) < 2:
            got = f"{len(lnode.value)} step(s)" if lnode.is_list else describe(lnode.value)
            self.r.err(
                codes.WRONG_TYPE,
                f"sequence steps must be a list of 2 or more steps, got {got}",
                lnode,
                "each step is like an event condition without a test: {source, type, where}",
            )
            return None
        out = []
        for item in lnode.value:
            step = self.step(item, "step")
            if step is None:
                return None
            out.append((step, item))
        return out

    def step(self, node: YNode, what: str) -> m.SeqStep | None:
        """One step: source (required), type, where — an event condition without a test."""
        body = self.v.mapping(node, what, STEP_KEYS)
        if body is None:
            return None
        if "source" not in body:
            self.r.err(codes.MISSING_KEY, f"a sequence {what} needs 'source'", node)
            return None
        srcs = self.v.str_list(body["source"], "source")
        types = self.v.str_list(body["type"], "type") if "type" in body else None
        where, ok = self.rows._row_filters(body.get("where"))
        if srcs is None or ("type" in body and types is None) or not ok:
            return None
        self.found.append(
            refs.EventUse(
                body["source"], srcs, body.get("type"), None, tuple(where), "count", None, None
            )
        )
        conds = tuple(m.RowCond(f.column, f.test) for f in where)
        return m.SeqStep(srcs, types, conds)

    def _then_not(self, node: YNode) -> tuple[m.SeqStep, m.Duration] | None:
        body = self.v.mapping(node, "then_not", THEN_NOT_KEYS)
        if body is None:
            return None
        if "step" not in body or "wait" not in body:
            self.r.err(
                codes.MISSING_KEY,
                "then_not needs 'step' and 'wait'",
                node,
                "e.g. then_not: {step: {source: web, type: purchase}, wait: 1d}",
            )
            return None
        step = self.step(body["step"], "then_not step")
        wait = self.exact(body["wait"], "wait")
        if step is not None:
            self.found.append(refs.SequenceUse(body["step"], step.sources))
        if step is None or wait is None:
            return None
        return step, wait


def resolve_sequence(r: Reporter, use: refs.SequenceUse, sources: dict[str, m.Source]) -> None:
    """Every source a sequence orders by time declares `time:`."""
    for s in use.sources:
        src = sources.get(s)
        if src is not None and src.relation == "many" and src.time is None:
            r.err(
                codes.SOURCE_LACKS,
                f"a sequence orders rows by time: source '{s}' declares no `time:`",
                use.node,
                f"add `time: <column>` to source '{s}'",
            )
