"""Resolving: names, columns and types against the spec's declarations and the sources' schemas,
then the segment graph and its cycles.

`resolve` takes what `parse` built and the references it recorded, reads each source's schema
(a CSV header or a Parquet schema, never rows), and reports through the same `Reporter`: unknown
segments, models, sources and columns, operators that do not fit a column's type, sources that
lack a `time:` or `type:` column a condition needs, and every reference cycle. Problems with the
data itself (a missing file or key column, a list file that is not a regular file) are returned
as one `DataError`, raised by the caller only once the spec itself is valid.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from segcli.errors import DataError
from segcli.spec import codes, refs
from segcli.spec import language as lang
from segcli.spec import model as m
from segcli.spec.diagnostics import Reporter
from segcli.spec.grades import GradeUse, resolve_grade
from segcli.spec.graph import find_cycles
from segcli.spec.load import YNode
from segcli.spec.parse import Parsed
from segcli.spec.parse_values import file_problem, hint, known
from segcli.spec.sequences import resolve_sequence
from segcli.spec.typecheck import category, op_problem, type_name

SchemaOf = Callable[[m.Source], dict[str, pl.DataType]]


def resolve(parsed: Parsed, r: Reporter, base_dir: Path, schema_of: SchemaOf | None) -> str | None:
    """Check every reference of `parsed`; return the data problems (None when there are none).

    Without `schema_of` no file is read: columns, types and list files go unchecked.
    """
    res = _Resolver(parsed, r)
    problems: list[str] = []
    if schema_of is not None and "contacts" in parsed.sources:
        problems += res.load_schemas(schema_of)
    for ref in parsed.found:
        res.check(ref)
    for cycle in find_cycles(parsed.segments):
        assert parsed.segments_node is not None  # the segments came from it
        r.err_key(
            codes.CYCLE,
            "segment reference cycle: " + " -> ".join(cycle),
            parsed.segments_node,
            cycle[0],
            "a segment cannot depend on itself, directly or through others",
        )
    if schema_of is not None:
        problems += list_file_problems(parsed.segments, base_dir)
    return "\n".join(problems) if problems else None


def list_file_problems(segments: dict[str, m.Segment], base_dir: Path) -> list[str]:
    """Missing list files, and anything that is not a regular file (a FIFO would block)."""
    out = []
    for seg in segments.values():
        for key in lang.LIST_FILES:
            rel = getattr(seg, key)
            if rel is None:
                continue
            problem = file_problem(base_dir / rel)
            if problem:
                out.append(f"segment '{seg.name}': {key} {rel} {problem}")
    return out


class _Resolver:
    def __init__(self, parsed: Parsed, r: Reporter) -> None:
        self.p = parsed
        self.r = r
        self.sources = parsed.sources
        self.source_names = tuple(parsed.sources)
        self.schemas: dict[str, dict[str, pl.DataType]] = {}

    def load_schemas(self, schema_of: SchemaOf) -> list[str]:
        """Read every source's schema; missing key/time/type/dedupe columns are data problems."""
        problems = []
        for name, src in self.sources.items():
            try:
                schema = schema_of(src)
            except DataError as exc:  # report every unreadable source, not just the first
                problems.append(exc.message)
                continue
            self.schemas[name] = schema
            for what, col in (("key", src.key), ("time", src.time), ("type", src.type)):
                if col is not None and col not in schema:
                    problems.append(_missing(name, what, col, schema))
            for col in src.dedupe:
                if col not in schema:
                    problems.append(_missing(name, "dedupe", col, schema))
            if src.time and src.time in schema and category(schema[src.time]) != "time":
                problems.append(
                    f"source '{name}': time column '{src.time}' holds {schema[src.time]}, "
                    "not dates or datetimes (declare it: columns: {" + src.time + ": datetime})"
                )
        return problems

    def check(self, ref: refs.Reference) -> None:
        """Dispatch on the kind of reference."""
        if isinstance(ref, refs.SegmentUse):
            self.segment(ref)
        elif isinstance(ref, refs.ModelUse):
            self.model(ref.node, ref.name)
        elif isinstance(ref, refs.FieldUse):
            self.field(ref)
        elif isinstance(ref, refs.ColumnUse):
            self.column(ref.node, ref.source, ref.column, None, ref.shown)
        elif isinstance(ref, refs.EventUse):
            self.event(ref)
        elif isinstance(ref, refs.CheckUse):
            self.source_known(ref.node, ref.source, f"unknown source '{ref.source}'")
        elif isinstance(ref, GradeUse):
            resolve_grade(self.r, ref, self.p.scoring, self.p.declared_models)
        elif isinstance(ref, refs.SequenceUse):
            resolve_sequence(self.r, ref, self.sources)
        else:
            self.decay(ref)

    # ------------------------------------------------------------ names

    def segment(self, ref: refs.SegmentUse) -> None:
        names = self.p.declared_segments
        if ref.name not in names:
            self.r.err(
                codes.UNKNOWN_SEGMENT,
                f"unknown segment '{ref.name}'",
                ref.node,
                known(ref.name, names, "segments"),
            )

    def model(self, node: YNode, name: str) -> None:
        names = self.p.declared_models
        if name not in names:
            self.r.err(
                codes.UNKNOWN_MODEL,
                f"unknown scoring model '{name}'",
                node,
                known(name, names, "scoring models"),
            )

    def source_known(self, node: YNode, name: str, msg: str) -> bool:
        """True when source `name` is usable; reports it unless it is declared but broken."""
        if name in self.sources:
            return True
        if name not in self.p.declared_sources:
            self.r.err(codes.UNKNOWN_SOURCE, msg, node, known(name, self.source_names, "sources"))
        return False

    # ------------------------------------------------------------ uses of sources and columns

    def field(self, ref: refs.FieldUse) -> None:
        source = ref.source
        if source is not None:
            msg = f"unknown source '{source}' in field '{ref.shown}'"
            if not self.source_known(ref.node, source, msg):
                return
            if self.sources[source].relation != "one" and source != "contacts":
                self.r.err(
                    codes.SOURCE_LACKS,
                    f"field '{ref.shown}' needs source '{source}' to be relation: one",
                    ref.node,
                    "use an event condition for relation: many sources",
                )
                return
        self.column(
            ref.node,
            source or "contacts",
            ref.column,
            ref.test,
            ref.shown,
            "contacts",
            ref.operand_nodes,
        )
        if ref.offset_node is not None:
            self.offset(ref.offset_node, source or "contacts", ref.column, ref.shown)

    def event(self, ref: refs.EventUse) -> None:
        usable = []
        for s in ref.sources:
            if not self.source_known(ref.source_node, s, f"unknown source '{s}'"):
                continue
            if self.sources[s].relation != "many":
                self.r.err(
                    codes.SOURCE_LACKS,
                    f"event conditions need a relation: many source, '{s}' is "
                    f"{'the contacts table' if s == 'contacts' else 'relation: one'}",
                    ref.source_node,
                    "use field: SOURCE.COLUMN for relation: one sources",
                )
            usable.append(s)
        for s in usable:
            if ref.type_node is not None and self.sources[s].type is None:
                self.r.err(
                    codes.SOURCE_LACKS,
                    f"event type filter needs source '{s}' to declare `type:`",
                    ref.type_node,
                    f"add `type: <column>` to source '{s}'",
                )
        for s in usable:
            if ref.window_node is not None and self.sources[s].time is None:
                self.r.err(
                    codes.SOURCE_LACKS,
                    f"a time window needs source '{s}' to declare `time:`",
                    ref.window_node,
                    f"add `time: <column>` to source '{s}'",
                )
        for f in ref.where:
            for s in ref.sources:
                self.column(f.node, s, f.column, f.test, None, None, f.operand_nodes)
        if ref.per is not None and ref.per_node is not None:
            self.per(ref, usable)
        if ref.column is None or ref.column_node is None:
            return
        for s in ref.sources:
            self.column(ref.column_node, s, ref.column, None)
            dt = self.schemas.get(s, {}).get(ref.column)
            if lang.AGGREGATE[ref.agg].numeric and dt is not None and category(dt) != "number":
                self.r.err(
                    codes.TYPE_MISMATCH,
                    f"{ref.agg} needs a numeric column, but column '{ref.column}' of source "
                    f"'{s}' has type {type_name(dt)}",
                    ref.column_node,
                )

    def per(self, ref: refs.EventUse, usable: list[str]) -> None:
        """`per: COLUMN` (SPEC §2.6): the column in every pooled source, of one type across
        them (numbers may mix: 1 and 1.0 are one value), and `has`/`lacks` need `type:`."""
        assert ref.per is not None and ref.per_node is not None
        for s in usable:
            if ref.kinds_node is not None and self.sources[s].type is None:
                self.r.err(
                    codes.SOURCE_LACKS,
                    f"has and lacks need source '{s}' to declare `type:`",
                    ref.kinds_node,
                    f"add `type: <column>` to source '{s}'",
                )
        seen: dict[str, str] = {}
        for s in usable:
            self.column(ref.per_node, s, ref.per, None)
            dt = self.schemas.get(s, {}).get(ref.per)
            if dt is not None:
                seen[s] = type_name(dt)
        kinds = {"number" if t in ("int", "float") else t for t in seen.values()}
        if len(kinds) > 1:
            shown = ", ".join(f"{t} in '{s}'" for s, t in seen.items())
            self.r.err(
                codes.TYPE_MISMATCH,
                f"per column '{ref.per}' has different types in the pooled sources ({shown}): "
                "its values could not be compared",
                ref.per_node,
                "declare one type on each source: columns: {" + ref.per + ": str}",
            )

    def decay(self, ref: refs.DecayUse) -> None:
        """A decaying rule (each, or one event with the default test) needs row times."""
        for rule in ref.rules:
            w = rule.when
            # A per condition never decays (docs/semantics.md).
            if not (
                isinstance(w, m.EventCond) and w.per is None and (rule.each or w.is_default_test)
            ):
                continue
            for s in w.sources:
                src = self.sources.get(s)
                if src is not None and src.time is None:
                    self.r.err(
                        codes.SOURCE_LACKS,
                        f"decay needs row times: rule '{rule.name}' reads source '{s}', "
                        "which declares no `time:`",
                        ref.node,
                        f"add `time: <column>` to source '{s}', or score that rule in a "
                        "model without decay",
                    )

    def column(
        self,
        node: YNode,
        source: str,
        column: str,
        test: m.Test | None,
        shown: str | None = None,
        operands: str | None = None,
        operand_nodes: tuple[YNode, ...] = (),
    ) -> None:
        """Report an unknown column, or operators that do not fit its type. Column operands
        are columns of `operands` (a field leaf: contacts) or else of `source` (a row)."""
        schema = self.schemas.get(source)
        if schema is None:
            return
        label = shown or column
        if column not in schema:
            self.r.err(
                codes.UNKNOWN_COLUMN,
                f"unknown column '{label}' in source '{source}'",
                node,
                hint(column, list(schema)) or f"columns: {', '.join(list(schema)[:12])}",
            )
            return
        if test is None:
            return
        cat = category(schema[column])
        tname = type_name(schema[column])
        nodes = iter(operand_nodes)
        for op in test.ops:
            values = op.value if isinstance(op.value, tuple) else (op.value,)
            refs_ = [v for v in values if isinstance(v, m.ColumnRef)]
            for operand in refs_:
                at = next(nodes, node)
                self.operand(at, op.name, operand, operands or source, label, schema[column])
            if refs_:
                literals = [v for v in values if isinstance(v, m.Scalar | m.Relative)]
                if not literals:
                    continue
                op = m.Op(op.name, tuple(literals))
            problem = op_problem(op, cat, tname, f"column '{label}'")
            if problem:
                self.r.err(
                    codes.TYPE_MISMATCH,
                    problem,
                    node,
                    f"if the file's type is wrong, declare it on source '{source}': "
                    f"columns: {{{column}: <type>}}",
                )

    def operand(
        self,
        node: YNode,
        op: str,
        ref: m.ColumnRef,
        home: str,
        label: str,
        dtype: pl.DataType,
    ) -> None:
        """A column operand (SPEC §2.6): a known column of a comparable type; an offset
        only on a date or datetime column."""
        source = ref.source or home
        if ref.source is not None:
            msg = f"unknown source '{source}' in column operand '{ref.name}'"
            if not self.source_known(node, source, msg):
                return
            if self.sources[source].relation != "one":
                self.r.err(
                    codes.SOURCE_LACKS,
                    f"column operand '{ref.name}' needs source '{source}' to be relation: one",
                    node,
                )
                return
        schema = self.schemas.get(source)
        if schema is None:
            return
        if ref.column not in schema:
            self.r.err(
                codes.UNKNOWN_COLUMN,
                f"unknown column '{ref.name}' in source '{source}' (compared by '{op}')",
                node,
                hint(ref.column, list(schema)) or f"columns: {', '.join(list(schema)[:12])}",
            )
            return
        other = schema[ref.column]
        mine, theirs = category(dtype), category(other)
        both = (
            f"column '{label}' has type {type_name(dtype)} and column '{ref.name}' "
            f"has type {type_name(other)}"
        )
        if ref.offset is not None and theirs != "time":
            self.r.err(
                codes.TYPE_MISMATCH,
                f"offset {ref.offset.text} needs a date or datetime column, but column "
                f"'{ref.name}' has type {type_name(other)}",
                node,
            )
        elif op in m.ORDER_OPS and (mine not in ("number", "time") or mine != theirs):
            self.r.err(
                codes.TYPE_MISMATCH,
                f"'{op}' compares two numbers or two times, but {both}",
                node,
                "declare a column's type on its source if the file's is wrong: "
                "columns: {<column>: <type>}",
            )
        elif mine != theirs or mine == "other":
            self.r.err(
                codes.TYPE_MISMATCH,
                f"'{op}' compares values of one kind, but {both}",
                node,
                "declare a column's type on its source if the file's is wrong: "
                "columns: {<column>: <type>}",
            )

    def offset(self, node: YNode, source: str, column: str, label: str) -> None:
        """A field leaf's `offset:` shifts a time: the column must be a date or datetime."""
        dtype = self.schemas.get(source, {}).get(column)
        if dtype is not None and category(dtype) != "time":
            self.r.err(
                codes.TYPE_MISMATCH,
                f"offset shifts a date or datetime, but column '{label}' has type "
                f"{type_name(dtype)}",
                node,
                "offset: 14d moves a time by 14 days; compare numbers with gt/lt instead",
            )


def _missing(source: str, what: str, col: str, schema: dict[str, pl.DataType]) -> str:
    h = hint(col, list(schema))
    return f"source '{source}': {what} column '{col}' not found in the file" + (
        f" ({h})" if h else f"; it has: {', '.join(list(schema)[:15])}"
    )
