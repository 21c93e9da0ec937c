"""Grades of a scoring model (SPEC §2.8): thresholds, `below`, `M_grade` in scores.parquet,
`grade:` conditions, their diagnostics and explain — compiled plan and reference agree."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import compute
from reference import Reference
from test_reference import HAND_AS_OF, HAND_CONTACTS, HAND_EMAIL, HAND_SOURCES
from test_validate import DATA, diagnostics, segments

from segcli import api
from segcli.views.explain import explain_contact, explain_segment

# Scores: 1 -> 100 (adult, 2 clicks, country, open), 2 -> 0, 3 -> 60, 4 -> 20 (country).
GRADED = (
    HAND_SOURCES
    + """
scoring:
  fit:
    rules:
      - {name: adult, points: 20, when: {field: age, gte: 25}}
      - {name: clicks, points: 20, each: true, when: {event: {source: email, type: click}}}
      - {name: known, points: 20, when: {field: country, is_null: false}}
      - {name: opened, points: 20, when: {event: {source: email, type: open}}}
    grades: {A: 100, B: 60.0, C: 20}
    below: D
segments:
  a_or_b: {where: {grade: {model: fit, in: [A, B]}}}
  exactly_b: {where: {grade: {model: fit, eq: B}}}
  not_a: {where: {grade: {model: fit, ne: A}}}
  low: {where: {grade: {model: fit, eq: D}}}
  not_low: {where: {grade: {model: fit, not_in: [D, C]}}}
  matrix: {where: {all: [{grade: {model: fit, in: [A]}}, {score: {model: fit, gte: 80}}]}}
"""
)
EXPECTED_SCORES = {1: 100.0, 2: 0.0, 3: 60.0, 4: 20.0}  # each at a threshold but 2
EXPECTED_GRADES = {1: "A", 2: "D", 3: "B", 4: "C"}
EXPECTED = {
    "a_or_b": {1, 3},
    "exactly_b": {3},  # 60 is exactly B's threshold
    "not_a": {2, 3, 4},
    "low": {2},
    "not_low": {1, 3},
    "matrix": {1},
}


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """The small data files test_validate's specs refer to."""
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


@pytest.fixture
def graded(make_project: Any) -> api.Project:
    return make_project(GRADED, {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL})


def test_grades_at_their_exact_thresholds_and_below(graded: api.Project) -> None:
    """A score equal to a threshold earns that grade; under the lowest one earns `below`."""
    got = compute(graded, HAND_AS_OF)
    ref = Reference(graded.spec, HAND_CONTACTS, {"email": HAND_EMAIL}, HAND_AS_OF)
    assert got.scores["fit"] == EXPECTED_SCORES
    assert {k: ref.grade("fit", k) for k in EXPECTED_GRADES} == EXPECTED_GRADES
    assert got.members == EXPECTED
    assert ref.evaluate().members == EXPECTED


def test_grade_boundaries_one_by_one() -> None:
    from segcli.spec import model as m

    sm = m.ScoreModel("fit", (), grades=(("A", 80.0), ("B", 60.0)), below="Z")
    assert [sm.grade_of(s) for s in (80.0, 79.999, 60.0, 59.9, -5.0, 1e9)] == [
        "A",
        "B",
        "B",
        "Z",
        "Z",
        "A",
    ]
    assert m.ScoreModel("x", (), grades=(("A", 1.0),)).grade_of(0.0) == "F"  # default below


def test_scores_file_has_the_grade_column(graded: api.Project, tmp_path: Path) -> None:
    api.run(graded, as_of=HAND_AS_OF, out_dir=tmp_path / "out", state_dir=tmp_path / "st")
    frame = pl.read_parquet(tmp_path / "out" / "scores.parquet")
    assert frame.columns == ["id", "fit", "fit_pct", "fit_grade"]
    assert dict(zip(frame["id"], frame["fit_grade"], strict=True)) == EXPECTED_GRADES
    assert frame["fit_grade"].null_count() == 0


def test_models_without_grades_have_no_grade_column(make_project: Any, tmp_path: Path) -> None:
    spec = HAND_SOURCES + "scoring:\n  e: {rules: [{name: r, points: 1, when: {all: []}}]}\n"
    p = make_project(spec, {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL})
    api.run(p, as_of=HAND_AS_OF, out_dir=tmp_path / "out", state_dir=tmp_path / "st")
    assert pl.read_parquet(tmp_path / "out" / "scores.parquet").columns == ["id", "e", "e_pct"]


