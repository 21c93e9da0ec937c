"""Load YAML safely, keeping the line and column of every node (for diagnostics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from segcli.errors import Diagnostic


@dataclass
class YNode:
    """A YAML value with its position; mappings and sequences hold YNodes."""

    value: Any  # dict[str, YNode] | list[YNode] | scalar
    line: int
    col: int
    path: str
    key_pos: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Where the node's text ends (1-based, exclusive); 0 when unknown. Used for carets.
    end_line: int = 0
    end_col: int = 0

    @property
    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)

    def plain(self) -> Any:
        """The value with positions stripped (plain dicts, lists and scalars)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def load(text: str, file: str) -> tuple[YNode | None, list[Diagnostic]]:
    """Parse `text` into a YNode tree; YAML syntax errors become diagnostics."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        msg = f"invalid YAML: {exc.problem or exc}"
        end = col + 1 if mark else None
        return None, [Diagnostic("S001", msg, file, line, col, "", _syntax_help(exc), end)]
    except yaml.YAMLError as exc:
        return None, [Diagnostic("S001", f"invalid YAML: {exc}", file)]
    if root is None:
        return None, [
            Diagnostic(
                "S002",
                "the spec file is empty",
                file,
                1,
                1,
                help="start with `version: 1` and `sources: {contacts: {path: ..., key: ...}}`",
            )
        ]
    diags: list[Diagnostic] = []
    node = _convert(root, "", file, diags)
    return node, diags


def _syntax_help(exc: yaml.MarkedYAMLError) -> str | None:
    """Point at the enclosing structure PyYAML was reading, in plain words."""
    if "\\t" in str(exc.problem):
        return "indent with spaces: YAML does not allow tabs"
    cm, pm = exc.context_mark, exc.problem_mark
    if not exc.context or cm is None or (pm and (cm.line, cm.column) == (pm.line, pm.column)):
        return None
    thing = exc.context.split(" ", 2)[-1] if exc.context.startswith("while ") else exc.context
    check = (
        "; check its brackets, commas and quotes"
        if "flow" in thing
        else "; check its indentation"
        if "block" in thing
        else ""
    )
    return f"inside {thing} that starts on line {cm.line + 1}, column {cm.column + 1}{check}"


def _convert(node: yaml.Node, path: str, file: str, diags: list[Diagnostic]) -> YNode:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    end = (node.end_mark.line + 1, node.end_mark.column + 1) if node.end_mark else (0, 0)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, YNode] = {}
        key_pos: dict[str, tuple[int, int]] = {}
        for knode, vnode in node.value:
            key = _scalar(knode)
            kline, kcol = knode.start_mark.line + 1, knode.start_mark.column + 1
            skey = str(key) if key is not None else "null"
            child_path = f"{path}.{skey}" if path else skey
            if skey in out:
                # YAML would silently keep the last one; say so rather than drop a definition.
                first = key_pos[skey][0]
                diags.append(
                    Diagnostic(
                        "S003",
                        f"duplicate key '{skey}' (first defined on line {first})",
                        file,
                        kline,
                        kcol,
                        child_path,
                        "rename one of them or merge the two",
                    )
                )
            else:
                key_pos[skey] = (kline, kcol)
            out[skey] = _convert(vnode, child_path, file, diags)
        return YNode(out, line, col, path, key_pos, *end)
    if isinstance(node, yaml.SequenceNode):
        items = [_convert(v, f"{path}[{i}]", file, diags) for i, v in enumerate(node.value)]
        return YNode(items, line, col, path, {}, *end)
    return YNode(_scalar(node), line, col, path, {}, *end)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return f"<{type(node).__name__}>"
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
