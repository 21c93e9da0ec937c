"""Validate a YNode tree structurally and build the typed model (no data is read here).

The work is split by section: `validate_base` holds the reporting and scalar helpers,
`validate_operators` the operators of leaf conditions, `validate_conditions` conditions,
`validate_scoring` scoring models; this module parses the top level, sources, segments
and checks, and is the public entry point.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from segcli.errors import DataError, Diagnostic
from segcli.spec import codes
from segcli.spec import model as m
from segcli.spec.checkargs import arg_problem
from segcli.spec.graph import find_cycles
from segcli.spec.load import YNode
from segcli.spec.validate_base import ValidatorBase, _tname, file_problem, hint, known
from segcli.spec.validate_conditions import COND_KEYS, EVENT_KEYS, LEAF_SWITCHES, ConditionParser
from segcli.spec.validate_operators import OP_ALIASES, OperatorParser, op_hint
from segcli.spec.validate_scoring import MODEL_KEYS, RULE_KEYS, ScoringParser

__all__ = [
    "CHECK_KINDS",
    "COLUMN_TYPES",
    "COND_KEYS",
    "EVENT_KEYS",
    "KINDS",
    "LEAF_SWITCHES",
    "MODEL_KEYS",
    "OP_ALIASES",
    "RULE_KEYS",
    "SEGMENT_KEYS",
    "SOURCE_KEYS",
    "TOP_KEYS",
    "ConditionParser",
    "OperatorParser",
    "ScoringParser",
    "Validator",
    "ValidatorBase",
    "hint",
    "known",
    "op_hint",
]

TOP_KEYS = ("version", "timezone", "sources", "segments", "scoring", "checks", "state")
SOURCE_KEYS = ("path", "key", "time", "type", "relation", "dedupe", "columns")
COLUMN_TYPES = ("str", "int", "float", "bool", "date", "datetime")
SEGMENT_KEYS = (
    "description",
    "kind",
    "where",
    "exclude",
    "top",
    "tags",
    "expect",
    "from_file",
    "include_file",
    "exclude_file",
)
KINDS = ("dynamic", "semi_dynamic", "static")
CHECK_KINDS = ("unique", "not_null", "fresh", "orphans", "accepted", "rows")


class Validator(ScoringParser):
    """Collects diagnostics while turning a YNode tree into a `model.Spec`."""

    # ------------------------------------------------------------ top level

    def spec(self, root: YNode) -> m.Spec | None:
        """Validate the whole file and return the model (None when there were errors)."""
        if not root.is_map:
            self.diags.append(
                Diagnostic(
                    codes.EMPTY_FILE.code,
                    f"the spec's top level must be a mapping, got {_tname(root.value)}",
                    self.file,
                    root.line,
                    root.col,
                    help="write `version: 1`, `sources:` and `segments:` at the left margin, "
                    "without a leading '-'",
                )
            )
            return None
        top = self.mapping(root, "the spec", TOP_KEYS) or {}
        if "version" in top and top["version"].value != 1:
            self.err(
                codes.BAD_VALUE,
                f"unsupported version {top['version'].value!r}",
                top["version"],
                "this segcli reads version: 1",
            )
        tz = "UTC"
        if "timezone" in top:
            tzs = self.string(top["timezone"], "timezone")
            if tzs is not None:
                try:
                    ZoneInfo(tzs)
                    tz = tzs
                except (ZoneInfoNotFoundError, ValueError):
                    self.err(
                        codes.BAD_VALUE,
                        f"unknown IANA timezone {tzs!r}",
                        top["timezone"],
                        "e.g. Europe/Berlin, America/New_York, UTC",
                    )
        snode = top.get("sources")
        # Sources that are declared but broken were reported already; references to them
        # must not be reported again as "unknown source".
        self.declared_sources: tuple[str, ...] = (
            tuple(snode.value) if snode is not None and snode.is_map else ()
        )
        sources = self.sources(snode, root)
        self.source_names = tuple(sources)
        self.sources_by_name = sources
        # Columns and literal types are checked against the schemas even when other parts
        # of the spec are wrong, so that every spec error is reported at once. A data error
        # (missing file or column) is raised only once the spec itself is valid.
        data_error: DataError | None = None
        if "contacts" in sources:
            try:
                self.load_schemas(sources)
            except DataError as exc:
                data_error = exc
        self.segment_names: tuple[str, ...] = ()
        self.model_names: tuple[str, ...] = ()
        seg_node = top.get("segments")
        if seg_node is not None and seg_node.is_map:
            self.segment_names = tuple(seg_node.value)
        score_node = top.get("scoring")
        if score_node is not None and score_node.is_map:
            self.model_names = tuple(score_node.value)
        scoring = self.scoring(score_node) if score_node is not None else {}
        segments = self.segments(seg_node) if seg_node is not None else {}
        checks = self.checks(top["checks"]) if "checks" in top else ()
        for cycle in find_cycles(segments):
            assert seg_node is not None  # segments came from it
            self.err_key(
                codes.CYCLE,
                "segment reference cycle: " + " -> ".join(cycle),
                seg_node,
                cycle[0],
                "a segment cannot depend on itself, directly or through others",
            )
        keep_runs = None
        if "state" in top:
            st = self.mapping(top["state"], "state", ("keep_runs",)) or {}
            if "keep_runs" in st:
                keep_runs = self.integer(st["keep_runs"], "keep_runs", 1)
        if self.diags:
            # In file order, as ruff does; diagnostics of other files (rules_file) come last.
            self.diags.sort(key=lambda d: (d.file != self.file, d.file, d.line, d.col))
            return None
        if self.schema_of is not None:
            problems = [data_error.message] if data_error is not None else []
            problems += self.list_file_problems(segments)
            if problems:
                raise DataError("\n".join(problems))
        return m.Spec(
            file=self.file,
            base_dir=str(self.base_dir),
            timezone=tz,
            sources=sources,
            segments=segments,
            scoring=scoring,
            checks=checks,
            keep_runs=keep_runs,
        )

    def list_file_problems(self, segments: dict[str, m.Segment]) -> list[str]:
        """Missing list files, and anything that is not a regular file (a FIFO would block)."""
        out = []
        for seg in segments.values():
            for key in ("from_file", "include_file", "exclude_file"):
                rel = getattr(seg, key)
                if rel is None:
                    continue
                problem = file_problem(self.base_dir / rel)
                if problem:
                    out.append(f"segment '{seg.name}': {key} {rel} {problem}")
        return out

    # ------------------------------------------------------------ sources

    def sources(self, node: YNode | None, root: YNode) -> dict[str, m.Source]:
        if node is None:
            self.err(
                codes.MISSING_KEY,
                "missing required key 'sources'",
                root,
                "declare at least `sources: {contacts: {path: ..., key: ...}}`",
            )
            return {}
        if not node.is_map:
            self.err(codes.WRONG_TYPE, f"sources must be a mapping, got {_tname(node.value)}", node)
            return {}
        out: dict[str, m.Source] = {}
        for name, snode in node.value.items():
            self.check_name(node, name, "source")
            src = self.source(name, snode)
            if src is not None:
                out[name] = src
        if "contacts" not in node.value:
            self.err(
                codes.MISSING_KEY,
                "missing required source 'contacts'",
                node,
                "contacts is the table of people being segmented, one row each",
            )
        return out

    def source(self, name: str, node: YNode) -> m.Source | None:
        body = self.mapping(node, f"source '{name}'", SOURCE_KEYS)
        if body is None:
            return None
        ok = True
        for req in ("path", "key"):
            if req not in body:
                self.err(codes.MISSING_KEY, f"source '{name}' needs '{req}'", node)
                ok = False
        path = self.string(body["path"], "path") if "path" in body else None
        key = self.string(body["key"], "key") if "key" in body else None
        time = self.string(body["time"], "time") if "time" in body else None
        typ = self.string(body["type"], "type") if "type" in body else None
        relation = "one" if name == "contacts" else "many"
        if "relation" in body:
            rel = body["relation"].value
            if name == "contacts":
                self.err(codes.BAD_VALUE, "the contacts source has no relation", body["relation"])
            elif rel not in ("one", "many"):
                self.err(
                    codes.BAD_VALUE,
                    f"relation must be 'one' or 'many', got {rel!r}",
                    body["relation"],
                )
            else:
                relation = rel
        dedupe: tuple[str, ...] = ()
        if "dedupe" in body:
            dedupe = self.str_list(body["dedupe"], "dedupe column") or ()
        columns: list[tuple[str, str]] = []
        if "columns" in body:
            cnode = body["columns"]
            if not cnode.is_map:
                self.err(codes.WRONG_TYPE, "columns must be a mapping of column: type", cnode)
            else:
                for col, tnode in cnode.value.items():
                    if tnode.value not in COLUMN_TYPES:
                        self.err(
                            codes.BAD_VALUE,
                            f"unknown column type {tnode.value!r} for '{col}'",
                            tnode,
                            hint(str(tnode.value), COLUMN_TYPES)
                            or f"one of: {', '.join(COLUMN_TYPES)}",
                        )
                    else:
                        columns.append((col, str(tnode.value)))
        if not ok or path is None or key is None:
            return None
        return m.Source(
            name,
            path,
            key,
            time,
            typ,
            relation,  # type: ignore[arg-type]
            dedupe,
            tuple(columns),
            node.line,
        )

    # ------------------------------------------------------------ segments

    def segments(self, node: YNode) -> dict[str, m.Segment]:
        if not node.is_map:
            self.err(
                codes.WRONG_TYPE, f"segments must be a mapping, got {_tname(node.value)}", node
            )
            return {}
        out = {}
        for name, snode in node.value.items():
            self.check_name(node, name, "segment")
            seg = self.segment(name, snode)
            if seg is not None:
                out[name] = seg
        return out

    def segment(self, name: str, node: YNode) -> m.Segment | None:
        body = self.mapping(node, f"segment '{name}'", SEGMENT_KEYS)
        if body is None:
            return None
        kind: Any = "dynamic"
        if "kind" in body:
            k = body["kind"].value
            if k not in KINDS:
                self.err(
                    codes.BAD_VALUE,
                    f"unknown kind {k!r}",
                    body["kind"],
                    hint(str(k), KINDS) or f"one of: {', '.join(KINDS)}",
                )
            else:
                kind = k
        where = self.condition(body["where"]) if "where" in body else None
        exclude = self.condition(body["exclude"]) if "exclude" in body else None
        files = {}
        for fk in ("from_file", "include_file", "exclude_file"):
            if fk in body:
                files[fk] = self.string(body[fk], fk)
        if "where" not in body and "from_file" not in body:
            self.err(
                codes.MISSING_KEY,
                f"segment '{name}' needs 'where' (or 'from_file' for a static list)",
                node,
            )
        if "from_file" in body:
            if kind != "static":
                self.err(
                    codes.CONFLICT,
                    "from_file is only for static segments",
                    body["from_file"],
                    "add `kind: static`",
                )
            if "where" in body:
                self.err(
                    codes.CONFLICT,
                    "a segment takes either where or from_file, not both",
                    body["from_file"],
                )
        top = self.top(body["top"]) if "top" in body else None
        tags = self.str_list(body["tags"], "tag") or () if "tags" in body else ()
        expect = self.expect(body["expect"]) if "expect" in body else None
        desc = self.string(body["description"], "description") if "description" in body else None
        return m.Segment(
            name=name,
            kind=kind,
            description=desc,
            where=where,
            exclude=exclude,
            top=top,
            tags=tags,
            expect=expect,
            from_file=files.get("from_file"),
            include_file=files.get("include_file"),
            exclude_file=files.get("exclude_file"),
            line=node.line,
        )

    def top(self, node: YNode) -> m.Top | None:
        body = self.mapping(node, "top", ("n", "percent", "by"))
        if body is None:
            return None
        if ("n" in body) == ("percent" in body):
            self.err(codes.CONFLICT, "top needs exactly one of 'n' or 'percent'", node)
            return None
        n = self.integer(body["n"], "top.n", 1) if "n" in body else None
        pct = self.number(body["percent"], "top.percent") if "percent" in body else None
        if pct is not None and not 0 < pct <= 100:
            self.err(
                codes.BAD_VALUE, f"top.percent must be in (0, 100], got {pct}", body["percent"]
            )
        if "by" not in body:
            self.err(codes.MISSING_KEY, "top needs 'by'", node, "e.g. by: {field: created_at}")
            return None
        by = self.top_by(body["by"])
        if by is None:
            return None
        return m.Top(by, n, pct)

    def top_by(self, node: YNode) -> m.TopBy | None:
        body = self.mapping(node, "top.by", ("field", "score", "score_change"))
        if body is None:
            return None
        if len(body) != 1:
            self.err(codes.CONFLICT, "top.by needs exactly one of field, score, score_change", node)
            return None
        if "field" in body:
            f = self.string(body["field"], "top.by.field")
            if f:
                src, col = f.split(".", 1) if "." in f else ("contacts", f)
                self.check_column(body["field"], src, col, None, f)
            return m.TopBy(field=f) if f else None
        if "score" in body:
            s = self.string(body["score"], "top.by.score")
            if s and s not in self.model_names:
                self.err(
                    codes.UNKNOWN_MODEL,
                    f"unknown scoring model '{s}'",
                    body["score"],
                    known(s, self.model_names, "scoring models"),
                )
            return m.TopBy(score=s) if s else None
        sc = self.mapping(body["score_change"], "top.by.score_change", ("model", "over")) or {}
        model = self.string(sc["model"], "model") if "model" in sc else None
        over = self.duration(sc["over"], "over") if "over" in sc else None
        if model is None or over is None:
            self.err(codes.MISSING_KEY, "score_change needs model and over", body["score_change"])
            return None
        if model not in self.model_names:
            self.err(
                codes.UNKNOWN_MODEL,
                f"unknown scoring model '{model}'",
                sc["model"],
                known(model, self.model_names, "scoring models"),
            )
        return m.TopBy(change_model=model, change_over=over)

    def expect(self, node: YNode) -> m.Expect | None:
        body = self.mapping(node, "expect", ("min_size", "max_size", "max_change"))
        if body is None:
            return None
        mn = self.integer(body["min_size"], "min_size") if "min_size" in body else None
        mx = self.integer(body["max_size"], "max_size") if "max_size" in body else None
        mc = None
        if "max_change" in body:
            v = body["max_change"].value
            if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                mc = str(v)
            elif isinstance(v, str) and re.fullmatch(r"\d+(\.\d+)?%", v):
                mc = v
            else:
                self.err(
                    codes.BAD_VALUE,
                    f"max_change must be a count or a percent like 25%, got {v!r}",
                    body["max_change"],
                )
        return m.Expect(mn, mx, mc)

    # ------------------------------------------------------------ checks

    def checks(self, node: YNode) -> tuple[m.Check, ...]:
        if not node.is_list:
            self.err(codes.WRONG_TYPE, "checks must be a list", node)
            return ()
        out = []
        for cnode in node.value:
            body = self.mapping(cnode, "check", ("source", *CHECK_KINDS))
            if body is None:
                continue
            kinds = [k for k in CHECK_KINDS if k in body]
            if "source" not in body or len(kinds) != 1:
                self.err(
                    codes.MISSING_KEY,
                    f"a check needs source and exactly one of {', '.join(CHECK_KINDS)}",
                    cnode,
                )
                continue
            src = self.string(body["source"], "source")
            if src is not None and src not in self.source_names:
                if src not in self.declared_sources:
                    self.err(
                        codes.UNKNOWN_SOURCE,
                        f"unknown source '{src}'",
                        body["source"],
                        known(src, self.source_names, "sources"),
                    )
                continue
            problem = arg_problem(kinds[0], body[kinds[0]].plain())
            if problem:
                self.err(codes.WRONG_TYPE, problem, body[kinds[0]])
                continue
            out.append(m.Check(str(src), kinds[0], body[kinds[0]].plain(), cnode.line))
        return tuple(out)
