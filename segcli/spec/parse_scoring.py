"""Parsing, step 4: scoring models: rules, points or percents of sales_ready, decay, rules files.

`Scoring` builds `model.ScoreModel`s. A `rules_file` is a CSV whose rows fill the `{column}`
placeholders of one `when` template.
"""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from pathlib import Path

from segcli.errors import Diagnostic
from segcli.spec import codes, refs
from segcli.spec import language as lang
from segcli.spec import model as m
from segcli.spec.diagnostics import Reporter
from segcli.spec.grades import parse_grades
from segcli.spec.graph import walk
from segcli.spec.load import YNode
from segcli.spec.parse_conditions import Conditions
from segcli.spec.parse_values import Values, describe, file_problem

MODEL_KEYS = lang.names(lang.MODEL)
RULE_KEYS = lang.names(lang.RULE)
RULES_FILE_KEYS = lang.names(lang.RULES_FILE)
DECAY_KEYS = lang.names(lang.DECAY)


class Scoring:
    """Parses the `scoring:` section with the condition parser."""

    def __init__(self, r: Reporter, values: Values, conditions: Conditions, base_dir: Path) -> None:
        self.r = r
        self.v = values
        self.conditions = conditions
        self.base_dir = base_dir

    def scoring(self, node: YNode) -> dict[str, m.ScoreModel]:
        if not node.is_map:
            self.r.err(
                codes.WRONG_TYPE, f"scoring must be a mapping, got {describe(node.value)}", node
            )
            return {}
        out = {}
        for name, mnode in node.value.items():
            self.v.check_name(node, name, "scoring model")
            sm = self.score_model(name, mnode)
            if sm is not None:
                out[name] = sm
        return out

    def score_model(self, name: str, node: YNode) -> m.ScoreModel | None:
        body = self.v.mapping(node, f"scoring model '{name}'", MODEL_KEYS)
        if body is None:
            return None
        sales_ready = 100.0
        if "sales_ready" in body:
            sr = self.v.number(body["sales_ready"], "sales_ready")
            if sr is not None and sr <= 0:
                self.r.err(
                    codes.BAD_VALUE,
                    f"sales_ready must be greater than 0, got {sr:g}",
                    body["sales_ready"],
                )
            elif sr is not None:
                sales_ready = sr
        rules: list[m.Rule] = []
        if "rules" in body:
            if not body["rules"].is_list:
                self.r.err(codes.WRONG_TYPE, "rules must be a list", body["rules"])
            else:
                for rnode in body["rules"].value:
                    r = self.rule(rnode, sales_ready)
                    if r is not None:
                        rules.append(r)
        if "rules_file" in body:
            rules.extend(self.rules_file(body["rules_file"], sales_ready))
        if "rules" not in body and "rules_file" not in body:
            self.r.err(codes.MISSING_KEY, f"scoring model '{name}' needs rules or rules_file", node)
        half_life = None
        if "decay" in body:
            d = self.v.mapping(body["decay"], "decay", DECAY_KEYS) or {}
            if "half_life" in d:
                half_life = self.v.duration(d["half_life"], "half_life")
                if half_life is not None and half_life.is_calendar:
                    self.r.err(
                        codes.BAD_VALUE,
                        f"half_life must be an exact length, got the calendar step "
                        f"{half_life.text!r}",
                        d["half_life"],
                        "use h, d or w (a month has no fixed length), e.g. 30d",
                    )
                    half_life = None
            else:
                self.r.err(codes.MISSING_KEY, "decay needs half_life", body["decay"])
        if half_life is not None:
            self.conditions.found.append(refs.DecayUse(body["decay"], tuple(rules)))
        lo = self.v.number(body["min"], "min") if "min" in body else None
        hi = self.v.number(body["max"], "max") if "max" in body else None
        if lo is not None and hi is not None and lo > hi:
            self.r.err(
                codes.BAD_VALUE,
                f"the model's min ({lo:g}) is greater than its max ({hi:g})",
                body["min"],
            )
        grades, below = parse_grades(self.r, self.v, body)
        return m.ScoreModel(name, tuple(rules), sales_ready, half_life, lo, hi, grades, below)

    def rule(self, node: YNode, sales_ready: float) -> m.Rule | None:
        body = self.v.mapping(node, "rule", RULE_KEYS)
        if body is None:
            return None
        name = self.v.string(body["name"], "name") if "name" in body else None
        if name is None:
            self.r.err(codes.MISSING_KEY, "a rule needs a name", node)
        points = self._points(node, body, sales_ready)
        when = self.conditions.condition(body["when"]) if "when" in body else None
        if "when" not in body:
            self.r.err(codes.MISSING_KEY, "a rule needs 'when'", node)
        elif when is not None and not self._rule_when_ok(when, body["when"]):
            when = None
        each = bool(self.v.boolean(body["each"], "each")) if "each" in body else False
        if (
            each
            and when is not None
            and not (isinstance(when, m.EventCond) and when.has_default_count)
        ):
            self.r.err(
                codes.CONFLICT,
                "each: true needs `when` to be one event condition with the default test",
                body["each"],
                "drop count/sum/... from the event",
            )
        cap = self._rule_cap(body)
        stage = self.v.string(body["stage"], "stage") if "stage" in body else None
        if name is None or points is None or when is None:
            return None
        return m.Rule(name, points, when, stage, each, cap)

    def _rule_when_ok(self, when: m.Condition, node: YNode) -> bool:
        """Scores are computed before segments and each model on its own: a rule's `when`
        cannot use segment:, score: or score_change: (the run could not evaluate it)."""
        kinds = {
            m.SegmentRef: "segment",
            m.ScoreCond: "score",
            m.ScoreChangeCond: "score_change",
            m.GradeCond: "grade",
        }
        for c in walk(when):
            kind = kinds.get(type(c))
            if kind is not None:
                self.r.err(
                    codes.CONFLICT,
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
        cap = self.v.number(body["max"], "max")
        if cap is not None and cap < 0:
            self.r.err(
                codes.BAD_VALUE,
                f"a rule's max must be >= 0, got {cap:g}",
                body["max"],
                "max caps the size of the points: for points: -5 with max: 20 the rule gives "
                "at least -20",
            )
            return None
        return cap

    def _points(self, node: YNode, body: dict[str, YNode], sales_ready: float) -> float | None:
        if ("ready" in body) == ("points" in body):
            self.r.err(codes.CONFLICT, "a rule needs exactly one of 'points' or 'ready'", node)
            return None
        if "points" in body:
            return self.v.number(body["points"], "points")
        return self.percent(body["ready"], sales_ready)

    def percent(self, node: YNode, sales_ready: float) -> float | None:
        v = node.value
        if isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?%", v.strip()):
            return float(v.strip()[:-1]) / 100 * sales_ready
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v) / 100 * sales_ready
        self.r.err(codes.BAD_VALUE, f"ready must be a percent like 30%, got {v!r}", node)
        return None

    def rules_file(self, node: YNode, sales_ready: float) -> list[m.Rule]:
        body = self.v.mapping(node, "rules_file", RULES_FILE_KEYS)
        if body is None or "path" not in body or "when" not in body:
            self.r.err(codes.MISSING_KEY, "rules_file needs path and when", node)
            return []
        rel = self.v.string(body["path"], "path")
        if rel is None:
            return []
        path = self.base_dir / rel
        problem = file_problem(path)
        if problem and problem != "not found":  # not found: open's own message, below
            self.r.err(codes.BAD_VALUE, f"rules_file {rel} {problem}", body["path"])
            return []
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                rows = list(reader)
                header = list(reader.fieldnames or [])
        except OSError as exc:
            self.r.err(
                codes.BAD_VALUE, f"cannot read rules_file {rel}: {exc.strerror}", body["path"]
            )
            return []
        # A file without the template's columns, or without rows, would give zero rules.
        missing = sorted(_placeholders(body["when"]) - set(header))
        if missing or not rows:
            what = (
                f"has no column '{missing[0]}' that `when` uses as {{{missing[0]}}} "
                f"(it has: {', '.join(header) or 'no header'})"
                if missing
                else "has no rows: it would give the model no rules"
            )
            self.r.err(codes.BAD_VALUE, f"rules_file {rel} {what}", body["path"])
            return []
        each = bool(self.v.boolean(body["each"], "each")) if "each" in body else False
        cap = self._rule_cap(body)
        out = []
        for i, row in enumerate(rows, start=2):
            where = f"{rel}:{i}"
            name = row.get("asset") or row.get("name")
            if not name:
                self.r.diags.append(
                    Diagnostic(codes.MISSING_KEY.code, f"row {i} has no asset", str(path), i, 1)
                )
                continue
            ready, pts = (row.get("ready") or "").strip(), (row.get("points") or "").strip()
            try:
                points = float(ready.rstrip("%")) / 100 * sales_ready if ready else float(pts)
            except ValueError:
                self.r.diags.append(
                    Diagnostic(
                        codes.BAD_VALUE.code,
                        f"{where}: bad ready/points value {ready or pts!r} for '{name}'",
                        str(path),
                        i,
                        1,
                        help="ready is a percent (30 or 30%), points a number",
                    )
                )
                continue
            when = self.conditions.condition(_substitute(body["when"], row))
            if when is None or not self._rule_when_ok(when, body["when"]):
                continue
            if each and not (isinstance(when, m.EventCond) and when.has_default_count):
                self.r.err(
                    codes.CONFLICT,
                    "each: true needs `when` to be one event condition with the default test",
                    body["each"],
                    "drop count/sum/... from the event",
                )
                continue
            stage = row.get("stage") or None
            out.append(m.Rule(name, points, when, stage, each, cap))
        # The `when` template is checked once per row: Reporter.sorted reports each once.
        return out


def _placeholders(node: YNode) -> set[str]:
    """The `{column}` names used in the string scalars of a `when` template."""
    if isinstance(node.value, dict):
        return set().union(*(_placeholders(v) for v in node.value.values()))
    if isinstance(node.value, list):
        return set().union(*(_placeholders(v) for v in node.value))
    if isinstance(node.value, str):
        return set(re.findall(r"\{([^{}]+)\}", node.value))
    return set()


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
