"""Collect diagnostics (`Reporter`) and render them ruff-style: `path:line:col: CODE message`,
the source line, carets, help."""

from __future__ import annotations

from pathlib import Path

from segcli.errors import Diagnostic
from segcli.spec.codes import TABLE, Code
from segcli.spec.load import YNode

# The codes' table lives in segcli.spec.codes; docs/diagnostics.md is checked against it.
CODES: dict[str, str] = {c.code: c.title for c in TABLE}


class Reporter:
    """The diagnostics of one spec file, shared by the parsers and the resolver."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.diags: list[Diagnostic] = []

    def err(self, code: Code, msg: str, node: YNode, help: str | None = None) -> None:
        """Report a problem with a value, underlined when it sits on one line."""
        if node.reported:  # the loader reported this value already (a bad date)
            return
        end = node.end_col if node.end_line == node.line and node.end_col > node.col else None
        self.diags.append(
            Diagnostic(code.code, msg, self.file, node.line, node.col, node.path, help, end)
        )

    def err_key(
        self, code: Code, msg: str, parent: YNode, key: str, help: str | None = None
    ) -> None:
        """Report a problem with key `key` of mapping `parent`, located at the key."""
        line, col = parent.key_pos.get(key, (parent.line, parent.col))
        path = f"{parent.path}.{key}" if parent.path else key
        self.diags.append(Diagnostic(code.code, msg, self.file, line, col, path, help))

    def sorted(self) -> list[Diagnostic]:
        """In file order, as ruff does, each once; other files' (rules_file rows) come last."""
        unique = list(dict.fromkeys(self.diags))
        return sorted(unique, key=lambda d: (d.file != self.file, d.file, d.line, d.col))


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
