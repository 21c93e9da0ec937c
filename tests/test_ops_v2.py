"""SPEC §2.6 conditions: `at_least: {n, of}`, column operands (`{column: C, offset: D}`) and
the `offset:` of a field leaf — hand-made cases with expected answers on the Polars and DuckDB
engines and the reference evaluator, their edge cases (n 0, n = len, nulls on either side,
DST and month ends), hypothesis against the reference on both engines, located diagnostics,
explain's words and the values explain --contact shows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import Computed, write_project
from hypothesis import given
from reference import Reference
from test_reference import (
    HAND_AS_OF,
    HAND_CONTACTS,
    HAND_EMAIL,
    HAND_SOURCES,
    SETTINGS,
    Case,
    assert_matches,
    cases,
)
from test_validate import DATA, diagnostics

from segcli import api
from segcli.spec.schema import json_schema
from segcli.views.explain import explain_contact, explain_segment

FEW = SETTINGS.__class__(SETTINGS, max_examples=40)


def run(project: api.Project, as_of: Any, engine: str) -> Computed:
    ev, _ = api.compute(project, as_of, engine=engine)
    keys = ev.contact_keys().to_list()

    def true_keys(flags: Any) -> set[Any]:
        return {k for k, v in zip(keys, flags.to_list(), strict=True) if v}

    return Computed(
        {n: true_keys(ev.member(n)) for n in ev.segments},
        {n: true_keys(ev.matches(n)) for n in ev.segments},
        {m: dict(zip(keys, ev.score(m).to_list(), strict=True)) for m in project.spec.scoring},
    )


def located(tmp_path: Path, where: str, head: str | None = None) -> list[Any]:
    """The diagnostics of one segment `a: {where: WHERE}` over tests/projects/errors."""
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    head = head or (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: contact_id}\n"
        "  email: {path: email.csv, key: contact_id, time: occurred_at, type: event_type}\n"
    )
    return diagnostics(tmp_path, head + "segments:\n  a:\n    where: " + where + "\n")


# ====================================================================== at_least

# Over test_reference's hand data: 1 DE/30/signed Mar 1, 2 all null, 3 us/50, 4 US/18.
DE = "{field: country, eq: DE}"
ADULT = "{field: age, gte: 25}"
CLICKED = "{event: {source: email, type: click}}"
AT_LEAST: list[tuple[str, set[int]]] = [
    (f"{{at_least: {{n: 2, of: [{DE}, {ADULT}, {CLICKED}]}}}}", {1, 3}),
    (f"{{at_least: {{n: 3, of: [{DE}, {ADULT}, {CLICKED}]}}}}", {1}),  # n = len: all
    (f"{{at_least: {{n: 1, of: [{DE}, {ADULT}, {CLICKED}]}}}}", {1, 3}),  # n 1: any
    (f"{{at_least: {{n: 0, of: [{DE}, {ADULT}]}}}}", {1, 2, 3, 4}),  # n 0: true
    ("{at_least: {n: 0, of: []}}", {1, 2, 3, 4}),  # n 0 of nothing: still true
    (f"{{not: {{at_least: {{n: 2, of: [{DE}, {ADULT}, {CLICKED}]}}}}}}", {2, 4}),
    # a null fails the positive leaf (contact 2 counts 0, never "unknown")
    ("{at_least: {n: 1, of: [{field: age, lt: 20}, {field: country, ne: US}]}}", {1, 2, 3, 4}),
    # nested in all/any, and holding another at_least
    (
        f"{{all: [{{field: email, is_null: false}}, {{at_least: {{n: 2, of: [{DE}, {ADULT}, "
        f"{{at_least: {{n: 1, of: [{CLICKED}]}}}}]}}}}]}}",
        {1, 3},
    ),
]


@pytest.fixture(scope="module")
def at_least_project(tmp_path_factory: pytest.TempPathFactory) -> api.Project:
    segs = [f"  s{i}: {{where: {c}}}" for i, (c, _) in enumerate(AT_LEAST)]
    segs.append(f"  ex: {{where: {{all: []}}, exclude: {AT_LEAST[0][0]}}}")
    scoring = (
        "scoring:\n  fit:\n    rules:\n"
        f"      - {{name: two of three, points: 10, when: {AT_LEAST[0][0]}}}\n"
        f"      - {{name: none needed, points: 1, when: {AT_LEAST[4][0]}}}\n"
    )
    text = HAND_SOURCES + scoring + "segments:\n" + "\n".join(segs) + "\n"
    root = tmp_path_factory.mktemp("at_least")
    files = {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL}
    return api.load(write_project(root, text, files))


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_at_least_hand_cases(at_least_project: api.Project, engine: str) -> None:
    got = run(at_least_project, HAND_AS_OF, engine)
    ref = Reference(at_least_project.spec, HAND_CONTACTS, {"email": HAND_EMAIL}, HAND_AS_OF)
    for i, (cond, want) in enumerate(AT_LEAST):
        assert ref.members(f"s{i}") == want, f"reference: {cond}"
        assert got.members[f"s{i}"] == want, f"{engine}: {cond}"
    assert got.members["ex"] == {2, 4} == ref.members("ex")  # in exclude
    # in a scoring rule's when: 10 for two of three, 1 for everyone (n 0)
    assert got.scores["fit"] == {1: 11.0, 2: 1.0, 3: 11.0, 4: 1.0}
    assert_matches(got, ref.evaluate())


def test_at_least_in_words_and_in_explain_contact(
    at_least_project: api.Project, tmp_path: Path
) -> None:
    seg = explain_segment(at_least_project, "s0", as_of=HAND_AS_OF.isoformat())
    assert "    at least 2 of these 3:" in seg.lines
    assert "      country is 'DE'" in seg.lines
    zero = explain_segment(at_least_project, "s4", as_of=HAND_AS_OF.isoformat())
    assert "    always true (at least 0 of 0):" in zero.lines
    who = explain_contact(at_least_project, "3", as_of=HAND_AS_OF.isoformat(), state_dir=tmp_path)
    # contact 3: not DE, 50 years old, clicked: two of three hold, and the count is shown
    assert "      [x] at least 2 of these 3:  (value: 2)" in who.lines
    assert "        [ ] country is 'DE'" in who.lines
    assert "        [x] age is at least 25" in who.lines


def test_at_least_is_in_the_json_schema() -> None:
    schema = json.dumps(json_schema())
    want = '"at_least": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0'
    assert want in schema


ONE = "of: [{field: age, gt: 1}]"
NOT_INT = "at_least.n must be an integer >= 0, got"
TOO_MANY = "cannot exceed the number of conditions in of"
BAD_AT_LEAST = [
    (
        "{at_least: {n: 3, of: [{field: age, gt: 1}, {field: age, lt: 9}]}}",
        "S006",
        f"n (3) {TOO_MANY} (2)",
    ),
    ("{at_least: {n: 1, of: []}}", "S006", f"n (1) {TOO_MANY} (0)"),
    (f"{{at_least: {{n: -1, {ONE}}}}}", "S004", f"{NOT_INT} -1"),
    (f"{{at_least: {{n: 1.5, {ONE}}}}}", "S004", f"{NOT_INT} 1.5"),
    (f"{{at_least: {{n: two, {ONE}}}}}", "S004", f"{NOT_INT} 'two'"),
    (f"{{at_least: {{n: true, {ONE}}}}}", "S004", f"{NOT_INT} True"),
    (f"{{at_least: {{{ONE}}}}}", "S005", "at_least needs 'n'"),
    ("{at_least: {n: 1}}", "S005", "at_least needs 'of'"),
    ("{at_least: {n: 1, of: {field: age, gt: 1}}}", "S004", "of takes a list of conditions"),
    (f"{{at_least: {{n: 1, {ONE}, some: 2}}}}", "S003", "unknown key 'some' in at_least"),
    ("{at_least: [1, 2]}", "S004", "at_least must be a mapping"),
    ("{at_least: {n: 1, of: [{field: agee, gt: 1}]}}", "S009", "unknown column 'agee'"),
]


@pytest.mark.parametrize(("where", "code", "message"), BAD_AT_LEAST)
def test_bad_at_least_is_located(tmp_path: Path, where: str, code: str, message: str) -> None:
    diags = located(tmp_path, where)
    assert [d.code for d in diags] == [code], diags
    assert message in diags[0].message
    assert diags[0].line == 7 and diags[0].col > 12, diags[0]


def test_at_least_n_error_points_at_n(tmp_path: Path) -> None:
    (d,) = located(tmp_path, "{at_least: {n: 3, of: [{field: age, gt: 1}]}}")
    assert (d.line, d.col) == (7, 27)  # the 3


@FEW
@given(case=cases(with_scoring=True, v2=True))
def test_random_v2_conditions_on_polars(case: Case, project_dirs: Any) -> None:
    cfg = write_project(project_dirs(), case.yaml_text, case.files)
    got = run(api.load(cfg), case.as_of, "polars")
    ref = Reference(case.spec, case.contacts, case.tables, case.as_of).evaluate()
    assert_matches(got, ref, repr(case))


@FEW
@given(case=cases(with_scoring=True, v2=True))
def test_random_v2_conditions_on_duckdb(case: Case, project_dirs: Any) -> None:
    cfg = write_project(project_dirs(), case.yaml_text, case.files)
    got = run(api.load(cfg), case.as_of, "duckdb")
    ref = Reference(case.spec, case.contacts, case.tables, case.as_of).evaluate()
    assert_matches(got, ref, repr(case))