def test_explain_says_grades_in_words(graded: api.Project, tmp_path: Path) -> None:
    seg = explain_segment(graded, "a_or_b", as_of="2026-04-01T10:00:00+00:00")
    assert "    grade in model fit is one of ['A', 'B']" in seg.lines
    who = explain_contact(graded, "3", as_of="2026-04-01T10:00:00+00:00", state_dir=tmp_path)
    assert "score fit: 60 (60% of sales-ready 100), grade B (A >= 100, B >= 60, C >= 20)" in (
        who.lines
    )
    assert "      [x] grade in model fit is exactly 'B'  (value: B)" not in who.lines
    assert "      [x] grade in model fit is 'B'  (value: B)" in who.lines
    score = next(s for s in who.data["scores"] if s["model"] == "fit")
    assert score["grade"] == "B"


BAD_GRADES = [
    (
        "  fit:\n    rules: [{name: r, points: 1, when: {all: []}}]\n    grades: {A: 60, B: 80}\n",
        "S006",
        "grade B's threshold 80 is not below the previous grade's (A: 60)",
    ),
    (
        "  fit:\n    rules: [{name: r, points: 1, when: {all: []}}]\n    grades: {A: high}\n",
        "S004",
        "grade A must be a number, got string 'high'",
    ),
    (
        "  fit:\n    rules: [{name: r, points: 1, when: {all: []}}]\n    grades: []\n",
        "S004",
        "grades must be a non-empty mapping of grade: lowest score, got a list",
    ),
    (
        "  fit:\n    rules: [{name: r, points: 1, when: {all: []}}]\n    below: E\n",
        "S015",
        "below needs grades",
    ),
    (
        "  fit:\n    rules: [{name: r, points: 1, when: {all: []}}]\n"
        "    grades: {A: 1, F: 0}\n    below: F\n",
        "S015",
        "below names grade 'F', which grades already gives",
    ),
]


@pytest.mark.parametrize(("body", "code", "message"), BAD_GRADES)
def test_bad_grades_are_located(spec_dir: Path, body: str, code: str, message: str) -> None:
    text = segments("  a: {where: {all: []}}\n") + "scoring:\n" + body
    diags = diagnostics(spec_dir, text)
    assert [(d.code, d.message) for d in diags] == [(code, message)]
    assert diags[0].line > 0 and diags[0].col > 0


MODEL = "scoring:\n  fit:\n    rules: [{name: r, points: 1, when: {all: []}}]\n"
BAD_CONDITIONS = [
    ("{grade: {model: fit, eq: E}}", MODEL + "    grades: {A: 1}\n", "S006", "gives no grade"),
    ("{grade: {model: fit, eq: A}}", MODEL, "S015", "scoring model 'fit' declares no grades"),
    ("{grade: {model: fot, eq: A}}", MODEL, "S014", "unknown scoring model 'fot'"),
    ("{grade: {model: fit, gte: A}}", MODEL + "    grades: {A: 1}\n", "S007", "unknown operator"),
    ("{grade: {model: fit}}", MODEL + "    grades: {A: 1}\n", "S005", "grade needs an operator"),
    ("{grade: {in: [A]}}", MODEL + "    grades: {A: 1}\n", "S005", "grade needs model"),
    ("{grade: {model: fit, eq: 1}}", MODEL + "    grades: {A: 1}\n", "S004", "grades are names"),
]


@pytest.mark.parametrize(("cond", "scoring", "code", "message"), BAD_CONDITIONS)
def test_bad_grade_conditions_are_located(
    spec_dir: Path, cond: str, scoring: str, code: str, message: str
) -> None:
    text = segments(f"  a:\n    where: {cond}\n") + scoring
    diags = diagnostics(spec_dir, text)
    assert [d.code for d in diags] == [code], diags
    assert message in diags[0].message
    assert diags[0].line == 8 and diags[0].col > 1


def test_grades_cannot_be_used_in_scoring_rules(spec_dir: Path) -> None:
    text = segments("  a: {where: {all: []}}\n") + (
        "scoring:\n  fit:\n    rules: [{name: r, points: 1, when: {grade: {model: fit, eq: A}}}]\n"
        "    grades: {A: 1}\n"
    )
    diags = diagnostics(spec_dir, text)
    assert [d.message for d in diags] == ["a scoring rule's `when` cannot use `grade:`"]
