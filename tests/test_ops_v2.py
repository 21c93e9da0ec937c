"""SPEC §2.6 conditions: `at_least: {n, of}`, column operands (`{column: C, offset: D}`) and
the `offset:` of a field leaf — hand-made cases with expected answers on the Polars and DuckDB
engines and the reference evaluator, their edge cases (n 0, n = len, nulls on either side,
DST and month ends), hypothesis against the reference on both engines, located diagnostics,
explain's words and the values explain --contact shows."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Computed, write_project
from hypothesis import given
from reference import Reference
from test_engines_duckdb import compute
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
    return compute(project, as_of, engine)


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


# ====================================================================== column operands

BERLIN_SOURCES = """
version: 1
timezone: Europe/Berlin
sources:
  contacts:
    path: contacts.csv
    key: id
    columns: {renewal_at: datetime, trial_ends_at: datetime, started: datetime, signed: date}
  crm: {path: crm.csv, key: cid, relation: one}
  orders: {path: orders.csv, key: cid, time: ordered_at, columns: {shipped_at: datetime}}
"""
CONTACTS: list[dict[str, Any]] = [
    {
        "id": 1,
        "renewal_at": "2026-03-10T12:00:00Z",
        "trial_ends_at": "2026-03-20T12:00:00Z",
        "started": "2026-03-28T12:00:00",  # naive: Berlin, CET (the day before DST starts)
        "plan": "pro",
        "plan2": "pro",
        "a": 3,
        "b": 2.5,
        "signed": "2026-03-10",
    },
    {
        "id": 2,
        "renewal_at": None,  # null on the left
        "trial_ends_at": "2026-03-20T12:00:00Z",
        "started": "2026-03-15T12:00:00",  # CET; a month later is CEST
        "plan": "pro",
        "plan2": "free",
        "a": 2,
        "b": 2.0,
        "signed": None,
    },
    {
        "id": 3,
        "renewal_at": "2026-03-25T12:00:00Z",
        "trial_ends_at": None,  # null on the right
        "started": "2026-03-31T10:00:00",  # minus 1mo: February has no 31st
        "plan": None,
        "plan2": "free",
        "a": None,
        "b": 1.0,
        "signed": "2026-03-26",
    },
    {
        "id": 4,
        "renewal_at": "2026-03-20T12:00:00Z",  # equal to its trial end
        "trial_ends_at": "2026-03-20T12:00:00Z",
        "started": "2026-04-29T02:30:00+02:00",  # minus 1mo: 02:30 on 03-29 does not exist
        "plan": "free",
        "plan2": None,
        "a": 5,
        "b": None,
        "signed": "2026-03-20",
    },
    {
        "id": 5,
        "renewal_at": "2026-04-01T12:00:00Z",
        "trial_ends_at": "2026-03-20T12:00:00Z",
        "started": "2026-11-25T01:30:00Z",  # 02:30 CET; minus 1mo: 02:30 on 10-25 is twice
        "plan": "free",
        "plan2": "free",
        "a": 1,
        "b": 1.5,
        "signed": "2026-04-02",
    },
    {
        "id": 6,
        "renewal_at": "2026-10-01T12:00:00Z",
        "trial_ends_at": "2026-10-01T12:00:00Z",
        "started": "2020-10-25T01:30:00Z",  # the second 02:30 of 2020-10-25 (fold 1)
        "plan": "pro",
        "plan2": "PRO",
        "a": 0,
        "b": 0.0,
        "signed": "2026-10-01",
    },
]
CRM = [{"cid": 1, "tier": "pro"}, {"cid": 2, "tier": "pro"}, {"cid": 5, "tier": None}]
ORDERS = [  # shipped after the promised day, or within 2 days of ordering
    {
        "cid": 1,
        "ordered_at": "2026-03-01T10:00:00Z",
        "promised": "2026-03-03T10:00:00Z",
        "shipped_at": "2026-03-02T10:00:00Z",
    },
    {
        "cid": 1,
        "ordered_at": "2026-03-05T10:00:00Z",
        "promised": "2026-03-06T10:00:00Z",
        "shipped_at": "2026-03-09T10:00:00Z",
    },
    {
        "cid": 2,
        "ordered_at": "2026-03-05T10:00:00Z",
        "promised": None,
        "shipped_at": "2026-03-06T10:00:00Z",
    },
    {
        "cid": 3,
        "ordered_at": "2026-03-05T10:00:00Z",
        "promised": "2026-03-07T10:00:00Z",
        "shipped_at": None,
    },
    {
        "cid": 4,
        "ordered_at": "2026-03-05T10:00:00Z",
        "promised": "2026-03-07T10:00:00Z",
        "shipped_at": "2026-03-07T10:00:00Z",
    },
]
OPS_AS_OF = "2026-04-01T00:00:00+00:00"
TE = "{column: trial_ends_at}"
COLUMN_CASES: list[tuple[str, set[int]]] = [
    (f"{{field: renewal_at, lt: {TE}}}", {1}),
    (f"{{field: renewal_at, lte: {TE}}}", {1, 4, 6}),
    (f"{{field: renewal_at, gt: {TE}}}", {5}),
    (f"{{field: renewal_at, gte: {TE}}}", {4, 5, 6}),
    (f"{{field: renewal_at, eq: {TE}}}", {4, 6}),
    # null on either side: positive operators fail, ne is eq's exact complement
    (f"{{field: renewal_at, ne: {TE}}}", {1, 2, 3, 5}),
    (f"{{not: {{field: renewal_at, eq: {TE}}}}}", {1, 2, 3, 5}),
    (f"{{not: {{field: renewal_at, lt: {TE}}}}}", {2, 3, 4, 5, 6}),
    # include_missing decides the leaf's own null, not the operand's
    (f"{{field: renewal_at, lt: {TE}, include_missing: true}}", {1, 2}),
    (f"{{field: renewal_at, lt: {TE}, include_missing: false}}", {1}),
    # offsets on the operand: 03-10 12:00 <= 03-20 12:00 - 10d (equal) holds, < does not
    ("{field: renewal_at, lte: {column: trial_ends_at, offset: -10d}}", {1}),
    ("{field: renewal_at, lt: {column: trial_ends_at, offset: -10d}}", set()),
    ("{field: trial_ends_at, lt: {column: renewal_at, offset: +1h}}", {4, 5, 6}),
    # between with column bounds, or one column and one literal
    (f"{{field: renewal_at, between: [{{column: trial_ends_at, offset: -10d}}, {TE}]}}", {1, 4, 6}),
    (f"{{field: renewal_at, between: [2026-03-15, {TE}]}}", {4, 6}),
    ("{field: renewal_at, between: [{column: signed}, -2d]}", {1, 4}),
    # numbers (int against float), text, booleans; a relation-one source's column
    ("{field: a, gt: {column: b}}", {1}),
    ("{field: a, gte: {column: b}}", {1, 2, 6}),
    ("{field: plan, eq: {column: plan2}}", {1, 5}),  # case-sensitive: pro is not PRO
    ("{field: plan, ne: {column: plan2}}", {2, 3, 4, 6}),
    ("{field: plan, eq: {column: crm.tier}}", {1, 2}),
    ("{field: crm.tier, eq: {column: plan}}", {1, 2}),
    # a date (its local midnight) against a datetime
    ("{field: signed, lt: {column: renewal_at}}", {1, 4, 6}),
    ("{field: signed, eq: {column: renewal_at, offset: -12h}}", set()),  # midnight is 23:00Z
    # inside an event's where: columns of the same row
    ("{event: {source: orders, where: {shipped_at: {gt: {column: promised}}}}}", {1}),
    (
        "{event: {source: orders, where: {shipped_at: {lte: {column: ordered_at, offset: 2d}}}}}",
        {1, 2, 4},
    ),
    ("{event: {source: orders, where: {shipped_at: {ne: {column: promised}}}}}", {1, 2, 3}),
    (
        "{event: {source: orders, count: {eq: 0}, where: {shipped_at: {eq: {column: promised}}}}}",
        {1, 2, 3, 5, 6},
    ),
]

# SPEC §2.6 `offset:` of a field leaf, on `started` (Berlin). Expected values, and why:
OFFSET_CASES: list[tuple[str, set[int]]] = [
    # 1: 2026-03-28 12:00 CET plus 1d: a day is 24 h even across the DST change of 03-29, so
    # it is 13:00 CEST on 03-29 (not 12:00); 24h is the same instant
    ("{field: started, offset: 1d, eq: 2026-03-29T13:00:00}", {1}),
    ("{field: started, offset: 24h, eq: 2026-03-29T13:00:00}", {1}),
    ("{field: started, offset: 1d, eq: 2026-03-29T12:00:00}", set()),
    # 2: 03-15 12:00 CET plus 1mo is 04-15 12:00 CEST: a calendar step keeps the local time
    # (743 hours later, not 744)
    ("{field: started, offset: 1mo, eq: 2026-04-15T12:00:00}", {2}),
    ("{field: started, offset: 744h, eq: 2026-04-15T13:00:00}", {2}),
    # 3: 03-31 10:00 minus 1mo clamps to February's end: 02-28 10:00
    ("{field: started, offset: -1mo, eq: 2026-02-28T10:00:00}", {3}),
    # 4: 04-29 02:30 CEST minus 1mo is 03-29 02:30, which the spring change skips: read with
    # the offset before the change (CET), so 01:30Z = 03:30 CEST
    ("{field: started, offset: -1mo, eq: 2026-03-29T03:30:00}", {4}),
    # 5: 11-25 02:30 CET minus 1mo is 10-25 02:30, which happens twice: the instant was in
    # no repeated hour (fold 0), so the first one (CEST, 00:30Z)
    ("{field: started, offset: -1mo, eq: '2026-10-25T00:30:00+00:00'}", {5}),
    # 6: the second 02:30 of 2020-10-25 plus 6y is the second 02:30 of 2026-10-25 (01:30Z)
    ("{field: started, offset: 6y, eq: '2026-10-25T01:30:00+00:00'}", {6}),
    # offsets combine with every operator: "the 14-day trial ended in the last 7 days" (2's
    # ended 03-29 11:00Z; 1's ends 04-11, after as_of), "... ended last month"
    ("{field: started, offset: 14d, within: 7d}", {2}),
    ("{field: started, offset: 14d, during: last_month}", {2}),
    ("{field: started, offset: -1d, gte: {column: renewal_at}}", {1, 3, 4, 5}),
    ("{field: signed, offset: 1mo, gt: {column: renewal_at, offset: 1mo}}", {3, 5}),
    ("{field: started, offset: 1y, is_null: false}", {1, 2, 3, 4, 5, 6}),
]


@pytest.fixture(scope="module")
def ops_project(tmp_path_factory: pytest.TempPathFactory) -> api.Project:
    cases_ = COLUMN_CASES + OFFSET_CASES
    segs = [f"  s{i}: {{where: {c}}}" for i, (c, _) in enumerate(cases_)]
    root = tmp_path_factory.mktemp("column_ops")
    files = {"contacts.csv": CONTACTS, "crm.csv": CRM, "orders.csv": ORDERS}
    text = BERLIN_SOURCES + "segments:\n" + "\n".join(segs) + "\n"
    return api.load(write_project(root, text, files))


def reference_of(project: api.Project) -> Reference:
    from reference import to_instant

    tz = project.spec.timezone

    def typed(row: dict[str, Any], times: tuple[str, ...]) -> dict[str, Any]:
        out = dict(row)
        for c in times:
            if out.get(c) is not None:
                out[c] = to_instant(out[c], tz)
        return out

    contacts = [typed(c, ("renewal_at", "trial_ends_at", "started")) for c in CONTACTS]
    for c in contacts:
        if c["signed"] is not None:
            c["signed"] = date.fromisoformat(c["signed"])
    orders = [typed(o, ("ordered_at", "promised", "shipped_at")) for o in ORDERS]
    as_of = datetime.fromisoformat(OPS_AS_OF)
    return Reference(project.spec, contacts, {"crm": CRM, "orders": orders}, as_of)


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_column_operands_and_offsets_hand_cases(ops_project: api.Project, engine: str) -> None:
    got = run(ops_project, OPS_AS_OF, engine)
    ref = reference_of(ops_project)
    for i, (cond, want) in enumerate(COLUMN_CASES + OFFSET_CASES):
        assert ref.members(f"s{i}") == want, f"reference: {cond}"
        assert got.members[f"s{i}"] == want, f"{engine}: {cond}"


def test_explain_says_both_sides_and_explain_contact_shows_their_values(
    ops_project: api.Project, tmp_path: Path
) -> None:
    i = COLUMN_CASES.index(("{field: renewal_at, lte: {column: trial_ends_at, offset: -10d}}", {1}))
    seg = explain_segment(ops_project, f"s{i}", as_of=OPS_AS_OF)
    assert "    renewal_at is at most column trial_ends_at - 10d" in seg.lines
    who = explain_contact(ops_project, "1", as_of=OPS_AS_OF, state_dir=tmp_path)
    assert (
        "      [x] renewal_at is at most column trial_ends_at - 10d  (value: "
        "2026-03-10T12:00:00+00:00, compared with 2026-03-10T12:00:00+00:00)"
    ) in who.lines
    j = len(COLUMN_CASES) + OFFSET_CASES.index(
        ("{field: started, offset: 1d, eq: 2026-03-29T13:00:00}", {1})
    )
    seg = explain_segment(ops_project, f"s{j}", as_of=OPS_AS_OF)
    assert "    started + 1d is 2026-03-29T13:00:00" in seg.lines
    # the value shown is the shifted one: 13:00 CEST is 11:00Z
    assert (
        "      [x] started + 1d is 2026-03-29T13:00:00  (value: 2026-03-29T11:00:00+00:00)"
    ) in who.lines
    who2 = explain_contact(ops_project, "2", as_of=OPS_AS_OF, state_dir=tmp_path)
    assert (
        "      [ ] renewal_at is at most column trial_ends_at - 10d  (value: empty, compared "
        "with 2026-03-10T12:00:00+00:00)"
    ) in who2.lines


def test_column_operands_and_offset_are_in_the_json_schema() -> None:
    conds = {next(iter(c["required"])): c for c in json_schema()["$defs"]["condition"]["anyOf"]}
    field = conds["field"]["properties"]
    operand = field["gt"]["anyOf"][-1]
    assert operand["required"] == ["column"] and set(operand["properties"]) == {"column", "offset"}
    assert field["between"]["items"]["anyOf"][-1] == operand
    assert field["offset"]["pattern"] == r"^[-+]?\d+(h|d|w|mo|y)$"
    assert "anyOf" not in field["in"] and "anyOf" not in field["contains"]
    where = conds["event"]["properties"]["event"]["properties"]["where"]
    assert where["additionalProperties"]["properties"]["eq"]["anyOf"][-1] == operand
    score = conds["score"]["properties"]["score"]["properties"]
    assert "anyOf" not in score["gt"] or operand not in score["gt"]["anyOf"]


HEAD_OPS = (
    "version: 1\ntimezone: Europe/Berlin\nsources:\n"
    "  contacts: {path: contacts.csv, key: contact_id, columns: {signed: date}}\n"
    "  email: {path: email.csv, key: contact_id, time: occurred_at, type: event_type}\n"
)
BAD_COLUMNS = [
    ("{field: age, gt: {column: agee}}", "S009", "unknown column 'agee' in source 'contacts'"),
    (
        "{field: age, gt: {column: country}}",
        "S012",
        "'gt' compares two numbers or two times, but column 'age' has type int and column "
        "'country' has type str",
    ),
    (
        "{field: country, eq: {column: age}}",
        "S012",
        "'eq' compares values of one kind, but column 'country' has type str and column 'age' "
        "has type int",
    ),
    ("{field: country, gt: {column: email}}", "S012", "'gt' compares two numbers or two times"),
    (
        "{field: age, lt: {column: age, offset: 1d}}",
        "S012",
        "offset 1d needs a date or datetime column, but column 'age' has type int",
    ),
    ("{field: age, offset: 1d, gt: 3}", "S012", "offset shifts a date or datetime"),
    ("{field: age, offset: 2 days, gt: 3}", "S006", "bad duration '2 days' for offset"),
    ("{field: age, gt: {column: age, offset: 1x}}", "S006", "bad duration '1x' for offset"),
    ("{field: age, gt: {column: age, offst: 1d}}", "S003", "unknown key 'offst'"),
    ("{field: age, gt: {offset: 1d}}", "S005", "a column operand needs 'column'"),
    ("{field: age, gt: {column: 3}}", "S004", "column must be a non-empty string"),
    ("{field: age, in: {column: age}}", "S004", "'in' takes a literal, not a column"),
    ("{field: email, contains: {column: email}}", "S004", "'contains' takes a literal"),
    (
        "{field: email, eq: {column: email}, ignore_case: true}",
        "S015",
        "ignore_case applies to literal text, not to a comparison with a column",
    ),
    (
        "{score: {model: m, gt: {column: age}}}",
        "S004",
        "a column operand is only allowed in field: leaves and where: rows",
    ),
    ("{field: age, gt: {column: web.page}}", "S008", "unknown source 'web'"),
    ("{field: age, gt: {column: email.url}}", "S013", "needs source 'email' to be relation: one"),
    ("{event: {source: email, where: {url: {eq: {column: urll}}}}}", "S009", "unknown column"),
    (
        "{event: {source: email, where: {occurred_at: {gt: {column: url}}}}}",
        "S012",
        "column 'occurred_at' has type datetime and column 'url' has type str",
    ),
    ("{event: {source: email, where: {url: {offset: 1d, eq: x}}}}", "S007", "'offset'"),
    ("{field: age, offset: 1d}", "S012", "offset shifts"),
    (
        "{field: age, ever: true, gt: {column: age}}",
        "S015",
        "ever: true cannot be combined with a column operand",
    ),
    (
        "{field: signed, ever: true, offset: 1d, gt: 2026-01-01}",
        "S015",
        "ever: true cannot be combined with offset",
    ),
]


@pytest.mark.parametrize(("where", "code", "message"), BAD_COLUMNS)
def test_bad_column_operands_and_offsets_are_located(
    tmp_path: Path, where: str, code: str, message: str
) -> None:
    diags = located(tmp_path, where, HEAD_OPS)
    assert code in [d.code for d in diags], diags
    d = next(d for d in diags if d.code == code)
    assert message in d.message, d
    assert d.line == 8 and d.col > 12, d


def test_an_operand_error_points_at_the_operand(tmp_path: Path) -> None:
    (d,) = located(tmp_path, "{field: age, between: [1, {column: agee}]}", HEAD_OPS)
    assert (d.code, d.line, d.col) == ("S009", 8, 38)  # the {column: agee} mapping
    assert d.help == "did you mean 'age'?"


@pytest.mark.parametrize(
    "dialect", ["duckdb", "spark", "snowflake", "bigquery", "postgres", "trino"]
)
def test_every_dialect_parses_column_operands_and_offsets(
    ops_project: api.Project, dialect: str
) -> None:
    import sqlglot

    sql = api.compile_sql(ops_project, dialect, OPS_AS_OF)
    tree = sqlglot.parse_one(sql, read=dialect)
    assert len(tree.selects) == 1 + len(COLUMN_CASES) + len(OFFSET_CASES)


def test_column_operands_in_sequence_steps_and_per_groups(make_project: Any) -> None:
    """where: rows of a sequence step and of a per condition compare columns of one row."""
    late = "{shipped_at: {gt: {column: promised}}}"
    early = "{shipped_at: {lt: {column: promised}}}"
    text = BERLIN_SOURCES + (
        "segments:\n"
        f"  on_time_then_late: {{where: {{sequence: {{steps: [{{source: orders, where: {early}}}, "
        f"{{source: orders, where: {late}}}]}}}}}}\n"
        f"  late_promises: {{where: {{event: {{source: orders, per: promised, where: {late}}}}}}}\n"
    )
    files = {"contacts.csv": CONTACTS, "crm.csv": CRM, "orders.csv": ORDERS}
    project = make_project(text, files)
    ref = reference_of(project)
    for engine in ("polars", "duckdb"):
        got = run(project, OPS_AS_OF, engine)
        assert got.members["on_time_then_late"] == {1} == ref.members("on_time_then_late")
        assert got.members["late_promises"] == {1} == ref.members("late_promises")


def test_fingerprints_of_leaves_without_offset_are_unchanged() -> None:
    """Segment fingerprints hash the definition's repr: a leaf without `offset` must print as
    before offsets existed, or every run after an upgrade would announce edited segments."""
    from segcli.spec import model as m

    plain = m.Test((m.Op("eq", 1),))
    assert (
        repr(plain)
        == "Test(ops=(Op(name='eq', value=1),), ignore_case=False, include_missing=None)"
    )
    shifted = m.Test((m.Op("eq", 1),), offset=m.Offset(m.Duration("1d", 86400)))
    assert repr(shifted) != repr(plain) and "offset=Offset(" in repr(shifted)


# ---------------------------------------------------------------- at_least with accounts, segments


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_at_least_in_account_and_segment_contexts(make_project: Any, engine: str) -> None:
    """at_least inside an account's where, an account condition and segment references inside
    at_least (the reference graph orders them: zz_late is computed before dep)."""
    from test_accounts import AS_OF as ACCT_AS_OF
    from test_accounts import CONTACTS as ACCT_CONTACTS
    from test_accounts import EMAIL as ACCT_EMAIL
    from test_accounts import SOURCES as ACCT_SOURCES

    three = "[{field: role, eq: a}, {field: bounced, eq: true}, {segment: hb}]"
    text = ACCT_SOURCES + (
        "segments:\n"
        "  hb: {where: {field: bounced, eq: true}}\n"
        "  peer_two_of_three:\n"
        f"    where: {{account: {{where: {{at_least: {{n: 2, of: {three}}}}}}}}}\n"
        "  two_with_account: {where: {at_least: {n: 2, of: [{account: {where: {segment: hb}}},"
        " {field: role, eq: a}, {segment: hb}]}}}\n"
        "  dep: {where: {at_least: {n: 1, of: [{segment: zz_late}]}}}\n"
        "  zz_late: {where: {field: role, eq: b}}\n"
    )
    project = make_project(text, {"contacts.csv": ACCT_CONTACTS, "email.csv": ACCT_EMAIL})
    got = run(project, ACCT_AS_OF, engine)
    ref = Reference(project.spec, ACCT_CONTACTS, {"email": ACCT_EMAIL}, ACCT_AS_OF)
    # a bounced colleague (role a and bounced, or bounced and in hb: two of three)
    assert got.members["peer_two_of_three"] == {2, 3, 8} == ref.members("peer_two_of_three")
    # 1, 4, 5: role a and bounced; 8: role a and a bounced colleague
    assert got.members["two_with_account"] == {1, 4, 5, 8} == ref.members("two_with_account")
    assert got.members["dep"] == {2, 6, 9} == ref.members("dep")


def test_a_cycle_through_at_least_is_reported(tmp_path: Path) -> None:
    head = (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: contact_id}\n"
        "segments:\n  c1: {where: {at_least: {n: 1, of: [{segment: c2}]}}}\n  c2:\n    where: "
    )
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    diags = diagnostics(tmp_path, head + "{at_least: {n: 0, of: [{segment: c1}]}}\n")
    assert [d.code for d in diags] == ["S011"]
    assert "c1 -> c2 -> c1" in diags[0].message


def test_the_demo_uses_each_construct_with_members_but_not_everyone() -> None:
    """segments.yaml shows every feature (SPEC §1): at_least, a column operand with an
    offset, and a field leaf's offset, each with members on the demo data."""
    from segcli.spec import graph
    from segcli.spec import model as m

    project = api.load(Path(__file__).resolve().parent.parent / "segments.yaml")
    spec = project.spec
    kinds = {
        "two_buying_signals": lambda c: isinstance(c, m.AtLeastCond),
        "trial_in_first_week": lambda c: isinstance(c, m.FieldCond) and c.test.column_refs,
        "trial_ends_this_week": lambda c: isinstance(c, m.FieldCond) and c.test.offset,
    }
    ev, _ = api.compute(project, "2026-11-20")
    everyone = ev.contact_keys().len()
    for name, is_it in kinds.items():
        assert any(is_it(c) for c in graph.walk(spec.segments[name].where)), name
        assert 0 < int(ev.member(name).sum()) < everyone, name
