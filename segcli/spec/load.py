"""Load YAML safely, keeping the line and column of every node (for diagnostics).

Only what a spec needs is read: the standard tags, anchors, aliases and merge keys (`<<: *t`).
Anything that could hang or crash the reader is refused with a located diagnostic: unknown
tags, nesting deeper than `MAX_DEPTH`, and aliases that expand past `MAX_NODES` values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from segcli.errors import Diagnostic
from segcli.spec import codes


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
    # True when the loader already reported this value (a bad date): later checks stay quiet.
    reported: bool = False

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


MAX_DEPTH = 64  # nested mappings/lists; a real spec stays under 20
MAX_NODES = 100_000  # values after expanding aliases; a billion-laughs bomb has 10**9
_STD = "tag:yaml.org,2002:"
_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}
_MERGE = _STD + "merge"
_TOO_DEEP = f"the file nests mappings and lists more than {MAX_DEPTH} levels deep"
_DEEP_HELP = "flatten it: not: {not: c} is c, and all: [all: [...]] is one all: [...]"


def load(text: str, file: str) -> tuple[YNode | None, list[Diagnostic]]:
    """Parse `text` into a YNode tree; YAML problems become diagnostics."""
    try:
        deep = _too_deep(text)
        if deep is not None:
            return None, [Diagnostic(codes.YAML_LIMIT.code, _TOO_DEEP, file, *deep, "", _DEEP_HELP)]
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        msg = f"invalid YAML: {exc.problem or exc}"
        end = col + 1 if mark else None
        code = codes.INVALID_YAML.code
        return None, [Diagnostic(code, msg, file, line, col, "", _syntax_help(exc), end)]
    except yaml.YAMLError as exc:
        return None, [Diagnostic(codes.INVALID_YAML.code, f"invalid YAML: {exc}", file)]
    if root is None:
        return None, [
            Diagnostic(
                codes.EMPTY_FILE.code,
                "the spec file is empty",
                file,
                1,
                1,
                help="start with `version: 1` and `sources: {contacts: {path: ..., key: ...}}`",
            )
        ]
    limit = _expansion_problem(root, file)
    if limit is not None:
        return None, [limit]
    conv = _Converter(file)
    node = conv.convert(root, "")
    return node, conv.diags


# libyaml reads ten times faster; PyYAML's own reader words the errors (and is the fallback).
_FAST: Any = getattr(yaml, "CSafeLoader", None)


def _compose(text: str) -> yaml.Node | None:
    if _FAST is not None:
        try:
            return yaml.compose(text, Loader=_FAST)
        except yaml.YAMLError:
            pass  # read it again below, for PyYAML's wording of the error
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _too_deep(text: str) -> tuple[int, int] | None:
    """Where the nesting first passes MAX_DEPTH (from the event stream, which does not
    recurse: PyYAML's composer does, and would crash on a few hundred levels)."""
    if _FAST is not None:
        try:
            return _deepest(yaml.parse(text, Loader=_FAST))
        except yaml.YAMLError:
            pass  # read it again below, for PyYAML's wording of the error
    return _deepest(yaml.parse(text, Loader=yaml.SafeLoader))


def _deepest(events: Iterator[yaml.Event]) -> tuple[int, int] | None:
    depth = 0
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            mark = event.start_mark
            if depth > MAX_DEPTH:
                return (mark.line + 1, mark.column + 1) if mark else (0, 0)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _expansion_problem(root: yaml.Node, file: str) -> Diagnostic | None:
    """Aliases share nodes: count the values and the depth the tree has once they are
    expanded, without expanding them (an iterative walk over the shared nodes)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        kids = _children(node)
        if done:
            size[id(node)] = 1 + sum(size[id(k)] for k in kids)
            depth[id(node)] = 1 + max((depth[id(k)] for k in kids), default=0)
            continue
        if id(node) in size:
            continue
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)
    line, col = root.start_mark.line + 1, root.start_mark.column + 1
    if size[id(root)] > MAX_NODES:
        return Diagnostic(
            codes.YAML_LIMIT.code,
            f"the file's aliases expand to {size[id(root)]:,} values (at most {MAX_NODES:,})",
            file,
            line,
            col,
            "",
            "an alias (*name) copies its anchor's whole value: do not nest them to multiply",
        )
    if depth[id(root)] > 2 * MAX_DEPTH:  # scalars count one level: collections are half
        return Diagnostic(
            codes.YAML_LIMIT.code,
            _TOO_DEEP + " once aliases are expanded",
            file,
            line,
            col,
            "",
            _DEEP_HELP,
        )
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


class _Converter:
    """Turns PyYAML nodes into YNodes, reporting duplicate keys, unknown tags and bad dates."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.diags: list[Diagnostic] = []
        self.constructor = yaml.constructor.SafeConstructor()

    def report(self, code: codes.Code, msg: str, node: yaml.Node, path: str, help: str) -> None:
        mark = node.start_mark
        self.diags.append(
            Diagnostic(code.code, msg, self.file, mark.line + 1, mark.column + 1, path, help)
        )

    def convert(self, node: yaml.Node, path: str) -> YNode:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        end = (node.end_mark.line + 1, node.end_mark.column + 1) if node.end_mark else (0, 0)
        if node.tag not in _TAGS:
            self.report(
                codes.YAML_LIMIT,
                f"unsupported YAML tag '{node.tag}'",
                node,
                path,
                "segcli reads plain YAML values: drop the tag, or quote the value",
            )
        if isinstance(node, yaml.MappingNode):
            out, key_pos = self.mapping(node, path)
            return YNode(out, line, col, path, key_pos, *end)
        if isinstance(node, yaml.SequenceNode):
            items = [self.convert(v, f"{path}[{i}]") for i, v in enumerate(node.value)]
            return YNode(items, line, col, path, {}, *end)
        value, bad = self.scalar(node, path)
        return YNode(value, line, col, path, {}, *end, reported=bad)

    def mapping(
        self, node: yaml.MappingNode, path: str
    ) -> tuple[dict[str, YNode], dict[str, tuple[int, int]]]:
        out: dict[str, YNode] = {}
        key_pos: dict[str, tuple[int, int]] = {}
        merged: list[YNode] = []
        for knode, vnode in node.value:
            if knode.tag == _MERGE:
                merged.extend(self.merge_sources(vnode, path))
                continue
            if isinstance(knode, yaml.ScalarNode):
                self.scalar(knode, path)  # its tag and value are checked like any scalar's
            kline, kcol = knode.start_mark.line + 1, knode.start_mark.column + 1
            # A key is a name as written: YAML 1.1 would read `off:`, `yes:` or `0x10:` as a
            # boolean or a number, and a segment named `off` would run as `False`.
            skey = knode.value if isinstance(knode, yaml.ScalarNode) else "null"
            child_path = f"{path}.{skey}" if path else skey
            if skey in out:
                # YAML would silently keep the last one; say so rather than drop a definition.
                first = key_pos[skey][0]
                self.diags.append(
                    Diagnostic(
                        codes.UNKNOWN_KEY.code,
                        f"duplicate key '{skey}' (first defined on line {first})",
                        self.file,
                        kline,
                        kcol,
                        child_path,
                        "rename one of them or merge the two",
                    )
                )
            else:
                key_pos[skey] = (kline, kcol)
            out[skey] = self.convert(vnode, child_path)
        if not merged:
            return out, key_pos
        # `<<: *t` copies t's keys; keys written here win, and earlier sources win over later.
        full: dict[str, YNode] = {}
        full_pos: dict[str, tuple[int, int]] = {}
        for src in merged:
            for k, v in src.value.items():
                if k not in out and k not in full:
                    full[k] = v
                    full_pos[k] = src.key_pos.get(k, (src.line, src.col))
        full.update(out)
        full_pos.update(key_pos)
        return full, full_pos

    def merge_sources(self, vnode: yaml.Node, path: str) -> list[YNode]:
        items = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
        out = []
        for item in items:
            if not isinstance(item, yaml.MappingNode):
                self.report(
                    codes.WRONG_TYPE,
                    "a merge key (<<) takes a mapping or a list of mappings",
                    item,
                    path,
                    "write <<: *anchor where the anchor names a mapping",
                )
                continue
            out.append(self.convert(item, path))
        return out

    def scalar(self, node: yaml.Node, path: str) -> tuple[Any, bool]:
        """The scalar's Python value, and whether a problem with it was reported."""
        if node.tag not in _TAGS:
            return node.value, False  # reported as an unsupported tag: read it as text
        try:
            return self.constructor.construct_object(node, deep=True), False
        except (ValueError, OverflowError, yaml.YAMLError) as exc:
            self.constructor = yaml.constructor.SafeConstructor()  # a failure leaves state
            what = "date" if node.tag.endswith("timestamp") else "value"
            self.report(
                codes.BAD_VALUE,
                f"bad {what} {node.value!r}: {exc}",
                node,
                path,
                f"write a real {what}, or quote it if it is text",
            )
            return node.value, True


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
