"""Shared groundwork for validating a spec: diagnostics, scalar checks and schema lookups.

`ValidatorBase` reports problems (`err`, `err_key`), checks scalar values (strings,
numbers, durations, ...) and knows the sources' schemas. The parsers of conditions
(`validate_conditions`), scoring (`validate_scoring`) and the spec itself (`validate`)
build on it.
"""

from __future__ import annotations

import difflib
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from segcli.errors import DataError, Diagnostic
from segcli.spec import codes
from segcli.spec import model as m
from segcli.spec.load import YNode
from segcli.spec.timeutil import (
    MAX_DURATION_TEXT,
    PERIODS,
    duration_too_long,
    parse_duration,
)
from segcli.spec.typecheck import category, op_problem, type_name


def hint(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """A "did you mean" hint for a misspelt name, or None."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def known(word: str, choices: tuple[str, ...] | list[str], what: str) -> str:
    """A "did you mean" hint, or else the names that are defined."""
    if not choices:
        return f"this spec defines no {what}"
    return hint(word, choices) or f"defined {what}: {', '.join(list(choices)[:12])}"


class ValidatorBase:
    """Collects diagnostics and checks scalar values and columns against the schemas."""

    # Set by `Validator.spec` before any section of the spec is parsed.
    declared_sources: tuple[str, ...]
    source_names: tuple[str, ...]
    sources_by_name: dict[str, m.Source]
    segment_names: tuple[str, ...]
    model_names: tuple[str, ...]

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
        for op in test.ops:
            problem = op_problem(op, cat, tname, f"column '{label}'")
            if problem:
                self.err(
                    codes.TYPE_MISMATCH,
                    problem,
                    node,
                    f"if the file's type is wrong, declare it on source '{source}': "
                    f"columns: {{{column}: <type>}}",
                )

    # ------------------------------------------------------------ reporting helpers

    def err(self, code: codes.Code, msg: str, node: YNode, help: str | None = None) -> None:
        if node.reported:  # the loader reported this value already (a bad date)
            return
        # Underline the whole node when it sits on one line (a block mapping does not).
        end = node.end_col if node.end_line == node.line and node.end_col > node.col else None
        self.diags.append(
            Diagnostic(code.code, msg, self.file, node.line, node.col, node.path, help, end)
        )

    def err_key(
        self, code: codes.Code, msg: str, parent: YNode, key: str, help: str | None = None
    ) -> None:
        line, col = parent.key_pos.get(key, (parent.line, parent.col))
        path = f"{parent.path}.{key}" if parent.path else key
        self.diags.append(Diagnostic(code.code, msg, self.file, line, col, path, help))

    def check_name(self, parent: YNode, name: str, what: str) -> None:
        """Segment, model and source names become file names: they must be identifiers."""
        problem = name_problem(name)
        if problem:
            help = "use letters, digits and _ (then also . and -), at most 100 characters"
            self.err_key(codes.BAD_NAME, f"{what} name {problem}", parent, name, help)

    def mapping(self, node: YNode, what: str, allowed: tuple[str, ...]) -> dict[str, YNode] | None:
        """Check `node` is a mapping with only `allowed` keys; report unknown keys."""
        if not node.is_map:
            self.err(codes.WRONG_TYPE, f"{what} must be a mapping, got {_tname(node.value)}", node)
            return None
        for key in node.value:
            if key not in allowed:
                self.err_key(
                    codes.UNKNOWN_KEY,
                    f"unknown key '{key}' in {what}",
                    node,
                    key,
                    hint(key, allowed),
                )
        return {k: v for k, v in node.value.items() if k in allowed}

    def string(self, node: YNode, what: str) -> str | None:
        if not isinstance(node.value, str) or node.value == "":
            self.err(
                codes.WRONG_TYPE,
                f"{what} must be a non-empty string, got {_tname(node.value)}",
                node,
            )
            return None
        return str(node.value)

    def boolean(self, node: YNode, what: str) -> bool | None:
        if not isinstance(node.value, bool):
            self.err(
                codes.WRONG_TYPE, f"{what} must be true or false, got {_tname(node.value)}", node
            )
            return None
        return node.value

    def number(self, node: YNode, what: str) -> float | None:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.err(codes.WRONG_TYPE, f"{what} must be a number, got {_tname(v)}", node)
            return None
        return float(v)

    def integer(self, node: YNode, what: str, minimum: int = 0) -> int | None:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            self.err(codes.WRONG_TYPE, f"{what} must be an integer >= {minimum}, got {v!r}", node)
            return None
        return v

    def duration(self, node: YNode, what: str) -> m.Duration | None:
        if isinstance(node.value, str):
            d = parse_duration(node.value)
            if d is not None:
                return d
        if isinstance(node.value, str) and duration_too_long(node.value):
            self.err(
                codes.BAD_VALUE,
                f"duration {node.value!r} for {what} is too long",
                node,
                f"at most {MAX_DURATION_TEXT}",
            )
            return None
        self.err(
            codes.BAD_VALUE,
            f"bad duration {node.value!r} for {what}",
            node,
            "write <int><unit> with unit h, d or w, e.g. 30d",
        )
        return None

    def period(self, node: YNode) -> m.Period | None:
        if isinstance(node.value, str) and node.value in PERIODS:
            return m.Period(node.value)
        self.err(
            codes.BAD_VALUE,
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


NAME_MAX = 100
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def name_problem(name: str) -> str | None:
    """Why `name` is not an identifier (SPEC §3.2), or None when it is one."""
    if len(name) > NAME_MAX:
        return f"{name[:20]!r}... is {len(name)} characters long (at most {NAME_MAX})"
    if not _NAME.fullmatch(name):
        return f"{name!r} is not an identifier"
    return None


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a file: missing, or not a regular file (a directory, a
    FIFO, a device). Checked with stat, never by opening it: opening a FIFO blocks."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "not found"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a FIFO, socket or device)"
    return None


def _missing(source: str, what: str, col: str, schema: dict[str, pl.DataType]) -> str:
    h = hint(col, list(schema))
    return f"source '{source}': {what} column '{col}' not found in the file" + (
        f" ({h})" if h else f"; it has: {', '.join(list(schema)[:15])}"
    )


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
