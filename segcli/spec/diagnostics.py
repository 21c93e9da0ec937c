"""Render diagnostics ruff-style: `path:line:col: CODE message`, the source line, carets, help."""

from __future__ import annotations

from pathlib import Path

from segcli.errors import Diagnostic
from segcli.spec.codes import TABLE

# The codes' table lives in segcli.spec.codes; docs/diagnostics.md is checked against it.
CODES: dict[str, str] = {c.code: c.title for c in TABLE}


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
