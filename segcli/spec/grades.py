"""Grades of a scoring model (SPEC §2.8): `grades:` / `below:` on a model and the `grade:`
condition, parsed and resolved.

`grades: {A: 80, B: 60}` lists grades highest first, each with the lowest score that earns it
(a score equal to a threshold earns that grade); a lower score earns `below` (default `F`).
`grade: {model: fit, in: [A, B]}` takes only `eq`, `ne`, `in` and `not_in`, whose values must
be grades the model gives.
"""

from __future__ import annotations

from dataclasses import dataclass

from segcli.spec import codes
from segcli.spec import language as lang
from segcli.spec import model as m
from segcli.spec.diagnostics import Reporter
from segcli.spec.load import YNode
from segcli.spec.parse_ops import Operators
from segcli.spec.parse_values import Values, describe, hint, known

GRADE_OPS = lang.GRADE_OPS
DEFAULT_BELOW = "F"


@dataclass(frozen=True)
class GradeUse:
    """`grade: {model: M, ...}`: the model must exist and declare grades, and every grade the
    operators name must be one it gives."""

    node: YNode
    model_node: YNode
    model: str
    values: tuple[tuple[YNode, str], ...]


def parse_grades(
    r: Reporter, v: Values, body: dict[str, YNode]
) -> tuple[tuple[tuple[str, float], ...], str]:
    """A model's `grades` (highest first, thresholds strictly decreasing) and `below`."""
    grades: list[tuple[str, float]] = []
    below = DEFAULT_BELOW
    gnode = body.get("grades")
    if gnode is not None:
        if not gnode.is_map or not gnode.value:
            r.err(
                codes.WRONG_TYPE,
                f"grades must be a non-empty mapping of grade: lowest score, got "
                f"{describe(gnode.value)}",
                gnode,
                "e.g. grades: {A: 80, B: 60, C: 40, D: 20}",
            )
        else:
            for name, tnode in gnode.value.items():
                threshold = v.number(tnode, f"grade {name}")
                if threshold is None:
                    continue
                if grades and threshold >= grades[-1][1]:
                    r.err(
                        codes.BAD_VALUE,
                        f"grade {name}'s threshold {threshold:g} is not below the previous "
                        f"grade's ({grades[-1][0]}: {grades[-1][1]:g})",
                        tnode,
                        "list grades highest first, each with a lower threshold than the one "
                        "before",
                    )
                    continue
                grades.append((str(name), threshold))
    if "below" in body:
        name = v.string(body["below"], "below")
        if gnode is None:
            r.err(codes.CONFLICT, "below needs grades", body["below"], "add grades: {A: 80, ...}")
        elif name is not None and name in {g for g, _ in grades}:
            r.err(
                codes.CONFLICT,
                f"below names grade '{name}', which grades already gives",
                body["below"],
                "below is the grade of scores under the lowest threshold: give it its own name",
            )
        elif name is not None:
            below = name
    return tuple(grades), below


def parse_grade_cond(
    r: Reporter, v: Values, ops: Operators, node: YNode
) -> tuple[m.GradeCond | None, GradeUse | None]:
    """`grade: {model: M, eq|ne|in|not_in: ...}` with its use for the resolver."""
    v.mapping(node, "grade condition", ("grade",))
    gnode = node.value["grade"]
    body = ops.leaf_body(gnode, "model", ("model", *GRADE_OPS))
    if body is None or "model" not in gnode.value:
        r.err(
            codes.MISSING_KEY,
            "grade needs model and one of eq, ne, in, not_in",
            gnode,
            "e.g. grade: {model: fit, in: [A, B]}",
        )
        return None, None
    model = v.string(gnode.value["model"], "model")
    test = ops.test(gnode, body, "grade", require_op=True)
    if model is None or test is None:
        return None, None
    values: list[tuple[YNode, str]] = []
    ok = True
    for op in test.ops:
        vnode = body[op.name]
        items = op.value if isinstance(op.value, tuple) else (op.value,)
        for item in items:
            if not isinstance(item, str):
                r.err(codes.WRONG_TYPE, f"grades are names, got {describe(item)}", vnode)
                ok = False
            else:
                values.append((vnode, item))
    if not ok:
        return None, None
    use = GradeUse(gnode, gnode.value["model"], model, tuple(values))
    return m.GradeCond(model, test, node.line), use


def resolve_grade(
    r: Reporter, use: GradeUse, scoring: dict[str, m.ScoreModel], declared: tuple[str, ...]
) -> None:
    """The model exists and declares grades; each named grade is one it gives."""
    if use.model not in declared:
        r.err(
            codes.UNKNOWN_MODEL,
            f"unknown scoring model '{use.model}'",
            use.model_node,
            known(use.model, declared, "scoring models"),
        )
        return
    sm = scoring.get(use.model)
    if sm is None:  # declared but broken: reported where it is declared
        return
    if not sm.grades:
        r.err(
            codes.CONFLICT,
            f"scoring model '{use.model}' declares no grades",
            use.model_node,
            f"add grades: {{A: 80, B: 60, ...}} to model '{use.model}'",
        )
        return
    names = sm.grade_names
    for vnode, name in use.values:
        if name not in names:
            r.err(
                codes.BAD_VALUE,
                f"model '{use.model}' gives no grade '{name}'",
                vnode,
                hint(name, names) or f"its grades: {', '.join(names)}",
            )
