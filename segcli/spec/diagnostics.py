"""Render diagnostics ruff-style: `path:line:col: CODE message`, the source line, carets, help."""

from __future__ import annotations

from pathlib import Path

from segcli.errors import Diagnostic

# Codes are documented in docs/diagnostics.md; a test checks every code used here is listed there.
CODES: dict[str, str] = {
    "S001": "the file is not valid YAML",
    "S002": "the file is empty or its top level is not a mapping",
    "S003": "unknown key",
    "S004": "wrong type of value",
    "S005": "missing required key",
    "S006": "bad value (duration, period, date, regex, percent, enum)",
    "S007": "unknown operator",
    "S008": "unknown source",
    "S009": "unknown column",
    "S010": "unknown segment",
    "S011": "segment reference cycle",
    "S012": "literal does not fit the column's type",
    "S013": "a condition needs something its source does not declare (time or type column)",
    "S014": "unknown scoring model",
    "S015": "conflicting keys",
}


def render(diags: list[Diagnostic], *, sources: dict[str, str] | None = None) -> str:
    """Render diagnostics as text; `sources` maps file name to its text for the caret line."""
    out: list[str] = []
    cache: dict[str, list[str]] = {}
    for d in diags:
        loc = f"{d.file}:{d.line}:{d.col}" if d.line else d.file
        out.append(f"{loc}: {d.code} {d.message}")
        lines = _lines(d.file, sources, cache)
        if d.line and 0 < d.line <= len(lines):
            text = lines[d.line - 1]
            gutter = str(d.line)
            pad = " " * len(gutter)
            out.append(f"{pad} |")
            out.append(f"{gutter} | {text}")
            start = max(d.col - 1, 0)
            width = max((d.end_col or 0) - d.col, 1) if d.end_col else _token_width(text, start)
            out.append(f"{pad} | {' ' * start}{'^' * width}")
        if d.path:
            out.append(f"  = at: {d.path}")
        if d.help:
            out.append(f"  = help: {d.help}")
        out.append("")
    n = len(diags)
    out.append(f"Found {n} error{'s' if n != 1 else ''}.")
    return "\n".join(out)


def _lines(file: str, sources: dict[str, str] | None, cache: dict[str, list[str]]) -> list[str]:
    if file not in cache:
        text = (sources or {}).get(file)
        if text is None:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except OSError:
                text = ""
        cache[file] = text.splitlines()
    return cache[file]


def _token_width(text: str, start: int) -> int:
    """Underline the token starting at `start`: up to the next `:`, `,`, `}` or end of line."""
    end = start
    while end < len(text) and text[end] not in ":,}]#\n":
        end += 1
    return max(len(text[start:end].rstrip()), 1)
