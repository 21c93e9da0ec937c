"""Validate a YNode tree structurally and build the typed model (no data is read here)."""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from segcli import model as m
from segcli.checks import arg_problem
from segcli.errors import DataError, Diagnostic
from segcli.graph import find_cycle, walk
from segcli.timeutil import PERIODS, parse_duration
from segcli.typecheck import category, op_problem, type_name
from segcli.yamlnodes import YNode

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
COND_KEYS = ("all", "any", "not", "field", "event", "segment", "score", "score_change", "bucket")
LEAF_SWITCHES = ("ignore_case", "include_missing")
EVENT_KEYS = ("source", "type", "where", "within", "during", *m.AGG_KINDS)
MODEL_KEYS = ("sales_ready", "rules", "rules_file", "decay", "min", "max")
RULE_KEYS = ("name", "stage", "ready", "points", "each", "max", "when")
CHECK_KINDS = ("unique", "not_null", "fresh", "orphans", "accepted", "rows")
_REL = re.compile(r"^-(\d+)([hdw])$")
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


def hint(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """A "did you mean" hint for a misspelt name, or None."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def op_hint(word: str, choices: tuple[str, ...]) -> str:
    """Help for an unknown operator: a known alias, a close spelling, or the list."""
    alias = OP_ALIASES.get(word.lower())
    if alias == "is_null":
        return "did you mean 'is_null'? (is_null: false matches rows that have a value)"
    if alias in choices:
        return f"did you mean '{alias}'?"
    return hint(word, choices) or f"operators: {', '.join(m.ALL_OPS)}"


def known(word: str, choices: tuple[str, ...] | list[str], what: str) -> str:
    """A "did you mean" hint, or else the names that are defined."""
    if not choices:
        return f"this spec defines no {what}"
    return hint(word, choices) or f"defined {what}: {', '.join(list(choices)[:12])}"


class Validator:
    """Collects diagnostics while turning a YNode tree into a `model.Spec`."""

    def __init__(
        self,
        file: str,
        base_dir: Path,
        schema_of: Callable[[m.Source], dict[str, pl.DataType]] | None = None,
    ) -> None:
        self.file = file
        self.base_dir = base_dir
        self.diags: list[Diagnostic] = []
        self.schema_of = schema_of
        self.schemas: dict[str, dict[str, pl.DataType]] = {}

    # ------------------------------------------------------------ schema checks

    def load_schemas(self, sources: dict[str, m.Source]) -> None:
        """Read every source's schema; missing key/time/type/dedupe columns are data errors."""
        if self.schema_of is None:
            return
        problems = []
        for name, src in sources.items():
            try:
                schema = self.schema_of(src)
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
        if problems:
            raise DataError("\n".join(problems))

    def contact_dtypes(self) -> dict[str, pl.DataType]:
        """Columns usable with `field:`: contacts' own and SOURCE.COL of relation-one sources."""
        out = dict(self.schemas.get("contacts", {}))
        for name, src in self.sources_by_name.items():
            if src.relation == "one" and name != "contacts":
                for col, dt in self.schemas.get(name, {}).items():
                    if col != src.key:
                        out[f"{name}.{col}"] = dt
        return out

    def check_column(
        self, node: YNode, source: str, column: str, test: m.Test | None, shown: str | None = None
    ) -> None:
        """Report an unknown column, or operators that do not fit its type."""
        schema = self.schemas.get(source)
        if schema is None:
            return
        label = shown or column
        if column not in schema:
            self.err(
                "S009",
                f"unknown column '{label}' in source '{source}'",
                node,
                hint(column, list(schema)) or f"columns: {', '.join(list(schema)[:12])}",
            )
            return
        if test is None:
            return
        cat = category(schema[column])
        tname = type_name(schema[column])
        for op in test.ops:
            problem = op_problem(op, cat, tname, f"column '{label}'")
            if problem:
                self.err(
                    "S012",
                    problem,
                    node,
                    f"if the file's type is wrong, declare it on source '{source}': "
                    f"columns: {{{column}: <type>}}",
                )

    # ------------------------------------------------------------ reporting helpers

    def err(self, code: str, msg: str, node: YNode, help: str | None = None) -> None:
        # Underline the whole node when it sits on one line (a block mapping does not).
        end = node.end_col if node.end_line == node.line and node.end_col > node.col else None
        self.diags.append(
            Diagnostic(code, msg, self.file, node.line, node.col, node.path, help, end)
        )

    def err_key(
        self, code: str, msg: str, parent: YNode, key: str, help: str | None = None
    ) -> None:
        line, col = parent.key_pos.get(key, (parent.line, parent.col))
        path = f"{parent.path}.{key}" if parent.path else key
        self.diags.append(Diagnostic(code, msg, self.file, line, col, path, help))

    def mapping(self, node: YNode, what: str, allowed: tuple[str, ...]) -> dict[str, YNode] | None:
        """Check `node` is a mapping with only `allowed` keys; report unknown keys."""
        if not node.is_map:
            self.err("S004", f"{what} must be a mapping, got {_tname(node.value)}", node)
            return None
        for key in node.value:
            if key not in allowed:
                self.err_key(
                    "S003", f"unknown key '{key}' in {what}", node, key, hint(key, allowed)
                )
        return {k: v for k, v in node.value.items() if k in allowed}

    def string(self, node: YNode, what: str) -> str | None:
        if not isinstance(node.value, str) or node.value == "":
            self.err("S004", f"{what} must be a non-empty string, got {_tname(node.value)}", node)
            return None
        return str(node.value)

    def boolean(self, node: YNode, what: str) -> bool | None:
        if not isinstance(node.value, bool):
            self.err("S004", f"{what} must be true or false, got {_tname(node.value)}", node)
            return None
        return node.value

    def number(self, node: YNode, what: str) -> float | None:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.err("S004", f"{what} must be a number, got {_tname(v)}", node)
            return None
        return float(v)

    def integer(self, node: YNode, what: str, minimum: int = 0) -> int | None:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            self.err("S004", f"{what} must be an integer >= {minimum}, got {v!r}", node)
            return None
        return v

    def duration(self, node: YNode, what: str) -> m.Duration | None:
        if isinstance(node.value, str):
            d = parse_duration(node.value)
            if d is not None:
                return d
        self.err(
            "S006",
            f"bad duration {node.value!r} for {what}",
            node,
            "write <int><unit> with unit h, d or w, e.g. 30d",
        )
        return None

    def period(self, node: YNode) -> m.Period | None:
        if isinstance(node.value, str) and node.value in PERIODS:
            return m.Period(node.value)
        self.err(
            "S006",
            f"unknown calendar period {node.value!r}",
            node,
            hint(str(node.value), PERIODS) or f"one of: {', '.join(PERIODS)}",
        )
        return None

    def str_list(self, node: YNode, what: str) -> tuple[str, ...] | None:
        items = node.value if node.is_list else [node]
        out = []
        for item in items:
            s = self.string(item, what)
            if s is None:
                return None
            out.append(s)
        return tuple(out)

    # ------------------------------------------------------------ top level

    def spec(self, root: YNode) -> m.Spec | None:
        """Validate the whole file and return the model (None when there were errors)."""
        if not root.is_map:
            self.diags.append(
                Diagnostic(
                    "S002",
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
                "S006",
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
                        "S006",
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
        cycle = find_cycle(segments)
        if cycle and seg_node is not None:
            self.err_key(
                "S011",
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
        if data_error is not None:
            raise data_error
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

    # ------------------------------------------------------------ sources

    def sources(self, node: YNode | None, root: YNode) -> dict[str, m.Source]:
        if node is None:
            self.err(
                "S005",
                "missing required key 'sources'",
                root,
                "declare at least `sources: {contacts: {path: ..., key: ...}}`",
            )
            return {}
        if not node.is_map:
            self.err("S004", f"sources must be a mapping, got {_tname(node.value)}", node)
            return {}
        out: dict[str, m.Source] = {}
        for name, snode in node.value.items():
            src = self.source(name, snode)
            if src is not None:
                out[name] = src
        if "contacts" not in node.value:
            self.err(
                "S005",
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
                self.err("S005", f"source '{name}' needs '{req}'", node)
                ok = False
        path = self.string(body["path"], "path") if "path" in body else None
        key = self.string(body["key"], "key") if "key" in body else None
        time = self.string(body["time"], "time") if "time" in body else None
        typ = self.string(body["type"], "type") if "type" in body else None
        relation = "one" if name == "contacts" else "many"
        if "relation" in body:
            rel = body["relation"].value
            if name == "contacts":
                self.err("S006", "the contacts source has no relation", body["relation"])
            elif rel not in ("one", "many"):
                self.err("S006", f"relation must be 'one' or 'many', got {rel!r}", body["relation"])
            else:
                relation = rel
        dedupe: tuple[str, ...] = ()
        if "dedupe" in body:
            dedupe = self.str_list(body["dedupe"], "dedupe column") or ()
        columns: list[tuple[str, str]] = []
        if "columns" in body:
            cnode = body["columns"]
            if not cnode.is_map:
                self.err("S004", "columns must be a mapping of column: type", cnode)
            else:
                for col, tnode in cnode.value.items():
                    if tnode.value not in COLUMN_TYPES:
                        self.err(
                            "S006",
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
            self.err("S004", f"segments must be a mapping, got {_tname(node.value)}", node)
            return {}
        out = {}
        for name, snode in node.value.items():
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
                    "S006",
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
                "S005", f"segment '{name}' needs 'where' (or 'from_file' for a static list)", node
            )
        if "from_file" in body:
            if kind != "static":
                self.err(
                    "S015",
                    "from_file is only for static segments",
                    body["from_file"],
                    "add `kind: static`",
                )
            if "where" in body:
                self.err(
                    "S015", "a segment takes either where or from_file, not both", body["from_file"]
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
            self.err("S015", "top needs exactly one of 'n' or 'percent'", node)
            return None
        n = self.integer(body["n"], "top.n", 1) if "n" in body else None
        pct = self.number(body["percent"], "top.percent") if "percent" in body else None
        if pct is not None and not 0 < pct <= 100:
            self.err("S006", f"top.percent must be in (0, 100], got {pct}", body["percent"])
        if "by" not in body:
            self.err("S005", "top needs 'by'", node, "e.g. by: {field: created_at}")
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
            self.err("S015", "top.by needs exactly one of field, score, score_change", node)
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
                    "S014",
                    f"unknown scoring model '{s}'",
                    body["score"],
                    known(s, self.model_names, "scoring models"),
                )
            return m.TopBy(score=s) if s else None
        sc = self.mapping(body["score_change"], "top.by.score_change", ("model", "over")) or {}
        model = self.string(sc["model"], "model") if "model" in sc else None
        over = self.duration(sc["over"], "over") if "over" in sc else None
        if model is None or over is None:
            self.err("S005", "score_change needs model and over", body["score_change"])
            return None
        if model not in self.model_names:
            self.err(
                "S014",
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
                    "S006",
                    f"max_change must be a count or a percent like 25%, got {v!r}",
                    body["max_change"],
                )
        return m.Expect(mn, mx, mc)

    # ------------------------------------------------------------ conditions

    def condition(self, node: YNode) -> m.Condition | None:
        """Parse one condition; returns None (with diagnostics) when it is malformed."""
        if not node.is_map:
            self.err(
                "S004",
                f"a condition must be a mapping, got {_tname(node.value)}",
                node,
                f"start with one of: {', '.join(COND_KEYS)}",
            )
            return None
        if not node.value:
            self.err(
                "S005",
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
                    "S003",
                    f"unknown condition '{first}'",
                    node,
                    first,
                    hint(first, COND_KEYS) or f"one of: {', '.join(COND_KEYS)}",
                )
            else:
                self.err(
                    "S015",
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
            self.err("S004", f"{key} takes a list of conditions, got {_tname(inner.value)}", inner)
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
                "S010",
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
            self.err("S005", "bucket needs percent and salt", node.value["bucket"])
            return None
        pct = self.number(body["percent"], "bucket.percent")
        salt = body["salt"].value
        if pct is not None and not 0 <= pct <= 100:
            self.err("S006", f"bucket.percent must be in [0, 100], got {pct}", body["percent"])
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
                        "S008",
                        f"unknown source '{source}' in field '{name}'",
                        node.value["field"],
                        known(source, self.source_names, "sources"),
                    )
                return None
            src = self.sources_by_name[source]
            if src.relation != "one" and source != "contacts":
                self.err(
                    "S013",
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

    def _leaf_body(
        self, node: YNode, key: str, allowed: tuple[str, ...]
    ) -> dict[str, YNode] | None:
        if not node.is_map:
            return None
        for k in node.value:
            if k not in allowed:
                code = "S007" if k != key else "S003"
                self.err_key(code, f"unknown operator '{k}'", node, k, op_hint(str(k), allowed))
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
                b = self.boolean(vnode, "ignore_case")
                ignore_case = bool(b)
                ok &= b is not None
            elif key == "include_missing":
                include_missing = self.boolean(vnode, "include_missing")
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
            self.err(
                "S005",
                f"{what} needs an operator",
                parent,
                f"e.g. eq, in, gt, contains, within; all: {', '.join(m.ALL_OPS)}",
            )
            return None
        return m.Test(tuple(ops), ignore_case, include_missing) if ok else None

    def op_value(self, op: str, node: YNode) -> Any:
        v = node.value
        if op in ("eq", "ne"):
            if _is_scalar(v):
                return v
            self.err(
                "S004",
                f"{op} takes a single value, got {_tname(v)}",
                node,
                "use in: [...] for several values" if node.is_list else None,
            )
            return _BAD
        if op in ("in", "not_in"):
            if not node.is_list:
                shown = v if isinstance(v, str | int | float) and not isinstance(v, bool) else "..."
                self.err(
                    "S004", f"{op} takes a list, got {_tname(v)}", node, f"write {op}: [{shown}]"
                )
                return _BAD
            vals = [c.value for c in v]
            if not all(_is_scalar(x) and x is not None for x in vals):
                self.err("S004", f"{op} takes a list of non-null values", node)
                return _BAD
            return tuple(vals)
        if op in ("gt", "gte", "lt", "lte"):
            return self.order_value(op, node)
        if op == "between":
            if not node.is_list or len(v) != 2:
                self.err("S004", "between takes a list [low, high]", node)
                return _BAD
            lo, hi = self.order_value(op, v[0]), self.order_value(op, v[1])
            if lo is _BAD or hi is _BAD:
                return _BAD
            return (lo, hi)
        if op in m.STRING_OPS:
            if not isinstance(v, str):
                self.err("S004", f"{op} takes a string, got {_tname(v)}", node)
                return _BAD
            if op == "matches":
                problem = _regex_problem(v)
                if problem:
                    self.err(
                        "S006",
                        f"bad regular expression {v!r}: {problem}",
                        node,
                        "the syntax is Rust's regex (no look-around, no backreferences); "
                        "escape special characters with a backslash",
                    )
                    return _BAD
            return v
        if op == "is_null":
            if not isinstance(v, bool):
                self.err("S004", f"is_null takes true or false, got {_tname(v)}", node)
                return _BAD
            return v
        if op in ("within", "older_than"):
            d = self.duration(node, op)
            return d if d is not None else _BAD
        if op == "during":
            p = self.period(node)
            return p if p is not None else _BAD
        raise AssertionError(op)  # pragma: no cover - ops are checked before

    def order_value(self, op: str, node: YNode) -> Any:
        v = node.value
        if isinstance(v, bool) or v is None:
            self.err("S004", f"{op} takes a number, a date or a relative time, got {v!r}", node)
            return _BAD
        if isinstance(v, int | float | date | datetime):
            return v
        if isinstance(v, str):
            mt = _REL.match(v)
            if mt:
                d = parse_duration(v[1:])
                assert d is not None
                return m.Relative(d)
            try:
                return datetime.fromisoformat(v) if "T" in v or " " in v else date.fromisoformat(v)
            except ValueError:
                pass
        self.err(
            "S006",
            f"bad value {v!r} for {op}",
            node,
            "a number, an ISO date/datetime (2026-01-31T09:00:00) or a relative time (-30d)",
        )
        return _BAD

    def cond_event(self, node: YNode) -> m.Condition | None:
        self.mapping(node, "event condition", ("event",))
        enode = node.value["event"]
        body = self.mapping(enode, "event", EVENT_KEYS)
        if body is None:
            return None
        if "source" not in body:
            self.err("S005", "event needs 'source'", enode)
            return None
        srcs = self.str_list(body["source"], "source")
        if srcs is None:
            return None
        ok = True
        for s in srcs:
            if s not in self.source_names:
                if s not in self.declared_sources:
                    self.err(
                        "S008",
                        f"unknown source '{s}'",
                        body["source"],
                        known(s, self.source_names, "sources"),
                    )
                ok = False
            elif self.sources_by_name[s].relation != "many":
                self.err(
                    "S013",
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
                        "S013",
                        f"event type filter needs source '{s}' to declare `type:`",
                        body["type"],
                        f"add `type: <column>` to source '{s}'",
                    )
                    ok = False
        window = None
        if "within" in body and "during" in body:
            self.err("S015", "an event takes within or during, not both", enode)
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
                        "S013",
                        f"a time window needs source '{s}' to declare `time:`",
                        body.get("within") or body["during"],
                        f"add `time: <column>` to source '{s}'",
                    )
                    ok = False
        where: list[m.RowCond] = []
        if "where" in body:
            wnode = body["where"]
            if not wnode.is_map:
                self.err("S004", "where takes a mapping of column: {operators}", wnode)
                ok = False
            else:
                for col, cnode in wnode.value.items():
                    if not cnode.is_map:
                        self.err(
                            "S004",
                            f"where.{col} takes a mapping of operators, e.g. {{eq: x}}",
                            cnode,
                        )
                        ok = False
                        continue
                    for k in cnode.value:
                        if k not in (*m.ALL_OPS, *LEAF_SWITCHES):
                            self.err_key(
                                "S007",
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
            self.err("S015", f"an event takes one test, got {', '.join(aggs)}", enode)
            ok = False
        elif aggs:
            agg = aggs[0]
            tnode = body[agg]
            allowed = (*m.ALL_OPS, *LEAF_SWITCHES)
            if agg in m.AGG_WITH_COLUMN:
                allowed = ("column", *allowed)
            tbody = self._leaf_body(tnode, "column", allowed) if tnode.is_map else None
            if tbody is None:
                self.err("S004", f"{agg} takes a mapping of operators, e.g. {{gte: 3}}", tnode)
                return None
            if agg in m.AGG_WITH_COLUMN:
                if "column" not in tnode.value:
                    self.err("S005", f"{agg} needs 'column'", tnode)
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
                            "S012",
                            f"{agg} needs a numeric column, but column '{column}' of source "
                            f"'{s}' has type {type_name(dt)}",
                            tnode.value["column"],
                        )
            cat = "time" if agg in ("last", "first") else "number"
            for op in t.ops:
                tname = "datetime" if cat == "time" else "float"
                problem = op_problem(op, cat, tname, f"an event's {agg}")
                if problem:
                    self.err("S012", problem, tnode)
        if not ok:
            return None
        return m.EventCond(srcs, types, tuple(where), window, agg, column, test, node.line)

    def cond_score(self, node: YNode) -> m.Condition | None:
        self.mapping(node, "score condition", ("score",))
        snode = node.value["score"]
        body = self._leaf_body(snode, "model", ("model", *m.ALL_OPS, *LEAF_SWITCHES))
        if body is None or "model" not in snode.value:
            self.err("S005", "score needs model and operators", snode)
            return None
        model = self._model_ref(snode.value["model"])
        test = self.test(snode, body, "score", require_op=True)
        return m.ScoreCond(model, test, node.line) if model and test else None

    def cond_score_change(self, node: YNode) -> m.Condition | None:
        self.mapping(node, "score_change condition", ("score_change",))
        snode = node.value["score_change"]
        body = self._leaf_body(snode, "model", ("model", "over", *m.ALL_OPS, *LEAF_SWITCHES))
        if body is None or "model" not in snode.value or "over" not in snode.value:
            self.err("S005", "score_change needs model, over and operators", snode)
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
                "S014",
                f"unknown scoring model '{name}'",
                node,
                known(name, self.model_names, "scoring models"),
            )
            return None
        return name

    # ------------------------------------------------------------ scoring

    def scoring(self, node: YNode) -> dict[str, m.ScoreModel]:
        if not node.is_map:
            self.err("S004", f"scoring must be a mapping, got {_tname(node.value)}", node)
            return {}
        out = {}
        for name, mnode in node.value.items():
            sm = self.score_model(name, mnode)
            if sm is not None:
                out[name] = sm
        return out

    def score_model(self, name: str, node: YNode) -> m.ScoreModel | None:
        body = self.mapping(node, f"scoring model '{name}'", MODEL_KEYS)
        if body is None:
            return None
        sales_ready = 100.0
        if "sales_ready" in body:
            sr = self.number(body["sales_ready"], "sales_ready")
            if sr is not None and sr <= 0:
                self.err(
                    "S006", f"sales_ready must be greater than 0, got {sr:g}", body["sales_ready"]
                )
            elif sr is not None:
                sales_ready = sr
        rules: list[m.Rule] = []
        if "rules" in body:
            if not body["rules"].is_list:
                self.err("S004", "rules must be a list", body["rules"])
            else:
                for rnode in body["rules"].value:
                    r = self.rule(rnode, sales_ready)
                    if r is not None:
                        rules.append(r)
        if "rules_file" in body:
            rules.extend(self.rules_file(body["rules_file"], sales_ready))
        if "rules" not in body and "rules_file" not in body:
            self.err("S005", f"scoring model '{name}' needs rules or rules_file", node)
        half_life = None
        if "decay" in body:
            d = self.mapping(body["decay"], "decay", ("half_life",)) or {}
            if "half_life" in d:
                half_life = self.duration(d["half_life"], "half_life")
            else:
                self.err("S005", "decay needs half_life", body["decay"])
        if half_life is not None:
            self._check_decay_time(rules, body["decay"])
        lo = self.number(body["min"], "min") if "min" in body else None
        hi = self.number(body["max"], "max") if "max" in body else None
        if lo is not None and hi is not None and lo > hi:
            self.err(
                "S006", f"the model's min ({lo:g}) is greater than its max ({hi:g})", body["min"]
            )
        return m.ScoreModel(name, tuple(rules), sales_ready, half_life, lo, hi)

    def _check_decay_time(self, rules: list[m.Rule], node: YNode) -> None:
        """A decaying rule (each, or one event with the default test) needs row times."""
        for r in rules:
            w = r.when
            if not (isinstance(w, m.EventCond) and (r.each or w.is_default_test)):
                continue
            for s in w.sources:
                src = self.sources_by_name.get(s)
                if src is not None and src.time is None:
                    self.err(
                        "S013",
                        f"decay needs row times: rule '{r.name}' reads source '{s}', "
                        "which declares no `time:`",
                        node,
                        f"add `time: <column>` to source '{s}', or score that rule in a "
                        "model without decay",
                    )

    def rule(self, node: YNode, sales_ready: float) -> m.Rule | None:
        body = self.mapping(node, "rule", RULE_KEYS)
        if body is None:
            return None
        name = self.string(body["name"], "name") if "name" in body else None
        if name is None:
            self.err("S005", "a rule needs a name", node)
        points = self._points(node, body, sales_ready)
        when = self.condition(body["when"]) if "when" in body else None
        if "when" not in body:
            self.err("S005", "a rule needs 'when'", node)
        elif when is not None and not self._rule_when_ok(when, body["when"]):
            when = None
        each = bool(self.boolean(body["each"], "each")) if "each" in body else False
        if (
            each
            and when is not None
            and not (isinstance(when, m.EventCond) and when.is_default_test)
        ):
            self.err(
                "S015",
                "each: true needs `when` to be one event condition with the default test",
                body["each"],
                "drop count/sum/... from the event",
            )
        cap = self._rule_cap(body)
        stage = self.string(body["stage"], "stage") if "stage" in body else None
        if name is None or points is None or when is None:
            return None
        return m.Rule(name, points, when, stage, each, cap)

    def _rule_when_ok(self, when: m.Condition, node: YNode) -> bool:
        """Scores are computed before segments and each model on its own: a rule's `when`
        cannot use segment:, score: or score_change: (the run could not evaluate it)."""
        kinds = {m.SegmentRef: "segment", m.ScoreCond: "score", m.ScoreChangeCond: "score_change"}
        for c in walk(when):
            kind = kinds.get(type(c))
            if kind is not None:
                self.err(
                    "S015",
                    f"a scoring rule's `when` cannot use `{kind}:`",
                    node,
                    "scores are computed before segments; put this condition in a segment's "
                    "where, next to a score: condition",
                )
                return False
        return True

    def _rule_cap(self, body: dict[str, YNode]) -> float | None:
        """A rule's `max`: a size (negative points are capped at -max), so never negative."""
        if "max" not in body:
            return None
        cap = self.number(body["max"], "max")
        if cap is not None and cap < 0:
            self.err(
                "S006",
                f"a rule's max must be >= 0, got {cap:g}",
                body["max"],
                "max caps the size of the points: for points: -5 with max: 20 the rule gives "
                "at least -20",
            )
            return None
        return cap

    def _points(self, node: YNode, body: dict[str, YNode], sales_ready: float) -> float | None:
        if ("ready" in body) == ("points" in body):
            self.err("S015", "a rule needs exactly one of 'points' or 'ready'", node)
            return None
        if "points" in body:
            return self.number(body["points"], "points")
        return self.percent(body["ready"], sales_ready)

    def percent(self, node: YNode, sales_ready: float) -> float | None:
        v = node.value
        if isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?%", v.strip()):
            return float(v.strip()[:-1]) / 100 * sales_ready
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v) / 100 * sales_ready
        self.err("S006", f"ready must be a percent like 30%, got {v!r}", node)
        return None

    def rules_file(self, node: YNode, sales_ready: float) -> list[m.Rule]:
        body = self.mapping(node, "rules_file", ("path", "when", "each", "max"))
        if body is None or "path" not in body or "when" not in body:
            self.err("S005", "rules_file needs path and when", node)
            return []
        rel = self.string(body["path"], "path")
        if rel is None:
            return []
        path = self.base_dir / rel
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        except OSError as exc:
            self.err("S006", f"cannot read rules_file {rel}: {exc.strerror}", body["path"])
            return []
        each = bool(self.boolean(body["each"], "each")) if "each" in body else False
        cap = self._rule_cap(body)
        first_diag = len(self.diags)
        out = []
        for i, row in enumerate(rows, start=2):
            where = f"{rel}:{i}"
            name = row.get("asset") or row.get("name")
            if not name:
                self.diags.append(Diagnostic("S005", f"row {i} has no asset", str(path), i, 1))
                continue
            ready, pts = (row.get("ready") or "").strip(), (row.get("points") or "").strip()
            try:
                points = float(ready.rstrip("%")) / 100 * sales_ready if ready else float(pts)
            except ValueError:
                self.diags.append(
                    Diagnostic(
                        "S006",
                        f"{where}: bad ready/points value {ready or pts!r} for '{name}'",
                        str(path),
                        i,
                        1,
                        help="ready is a percent (30 or 30%), points a number",
                    )
                )
                continue
            when = self.condition(_substitute(body["when"], row))
            if when is None or not self._rule_when_ok(when, body["when"]):
                continue
            if each and not (isinstance(when, m.EventCond) and when.is_default_test):
                self.err(
                    "S015",
                    "each: true needs `when` to be one event condition with the default test",
                    body["each"],
                    "drop count/sum/... from the event",
                )
                continue
            stage = row.get("stage") or None
            out.append(m.Rule(name, points, when, stage, each, cap))
        # The `when` template is checked once per row: report each problem once.
        self.diags[first_diag:] = list(dict.fromkeys(self.diags[first_diag:]))
        return out

    # ------------------------------------------------------------ checks

    def checks(self, node: YNode) -> tuple[m.Check, ...]:
        if not node.is_list:
            self.err("S004", "checks must be a list", node)
            return ()
        out = []
        for cnode in node.value:
            body = self.mapping(cnode, "check", ("source", *CHECK_KINDS))
            if body is None:
                continue
            kinds = [k for k in CHECK_KINDS if k in body]
            if "source" not in body or len(kinds) != 1:
                self.err(
                    "S005",
                    f"a check needs source and exactly one of {', '.join(CHECK_KINDS)}",
                    cnode,
                )
                continue
            src = self.string(body["source"], "source")
            if src is not None and src not in self.source_names:
                if src not in self.declared_sources:
                    self.err(
                        "S008",
                        f"unknown source '{src}'",
                        body["source"],
                        known(src, self.source_names, "sources"),
                    )
                continue
            problem = arg_problem(kinds[0], body[kinds[0]].plain())
            if problem:
                self.err("S004", problem, body[kinds[0]])
                continue
            out.append(m.Check(str(src), kinds[0], body[kinds[0]].plain(), cnode.line))
        return tuple(out)


_BAD = object()


def _substitute(node: YNode, row: dict[str, str]) -> YNode:
    """A copy of `node` with `{column}` in string scalars replaced by the CSV row's value."""
    if isinstance(node.value, dict):
        return replace(node, value={k: _substitute(v, row) for k, v in node.value.items()})
    if isinstance(node.value, list):
        return replace(node, value=[_substitute(v, row) for v in node.value])
    if isinstance(node.value, str):
        text = node.value
        for col, val in row.items():
            text = text.replace("{" + col + "}", val or "")
        return replace(node, value=text)
    return node


def _missing(source: str, what: str, col: str, schema: dict[str, pl.DataType]) -> str:
    h = hint(col, list(schema))
    return f"source '{source}': {what} column '{col}' not found in the file" + (
        f" ({h})" if h else f"; it has: {', '.join(list(schema)[:15])}"
    )


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


def _tname(v: Any) -> str:
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, str):
        return f"string {v!r}"
    return f"{type(v).__name__} {v!r}"
