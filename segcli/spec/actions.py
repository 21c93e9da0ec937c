"""Parse a segment's `on_enter` / `on_leave` action lists (SPEC §2.9) into the typed model.

The keys are declared in `language.py` (EXPORT, COMMAND, WEBHOOK, ACTION), with the JSON
Schema; columns are recorded as references for `resolve` to check against the contacts.
"""

from __future__ import annotations

import re
import string
from typing import Any

from segcli.spec import codes, refs
from segcli.spec import language as lang
from segcli.spec import model as m
from segcli.spec.diagnostics import Reporter
from segcli.spec.load import YNode
from segcli.spec.parse_values import Values, hint

ACTION_KINDS = lang.names(lang.ACTION)
EXPORT_KEYS = lang.names(lang.EXPORT)
COMMAND_KEYS = lang.names(lang.COMMAND)
WEBHOOK_KEYS = lang.names(lang.WEBHOOK)
PLACEHOLDERS = lang.PLACEHOLDERS
TEMPLATES = lang.WEBHOOK_TEMPLATES
_TIMEOUT = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_TIMEOUT_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def describe(v: Any) -> str:
    """A value's kind in words, for messages (kept here: the parser's helper moves)."""
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return "null" if v is None else f"{type(v).__name__} {v!r}"


def parse_timeout(text: str) -> float | None:
    """`30s`, `500ms`, `2m`, `1h` -> seconds; None when malformed or zero."""
    mt = _TIMEOUT.match(text.strip())
    if not mt:
        return None
    seconds = float(mt.group(1)) * _TIMEOUT_UNITS[mt.group(2)]
    return seconds if seconds > 0 else None


def export_format(path: str) -> str | None:
    """The export format named by a path's extension (csv, jsonl, parquet), or None."""
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    return ext if ext in lang.EXPORT_FORMATS else None


class ActionParser:
    """Turns one `on_enter`/`on_leave` node into actions, reporting into a validator."""

    def __init__(self, r: Reporter, v: Values, found: list[refs.Reference]) -> None:
        self.r = r
        self.v = v
        self.found = found

    def actions(self, node: YNode, what: str) -> tuple[m.Action, ...]:
        """Every action of the list at `node` (`what` names it in messages)."""
        if not node.is_list:
            self.r.err(
                codes.WRONG_TYPE,
                f"{what} must be a list of actions, got {describe(node.value)}",
                node,
                "write e.g. `- export: {path: exports/{segment}-{date}.csv}`",
            )
            return ()
        out = []
        for item in node.value:
            action = self.action(item, what)
            if action is not None:
                out.append(action)
        return tuple(out)

    def action(self, node: YNode, what: str) -> m.Action | None:
        body = self.v.mapping(node, f"an action of {what}", ACTION_KINDS)
        if body is None:
            return None
        if len(node.value) != 1 or len(body) != 1:
            if len(body) > 1:
                self.r.err(
                    codes.CONFLICT,
                    f"an action of {what} takes exactly one of: {', '.join(ACTION_KINDS)}",
                    node,
                    "write each action as its own list item",
                )
            return None
        kind, value = next(iter(body.items()))
        if kind == "export":
            return self.export(value)
        if kind == "command":
            return self.command(value)
        return self.webhook(value)

    def export(self, node: YNode) -> m.ExportAction | None:
        body = self.v.mapping(node, "export", EXPORT_KEYS)
        if body is None:
            return None
        if "path" not in body:
            self.r.err(
                codes.MISSING_KEY, "export needs 'path'", node, "e.g. path: exports/{segment}.csv"
            )
            return None
        path = self.v.string(body["path"], "export path")
        if path is None or not self.path_ok(path, body["path"]):
            return None
        columns = self.columns(body.get("columns"))
        return m.ExportAction(path, columns)

    def path_ok(self, path: str, node: YNode) -> bool:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(path) if f is not None]
        except ValueError as exc:
            self.r.err(
                codes.BAD_VALUE, f"bad export path {path!r}: {exc}", node, _placeholder_help()
            )
            return False
        for f in fields:
            if f not in PLACEHOLDERS:
                self.r.err(
                    codes.BAD_VALUE,
                    f"unknown placeholder {{{f}}} in export path",
                    node,
                    hint(f, PLACEHOLDERS) or _placeholder_help(),
                )
                return False
        if export_format(path) is None:
            self.r.err(
                codes.BAD_VALUE,
                f"export path {path!r} must end in .csv, .jsonl or .parquet",
                node,
                "the extension chooses the file format",
            )
            return False
        return True

    def command(self, node: YNode) -> m.CommandAction | None:
        body: dict[str, YNode] | None
        if node.is_list:
            body = {"argv": node}
        else:
            body = self.v.mapping(node, "command", COMMAND_KEYS)
            if body is None:
                return None
            if "argv" not in body:
                self.r.err(
                    codes.MISSING_KEY, "command needs 'argv' (a list: program and arguments)", node
                )
                return None
        argv_node = body["argv"]
        if not argv_node.is_list or not argv_node.value:
            self.r.err(
                codes.WRONG_TYPE,
                f"command must be a non-empty list (program and arguments; no shell), "
                f"got {describe(argv_node.value)}",
                argv_node,
                'e.g. command: ["python", "scripts/notify.py"]',
            )
            return None
        argv = self.v.str_list(argv_node, "command argument")
        if argv is None:
            return None
        timeout = self.timeout(body.get("timeout"), 60.0)
        return m.CommandAction(argv, timeout, self.columns(body.get("columns")))

    def webhook(self, node: YNode) -> m.WebhookAction | None:
        body = self.v.mapping(node, "webhook", WEBHOOK_KEYS)
        if body is None:
            return None
        if "url" not in body:
            self.r.err(codes.MISSING_KEY, "webhook needs 'url'", node)
            return None
        url = self.v.string(body["url"], "webhook url")
        if url is None:
            return None
        if not url.startswith(("http://", "https://")):
            self.r.err(
                codes.BAD_VALUE, f"webhook url {url!r} must start with http:// or https://", node
            )
            return None
        batch = 500
        if "batch" in body:
            batch = self.v.integer(body["batch"], "batch", minimum=1) or 500
        secret = self.v.string(body["secret_env"], "secret_env") if "secret_env" in body else None
        template: Any = "json"
        if "template" in body:
            tnode = body["template"]
            message = f"unknown webhook template {tnode.value!r}"
            template = self.v.choice(tnode, TEMPLATES, message) or template
        timeout = self.timeout(body.get("timeout"), 10.0)
        return m.WebhookAction(
            url, batch, secret, template, timeout, self.columns(body.get("columns"))
        )

    def timeout(self, node: YNode | None, default: float) -> float:
        if node is None:
            return default
        seconds = parse_timeout(node.value) if isinstance(node.value, str) else None
        if seconds is None:
            self.r.err(
                codes.BAD_VALUE,
                f"bad timeout {node.value!r}",
                node,
                "write <number><unit> with unit ms, s, m or h, e.g. 30s",
            )
            return default
        return seconds

    def columns(self, node: YNode | None) -> tuple[str, ...] | None:
        if node is None:
            return None
        cols = self.v.str_list(node, "column")
        if cols is None:
            return None
        items = node.value if node.is_list else [node]
        for col, item in zip(cols, items, strict=True):
            src, name = col.split(".", 1) if "." in col else (None, col)
            self.found.append(refs.FieldUse(item, col, src, name, None))
        return cols


def _placeholder_help() -> str:
    return "placeholders: " + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
