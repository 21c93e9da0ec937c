"""Parsing, the whole file: YAML nodes (with positions) into the typed model, structural errors.

`parse` reads the top level, sources, segments and checks here, and hands conditions, operators,
scalar values and scoring to the small parsers it composes (`parse_conditions`, `parse_ops`,
`parse_values`, `parse_scoring`), all reporting to one `Reporter`. It looks nothing up: every
name, column and type it meets is recorded in `Parsed.found` for `resolve` to check.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from segcli.errors import Diagnostic
from segcli.spec import codes, refs
from segcli.spec import language as lang
from segcli.spec import model as m
from segcli.spec.actions import ActionParser
from segcli.spec.checkargs import arg_problem
from segcli.spec.diagnostics import Reporter
from segcli.spec.load import YNode
from segcli.spec.parse_conditions import Conditions
from segcli.spec.parse_scoring import Scoring
from segcli.spec.parse_values import Values, describe, split_field

TOP_KEYS = lang.names(lang.TOP_LEVEL)
SOURCE_KEYS = lang.names(lang.SOURCE)
SEGMENT_KEYS = lang.names(lang.SEGMENT)
COLUMN_TYPES = lang.COLUMN_TYPES
KINDS = lang.KINDS
CHECK_KINDS = lang.CHECK_KINDS


@dataclass
class Parsed:
    """The parsed parts of a spec, the names it declares and the references to resolve."""

    root: YNode
    timezone: str = "UTC"
    sources: dict[str, m.Source] = field(default_factory=dict)
    segments: dict[str, m.Segment] = field(default_factory=dict)
    scoring: dict[str, m.ScoreModel] = field(default_factory=dict)
    checks: tuple[m.Check, ...] = ()
    keep_runs: int | None = None
    fiscal_year_start: int = 1
    engine: m.EngineConf | None = None
    # Every name declared, even when its definition is broken (reported where it is declared):
    # a use of it must not be reported again as unknown.
    declared_sources: tuple[str, ...] = ()
    declared_segments: tuple[str, ...] = ()
    declared_models: tuple[str, ...] = ()
    segments_node: YNode | None = None
    found: list[refs.Reference] = field(default_factory=list)


def parse(root: YNode, r: Reporter, base_dir: Path) -> Parsed | None:
    """Parse the whole file; None when its top level is not a mapping (reported)."""
    return _Parser(r, base_dir).spec(root)


def _read_by_segcli(name: str, body: dict[str, YNode]) -> bool:
    """Contacts and relation-one sources: segcli reads them itself (views, deliveries, the
    key checks), so they are never a table or a URI only Spark reads."""
    relation = body.get("relation")
    return name == "contacts" or (relation is not None and relation.value == "one")


class _Parser:
    def __init__(self, r: Reporter, base_dir: Path) -> None:
        self.r = r
        self.v = Values(r)
        self.found: list[refs.Reference] = []
        self.conditions = Conditions(r, self.v, self.found)
        self.scoring = Scoring(r, self.v, self.conditions, base_dir)

    def spec(self, root: YNode) -> Parsed | None:
        if not root.is_map:
            self.r.diags.append(
                Diagnostic(
                    codes.EMPTY_FILE.code,
                    f"the spec's top level must be a mapping, got {describe(root.value)}",
                    self.r.file,
                    root.line,
                    root.col,
                    help="write `version: 1`, `sources:` and `segments:` at the left margin, "
                    "without a leading '-'",
                )
            )
            return None
        out = Parsed(root, found=self.found)
        top = self.v.mapping(root, "the spec", TOP_KEYS) or {}
        if "version" in top and top["version"].value != 1:
            self.r.err(
                codes.BAD_VALUE,
                f"unsupported version {top['version'].value!r}",
                top["version"],
                "this segcli reads version: 1",
            )
        if "timezone" in top:
            out.timezone = self.timezone(top["timezone"])
        if "fiscal_year_start" in top:
            out.fiscal_year_start = self.fiscal_year_start(top["fiscal_year_start"])
            self.v.fiscal_start = out.fiscal_year_start
        if "engine" in top:
            out.engine = self.engine(top["engine"])
        snode = top.get("sources")
        out.declared_sources = tuple(snode.value) if snode is not None and snode.is_map else ()
        self.conditions.declared_sources = out.declared_sources
        out.sources = self.sources(snode, root)
        if "contacts" in out.sources:
            self.conditions.account_column = out.sources["contacts"].account
            self.conditions.contacts_ok = True
        seg_node = top.get("segments")
        if seg_node is not None and seg_node.is_map:
            out.declared_segments = tuple(seg_node.value)
            out.segments_node = seg_node
        score_node = top.get("scoring")
        if score_node is not None and score_node.is_map:
            out.declared_models = tuple(score_node.value)
        out.scoring = self.scoring.scoring(score_node) if score_node is not None else {}
        out.segments = self.segments(seg_node) if seg_node is not None else {}
        out.checks = self.checks(top["checks"]) if "checks" in top else ()
        if "state" in top:
            st = self.v.mapping(top["state"], "state", lang.names(lang.STATE)) or {}
            if "keep_runs" in st:
                out.keep_runs = self.v.integer(st["keep_runs"], "keep_runs", 1)
        return out

    def engine(self, node: YNode) -> m.EngineConf | None:
        """`engine: duckdb`, or `engine: {name: spark, master: ..., conf: {...}}`."""
        options = lang.ENGINES
        if not node.is_map:
            name = self.v.choice(node, options, f"unknown engine {node.value!r}")
            return None if name is None else m.EngineConf(name)
        keys = self.v.mapping(node, "engine", lang.names(lang.ENGINE)) or {}
        if "name" not in keys:
            self.r.err(codes.MISSING_KEY, "engine needs 'name'", node, "e.g. name: spark")
            return None
        name = self.v.choice(keys["name"], options, f"unknown engine {keys['name'].value!r}")
        master = self.v.string(keys["master"], "engine master") if "master" in keys else None
        conf: list[tuple[str, str]] = []
        if "conf" in keys and not keys["conf"].is_map:
            self.r.err(codes.WRONG_TYPE, "engine conf must be a mapping of settings", keys["conf"])
        elif "conf" in keys:
            for k, v in keys["conf"].value.items():
                if isinstance(v.value, bool):
                    conf.append((k, "true" if v.value else "false"))
                elif isinstance(v.value, str | int | float):
                    conf.append((k, str(v.value)))
                else:
                    self.r.err(
                        codes.WRONG_TYPE,
                        f"engine conf {k!r} must be a string, number or boolean",
                        v,
                    )
        for key in ("master", "conf"):
            if key in keys and name is not None and name != "spark":
                self.r.err(
                    codes.BAD_VALUE,
                    f"engine {key!r} is a Spark setting; engine {name!r} takes none",
                    keys[key],
                    "remove it, or use name: spark",
                )
        if name is None:
            return None
        return m.EngineConf(name, master, tuple(conf))

    def fiscal_year_start(self, node: YNode) -> int:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 12:
            self.r.err(
                codes.BAD_VALUE,
                f"fiscal_year_start must be a month number 1-12, got {v!r}",
                node,
                "e.g. fiscal_year_start: 4 for fiscal years starting on April 1",
            )
            return 1
        return v

    def timezone(self, node: YNode) -> str:
        tzs = self.v.string(node, "timezone")
        if tzs is None:
            return "UTC"
        try:
            ZoneInfo(tzs)
        except (ZoneInfoNotFoundError, ValueError):
            self.r.err(
                codes.BAD_VALUE,
                f"unknown IANA timezone {tzs!r}",
                node,
                "e.g. Europe/Berlin, America/New_York, UTC",
            )
            return "UTC"
        return tzs

    # ------------------------------------------------------------ sources, segments, checks

    def sources(self, node: YNode | None, root: YNode) -> dict[str, m.Source]:
        if node is None:
            self.r.err(
                codes.MISSING_KEY,
                "missing required key 'sources'",
                root,
                "declare at least `sources: {contacts: {path: ..., key: ...}}`",
            )
            return {}
        if not node.is_map:
            self.r.err(
                codes.WRONG_TYPE, f"sources must be a mapping, got {describe(node.value)}", node
            )
            return {}
        out: dict[str, m.Source] = {}
        for name, snode in node.value.items():
            self.v.check_name(node, name, "source")
            src = self.source(name, snode)
            if src is not None:
                out[name] = src
        if "contacts" not in node.value:
            self.r.err(
                codes.MISSING_KEY,
                "missing required source 'contacts'",
                node,
                "contacts is the table of people being segmented, one row each",
            )
        return out

    def source(self, name: str, node: YNode) -> m.Source | None:
        body = self.v.mapping(node, f"source '{name}'", SOURCE_KEYS)
        if body is None:
            return None
        ok = True
        if "key" not in body:
            self.r.err(codes.MISSING_KEY, f"source '{name}' needs 'key'", node)
            ok = False
        table = self.table(name, body)
        if "path" not in body and "table" not in body:
            self.r.err(
                codes.MISSING_KEY,
                f"source '{name}' needs 'path'",
                node,
                "path: a file or glob; or, with engine spark, table: a catalog table",
            )
            ok = False
        elif "table" in body and table is None:
            ok = False
        path = self.v.string(body["path"], "path") if "path" in body else ""
        key = self.v.string(body["key"], "key") if "key" in body else None
        time = self.v.string(body["time"], "time") if "time" in body else None
        typ = self.v.string(body["type"], "type") if "type" in body else None
        relation = "one" if name == "contacts" else "many"
        if "relation" in body:
            rel = body["relation"].value
            if name == "contacts":
                self.r.err(codes.BAD_VALUE, "the contacts source has no relation", body["relation"])
            elif rel not in ("one", "many"):
                self.r.err(
                    codes.BAD_VALUE,
                    f"relation must be 'one' or 'many', got {rel!r}",
                    body["relation"],
                )
            else:
                relation = rel
        dedupe: tuple[str, ...] = ()
        if "dedupe" in body:
            dedupe = self.v.str_list(body["dedupe"], "dedupe column") or ()
        columns: list[tuple[str, str]] = []
        if "columns" in body:
            cnode = body["columns"]
            if not cnode.is_map:
                self.r.err(codes.WRONG_TYPE, "columns must be a mapping of column: type", cnode)
            else:
                for col, tnode in cnode.value.items():
                    message = f"unknown column type {tnode.value!r} for '{col}'"
                    declared = self.v.choice(tnode, COLUMN_TYPES, message)
                    if declared is not None:
                        columns.append((col, declared))
        delimiter, encoding = self.csv_options(body)
        account = self.account_column(name, body.get("account"))
        if path and m.URI.match(path) and not self.uri_ok(name, path, body):
            ok = False
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
            delimiter,
            encoding,
            account,
            table,
        )

    def table(self, name: str, body: dict[str, YNode]) -> str | None:
        """`table: db.events` (SPEC §3.1): an event source read from the Spark catalog;
        not with `path`, not for contacts or a relation-one source (segcli reads those
        itself for views and deliveries), not with `dedupe` (a table has no file order)."""
        node = body.get("table")
        if node is None:
            return None
        table = self.v.string(node, "table")
        if table is None:
            return None
        problem = None
        if "path" in body:
            problem = "gives both 'path' and 'table': use one"
        elif _read_by_segcli(name, body):
            problem = "is read by segcli itself (views, deliveries): it needs 'path', not 'table'"
        elif "dedupe" in body:
            problem = "is a table: 'dedupe' keeps the first row in file order; a table has none"
        elif not re.fullmatch(r"[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*){0,2}", table):
            problem = f"names table {table!r}: use NAME, DB.NAME or CATALOG.DB.NAME"
        if problem:
            self.r.err(codes.BAD_VALUE, f"source '{name}' {problem}", node)
            return None
        return table

    def uri_ok(self, name: str, uri: str, body: dict[str, YNode]) -> bool:
        """A `path:` URI (`s3://…`, `hdfs://…`; SPEC §3.1) is read by Spark: Parquet only
        (segcli decides CSV column types from files it reads itself), for an event source
        without `dedupe` (as a `table:`)."""
        problem = None
        if not re.search(r"\.parquet$|/$", uri):
            problem = "is read by the spark engine: a URI must name Parquet files (*.parquet)"
        elif _read_by_segcli(name, body):
            problem = "is read by segcli itself (views, deliveries): its path must be a file"
        elif "dedupe" in body:
            problem = "is at a URI: 'dedupe' is for local files, whose order segcli knows"
        if problem:
            self.r.err(codes.BAD_VALUE, f"source '{name}' {problem}", body["path"])
        return problem is None

    def account_column(self, source: str, node: YNode | None) -> str | None:
        """`account: COLUMN` on contacts (SPEC §2.7); the column is checked by `resolve`."""
        if node is None:
            return None
        if source != "contacts":
            self.r.err(
                codes.CONFLICT,
                f"only the contacts source declares an account column, not '{source}'",
                node,
                "declare it on contacts: account: company_id",
            )
            return None
        column = self.v.string(node, "account")
        if column is not None:
            self.found.append(refs.ColumnUse(node, column, "contacts", column))
        return column

    def csv_options(self, body: dict[str, YNode]) -> tuple[str | None, str | None]:
        """A source's `delimiter:` (one character) and `encoding:` (a known text encoding)."""
        node = body.get("delimiter")
        delimiter = self.v.string(node, "delimiter") if node is not None else None
        if (
            node is not None
            and delimiter is not None
            and (len(delimiter) != 1 or delimiter in '"\r\n')
        ):
            self.r.err(
                codes.BAD_VALUE,
                f"delimiter must be one character (not a quote or newline), got {delimiter!r}",
                node,
                'e.g. delimiter: ";" or delimiter: "\\t"',
            )
            delimiter = None
        node = body.get("encoding")
        encoding = self.v.string(node, "encoding") if node is not None else None
        if node is not None and encoding is not None:
            try:
                codecs.lookup(encoding)
            except LookupError:
                self.r.err(
                    codes.BAD_VALUE,
                    f"unknown text encoding {encoding!r}",
                    node,
                    "e.g. utf-8, latin-1, cp1252",
                )
                encoding = None
        return delimiter, encoding

    # ------------------------------------------------------------ segments

    def segments(self, node: YNode) -> dict[str, m.Segment]:
        if not node.is_map:
            self.r.err(
                codes.WRONG_TYPE, f"segments must be a mapping, got {describe(node.value)}", node
            )
            return {}
        out = {}
        for name, snode in node.value.items():
            self.v.check_name(node, name, "segment")
            seg = self.segment(name, snode)
            if seg is not None:
                out[name] = seg
        return out

    def segment(self, name: str, node: YNode) -> m.Segment | None:
        body = self.v.mapping(node, f"segment '{name}'", SEGMENT_KEYS)
        if body is None:
            return None
        kind: Any = "dynamic"
        if "kind" in body:
            knode = body["kind"]
            kind = self.v.choice(knode, KINDS, f"unknown kind {knode.value!r}") or kind
        where = self.conditions.condition(body["where"]) if "where" in body else None
        exclude = self.conditions.condition(body["exclude"]) if "exclude" in body else None
        files = {}
        for fk in ("from_file", "include_file", "exclude_file"):
            if fk in body:
                files[fk] = self.v.string(body[fk], fk)
        if "where" not in body and "from_file" not in body:
            self.r.err(
                codes.MISSING_KEY,
                f"segment '{name}' needs 'where' (or 'from_file' for a static list)",
                node,
            )
        if "from_file" in body:
            if kind != "static":
                self.r.err(
                    codes.CONFLICT,
                    "from_file is only for static segments",
                    body["from_file"],
                    "add `kind: static`",
                )
            if "where" in body:
                self.r.err(
                    codes.CONFLICT,
                    "a segment takes either where or from_file, not both",
                    body["from_file"],
                )
        top = self.top(body["top"]) if "top" in body else None
        tags = self.v.str_list(body["tags"], "tag") or () if "tags" in body else ()
        expect = self.expect(body["expect"]) if "expect" in body else None
        desc = self.v.string(body["description"], "description") if "description" in body else None
        acts = ActionParser(self.r, self.v, self.found)
        on_enter = acts.actions(body["on_enter"], "on_enter") if "on_enter" in body else ()
        on_leave = acts.actions(body["on_leave"], "on_leave") if "on_leave" in body else ()
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
            on_enter=on_enter,
            on_leave=on_leave,
            line=node.line,
        )

    def top(self, node: YNode) -> m.Top | None:
        body = self.v.mapping(node, "top", ("n", "percent", "by"))
        if body is None:
            return None
        if ("n" in body) == ("percent" in body):
            self.r.err(codes.CONFLICT, "top needs exactly one of 'n' or 'percent'", node)
            return None
        n = self.v.integer(body["n"], "top.n", 1) if "n" in body else None
        pct = self.v.number(body["percent"], "top.percent") if "percent" in body else None
        if pct is not None and not 0 < pct <= 100:
            self.r.err(
                codes.BAD_VALUE, f"top.percent must be in (0, 100], got {pct}", body["percent"]
            )
        if "by" not in body:
            self.r.err(codes.MISSING_KEY, "top needs 'by'", node, "e.g. by: {field: created_at}")
            return None
        by = self.top_by(body["by"])
        if by is None:
            return None
        return m.Top(by, n, pct)

    def top_by(self, node: YNode) -> m.TopBy | None:
        body = self.v.mapping(node, "top.by", ("field", "score", "score_change"))
        if body is None:
            return None
        if len(body) != 1:
            self.r.err(
                codes.CONFLICT, "top.by needs exactly one of field, score, score_change", node
            )
            return None
        if "field" in body:
            f = self.v.string(body["field"], "top.by.field")
            if f:
                source, col = split_field(f, self.conditions.declared_sources)
                src = source or "contacts"
                self.found.append(refs.ColumnUse(body["field"], f, src, col))
            return m.TopBy(field=f) if f else None
        if "score" in body:
            s = self.v.string(body["score"], "top.by.score")
            if s:
                self.found.append(refs.ModelUse(body["score"], s))
            return m.TopBy(score=s) if s else None
        sc = self.v.mapping(body["score_change"], "top.by.score_change", ("model", "over")) or {}
        model = self.v.string(sc["model"], "model") if "model" in sc else None
        over = self.v.duration(sc["over"], "over") if "over" in sc else None
        if model is None or over is None:
            self.r.err(codes.MISSING_KEY, "score_change needs model and over", body["score_change"])
            return None
        self.found.append(refs.ModelUse(sc["model"], model))
        return m.TopBy(change_model=model, change_over=over)

    def expect(self, node: YNode) -> m.Expect | None:
        body = self.v.mapping(node, "expect", ("min_size", "max_size", "max_change"))
        if body is None:
            return None
        mn = self.v.integer(body["min_size"], "min_size") if "min_size" in body else None
        mx = self.v.integer(body["max_size"], "max_size") if "max_size" in body else None
        mc = None
        if "max_change" in body:
            v = body["max_change"].value
            if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                mc = str(v)
            elif isinstance(v, str) and re.fullmatch(r"\d+(\.\d+)?%", v):
                mc = v
            else:
                self.r.err(
                    codes.BAD_VALUE,
                    f"max_change must be a count or a percent like 25%, got {v!r}",
                    body["max_change"],
                )
        return m.Expect(mn, mx, mc)

    # ------------------------------------------------------------ checks

    def checks(self, node: YNode) -> tuple[m.Check, ...]:
        if not node.is_list:
            self.r.err(codes.WRONG_TYPE, "checks must be a list", node)
            return ()
        out = []
        for cnode in node.value:
            body = self.v.mapping(cnode, "check", ("source", *CHECK_KINDS))
            if body is None:
                continue
            kinds = [k for k in CHECK_KINDS if k in body]
            if "source" not in body or len(kinds) != 1:
                self.r.err(
                    codes.MISSING_KEY,
                    f"a check needs source and exactly one of {', '.join(CHECK_KINDS)}",
                    cnode,
                )
                continue
            src = self.v.string(body["source"], "source")
            if src is None:
                continue
            self.found.append(refs.CheckUse(body["source"], src))
            problem = arg_problem(kinds[0], body[kinds[0]].plain())
            if problem:
                self.r.err(codes.WRONG_TYPE, problem, body[kinds[0]])
                continue
            out.append(m.Check(str(src), kinds[0], body[kinds[0]].plain(), cnode.line))
        return tuple(out)
