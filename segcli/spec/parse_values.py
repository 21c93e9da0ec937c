"""Parsing, step 1: scalar values and mappings (strings, numbers, durations, periods, names).

`Values` checks one YAML value's shape and reports problems through the shared `Reporter`;
the parsers of operators, conditions, scoring and the whole spec each hold one.
"""

from __future__ import annotations

import difflib
import math
import re
import stat
from pathlib import Path
from typing import Any

from segcli.spec import codes
from segcli.spec import model as m
from segcli.spec.diagnostics import Reporter
from segcli.spec.load import YNode
from segcli.spec.timeutil import (
    MAX_DURATION_TEXT,
    PERIODS,
    duration_too_long,
    parse_duration,
)


def hint(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """A "did you mean" hint for a misspelt name, or None."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def known(word: str, choices: tuple[str, ...] | list[str], what: str) -> str:
    """A "did you mean" hint, or else the names that are defined."""
    if not choices:
        return f"this spec defines no {what}"
    return hint(word, choices) or f"defined {what}: {', '.join(list(choices)[:12])}"


class Values:
    """Checks scalar values and mappings; problems go to the reporter `r`."""

    def __init__(self, r: Reporter) -> None:
        self.r = r
        self.fiscal_start = 1  # set from the top level before any condition is parsed

    def check_name(self, parent: YNode, name: str, what: str) -> None:
        """Segment, model and source names become file names: they must be identifiers."""
        problem = name_problem(name)
        if problem:
            help = "use letters, digits and _ (then also . and -), at most 100 characters"
            self.r.err_key(codes.BAD_NAME, f"{what} name {problem}", parent, name, help)

    def mapping(self, node: YNode, what: str, allowed: tuple[str, ...]) -> dict[str, YNode] | None:
        """Check `node` is a mapping with only `allowed` keys; report unknown keys."""
        if not node.is_map:
            self.r.err(
                codes.WRONG_TYPE, f"{what} must be a mapping, got {describe(node.value)}", node
            )
            return None
        for key in node.value:
            if key not in allowed:
                self.r.err_key(
                    codes.UNKNOWN_KEY,
                    f"unknown key '{key}' in {what}",
                    node,
                    key,
                    hint(key, allowed),
                )
        return {k: v for k, v in node.value.items() if k in allowed}

    def string(self, node: YNode, what: str) -> str | None:
        if not isinstance(node.value, str) or node.value == "":
            self.r.err(
                codes.WRONG_TYPE,
                f"{what} must be a non-empty string, got {describe(node.value)}",
                node,
            )
            return None
        return str(node.value)

    def boolean(self, node: YNode, what: str) -> bool | None:
        if not isinstance(node.value, bool):
            self.r.err(
                codes.WRONG_TYPE, f"{what} must be true or false, got {describe(node.value)}", node
            )
            return None
        return node.value

    def number(self, node: YNode, what: str) -> float | None:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.r.err(codes.WRONG_TYPE, f"{what} must be a number, got {describe(v)}", node)
            return None
        if not math.isfinite(v):  # .nan or .inf would make every score NaN or infinite
            self.r.err(codes.BAD_VALUE, f"{what} must be a finite number, got {v}", node)
            return None
        return float(v)

    def integer(self, node: YNode, what: str, minimum: int = 0) -> int | None:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            self.r.err(codes.WRONG_TYPE, f"{what} must be an integer >= {minimum}, got {v!r}", node)
            return None
        return v

    def duration(self, node: YNode, what: str) -> m.Duration | None:
        if isinstance(node.value, str):
            d = parse_duration(node.value)
            if d is not None:
                return d
        if isinstance(node.value, str) and duration_too_long(node.value):
            self.r.err(
                codes.BAD_VALUE,
                f"duration {node.value!r} for {what} is too long",
                node,
                f"at most {MAX_DURATION_TEXT}",
            )
            return None
        self.r.err(
            codes.BAD_VALUE,
            f"bad duration {node.value!r} for {what}",
            node,
            "write <int><unit> with unit h, d, w, mo or y, e.g. 30d or 6mo"
            + (" (an offset may start with - or +: -2h)" if what.endswith("offset") else ""),
        )
        return None

    def offset(self, node: YNode, what: str) -> m.Offset | None:
        """A signed duration added to a time (`14d`, `-2h`, `+1mo`), or None (reported)."""
        text = node.value
        if isinstance(text, str) and text.strip()[:1] in ("-", "+"):
            signed = parse_duration(text.strip()[1:])
            if signed is not None:
                return m.Offset(signed, text.strip()[0] == "-")
        d = self.duration(node, what)  # reports the text as written when it is not one
        return m.Offset(d) if d is not None else None

    def window(
        self, node: YNode, body: dict[str, YNode], what: str
    ) -> tuple[m.Window | None, bool]:
        """`within:` or `during:` of an event or a sequence (`what` names it in the message):
        the window (None when there is none) and whether it parsed."""
        if "within" in body and "during" in body:
            self.r.err(codes.CONFLICT, f"{what} takes within or during, not both", node)
            return None, False
        if "within" in body:
            d = self.duration(body["within"], "within")
            return (m.Window(within=d), True) if d else (None, False)
        if "during" in body:
            p = self.period(body["during"])
            return (m.Window(during=p), True) if p else (None, False)
        return None, True

    def choice(self, node: YNode, options: tuple[str, ...], message: str) -> str | None:
        """The node's value when it is one of `options`; otherwise S006 `message` with a
        did-you-mean hint (or the list of options) and None."""
        if isinstance(node.value, str) and node.value in options:
            return node.value
        help = hint(str(node.value), options) or f"one of: {', '.join(options)}"
        self.r.err(codes.BAD_VALUE, message, node, help)
        return None

    def period(self, node: YNode) -> m.Period | None:
        name = self.choice(node, PERIODS, f"unknown calendar period {node.value!r}")
        if name is None:
            return None
        return m.Period(name, self.fiscal_start if "fiscal" in name else 1)

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


def split_field(name: str, sources: tuple[str, ...]) -> tuple[str | None, str]:
    """`SOURCE.COL` as (SOURCE, COL), (None, COL) without a dot. Source names may hold dots
    themselves (`crm.v2.stage`): the longest declared source before a dot wins."""
    if "." not in name:
        return None, name
    for src in sorted(sources, key=len, reverse=True):
        if name.startswith(src + "."):
            return src, name[len(src) + 1 :]
    source, column = name.split(".", 1)
    return source, column


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


def describe(v: Any) -> str:
    """A value in words for messages: "a mapping", "string 'x'", "boolean true"."""
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
