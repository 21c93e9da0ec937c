"""Sequences (SPEC §2.6): steps in strict time order, max_gap, within/during, same, then_not —
the compiled plan against expected answers and the reference evaluator, hand-made and with
hypothesis; their diagnostics, words, plan, JSON Schema, on the Polars and DuckDB engines."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from conftest import Table, compute, write_project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Reference
from test_validate import DATA, diagnostics

from segcli import api
from segcli.spec.schema import json_schema
from segcli.views.explain import explain_contact, explain_segment

AS_OF = datetime(2026, 3, 10, tzinfo=UTC)
SOURCES = """
version: 1
timezone: Europe/Berlin
sources:
  contacts: {path: contacts.csv, key: id}
  web: {path: web.csv, key: cid, time: at, type: kind, columns: {at: datetime, sess: str}}
  app: {path: app.csv, key: cid, time: at, type: kind, columns: {at: datetime, sess: str}}
"""


def t(day: int, hour: int = 10, sec: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, 0, sec, tzinfo=UTC)


def web(cid: int, at: datetime | None, kind: str, sess: str | None = "s1") -> dict[str, Any]:
    return {"cid": cid, "at": at, "kind": kind, "sess": sess, "page": "/p"}


CONTACTS = [{"id": i, "name": f"c{i}"} for i in range(1, 13)]
WEB = [
    web(1, t(1), "a"),
    web(1, t(2), "b"),  # 1: a then b, gap 1d
    web(2, t(1), "a"),
    web(2, t(1), "b"),  # 2: the same instant: b does not follow a
    web(3, t(1), "a"),
    web(3, t(3), "b"),  # 3: gap exactly 2d
    web(4, t(1), "a"),
    web(4, t(3, sec=1), "b"),  # 4: gap 2d + 1s
    web(5, t(9), "a"),
    web(5, t(9, 11), "b"),  # 5: b at 9th 11:00; wait 1d not over at as_of
    web(6, t(1), "a"),
    web(6, t(2), "b"),
    web(6, t(3), "c"),  # 6: c exactly at tk + 1d blocks
    web(7, t(1), "a", "s1"),
    web(7, t(2), "b", "s2"),  # 7: different sessions
    web(8, t(1), "a", None),
    web(8, t(2), "b", None),  # 8: null sessions share nothing
    web(9, t(1), "a"),
    web(9, t(2), "b"),
    web(9, t(3, sec=1), "c"),  # 9: c just after the wait: not blocked
    web(10, t(1), "a"),
    web(10, t(5), "a"),
    web(10, t(6), "b"),  # 10: only the later a is within max_gap of b
    web(11, None, "a"),
    web(11, t(2), "b"),  # 11: a row without a time is in no sequence
    web(12, t(1), "b"),
    web(12, t(11), "a"),  # 12: a after as_of is invisible
]
APP = [
    {"cid": 1, "at": t(4), "kind": "c", "sess": "s9"},  # pooled step source
    {"cid": 7, "at": t(3), "kind": "c", "sess": None},
]
AB = "{steps: [{source: web, type: a}, {source: web, type: b}]"
HAND: list[tuple[str, set[int]]] = [
    (AB + "}", {1, 3, 4, 5, 6, 7, 8, 9, 10}),
    (AB + ", max_gap: 2d}", {1, 3, 5, 6, 7, 8, 9, 10}),
    (AB + ", same: [sess]}", {1, 3, 4, 5, 6, 9, 10}),
    (AB + ", then_not: {step: {source: web, type: c}, wait: 1d}}", {1, 3, 4, 7, 8, 9, 10}),
    (AB + ", within: 7d}", {5, 10}),
    (AB + ", during: this_month}", {1, 3, 4, 5, 6, 7, 8, 9, 10}),
    ("{steps: [{source: web, type: b}, {source: [web, app], type: c}]}", {1, 6, 7, 9}),
    ("{steps: [{source: web, type: a}, {source: web, type: b}, {source: web, type: c}]}", {6, 9}),
    (
        "{steps: [{source: web, type: a}, {source: web, type: b}, {source: app, type: c}], "
        "same: [sess]}",
        set(),
    ),
    # then_not ignores the sequence's `same`: app's c (another session) exactly at tk + 2d
    # blocks 1; 5's wait has not elapsed.
    (
        AB + ", same: [sess], within: 9d, then_not: {step: {source: app, type: c}, wait: 2d}}",
        {3, 4, 6, 9, 10},
    ),
    (
        "{steps: [{source: web, type: a, where: {page: {eq: /p}}}, "
        "{source: web, type: b, where: {page: {ne: /p}}}]}",
        set(),
    ),
]


def files() -> dict[str, Any]:
    return {"contacts.csv": CONTACTS, "web.csv": WEB, "app.csv": APP}


@pytest.fixture(
    scope="module", params=["polars", "duckdb", pytest.param("spark", marks=pytest.mark.spark)]
)
def hand(tmp_path_factory: pytest.TempPathFactory, request: Any) -> tuple[api.Project, Any]:
    """The hand cases computed on each engine (the SQL engines chain steps with windows)."""
    if request.param == "spark":
        request.getfixturevalue("spark")  # the test run's one Spark session
    segs = "\n".join(f"  q{i}: {{where: {{sequence: {c}}}}}" for i, (c, _) in enumerate(HAND))
    root = tmp_path_factory.mktemp("seq")
    project = api.load(write_project(root, SOURCES + "segments:\n" + segs + "\n", files()))
    return project, compute(project, AS_OF, engine=request.param)


@pytest.mark.parametrize("index", range(len(HAND)))
def test_hand_written_sequence(hand: tuple[api.Project, Any], index: int) -> None:
    """Each case: the compiled plan and the reference both give the expected members."""
    project, got = hand
    ref = Reference(project.spec, CONTACTS, {"web": WEB, "app": APP}, AS_OF)
    name = f"q{index}"
    want = HAND[index][1]
    assert got.members[name] == want, HAND[index][0]
    assert ref.members(name) == want, HAND[index][0]


def test_edge_cases_named_by_the_spec(hand: tuple[api.Project, Any]) -> None:
    _, got = hand
    assert 2 not in got.members["q0"]  # equal timestamps do not follow each other
    assert 3 in got.members["q1"] and 4 not in got.members["q1"]  # a gap exactly at max_gap
    assert 5 not in got.members["q3"]  # then_not before its wait has elapsed is false
    assert 6 not in got.members["q3"] and 9 in got.members["q3"]  # a row at tk + wait blocks
    assert 8 not in got.members["q2"]  # `same` with nulls: a null matches nothing


def test_sequence_inside_not_exclude_and_scoring(make_project: Any) -> None:
    ab = AB + "}"
    spec = SOURCES + (
        "scoring:\n"
        f"  e: {{rules: [{{name: ab, points: 10, when: {{sequence: {ab}}}}}]}}\n"
        "segments:\n"
        f"  never: {{where: {{not: {{sequence: {ab}}}}}}}\n"
        f"  ex: {{where: {{all: []}}, exclude: {{sequence: {AB}, max_gap: 1d}}}}}}\n"
    )
    project = make_project(spec, files())
    ref = Reference(project.spec, CONTACTS, {"web": WEB, "app": APP}, AS_OF).evaluate()
    for engine in ("polars", "duckdb"):
        got = compute(project, AS_OF, engine=engine)
        assert got.members["never"] == {2, 11, 12}
        assert got.members["ex"] == {2, 3, 4, 11, 12}
        assert got.scores["e"][1] == 10.0 and got.scores["e"][2] == 0.0
        assert ref.members["never"] == got.members["never"]
        assert ref.members["ex"] == got.members["ex"]
        assert ref.scores["e"] == got.scores["e"]


def test_explain_says_the_sequence_and_its_plan(make_project: Any, tmp_path: Path) -> None:
    spec = SOURCES + (
        "segments:\n  cart:\n    where: {sequence: "
        + AB
        + ", max_gap: 2d, same: [sess], then_not: {step: {source: app, type: c}, wait: 1d}}}\n"
    )
    project = make_project(spec, files())
    seg = explain_segment(project, "cart", as_of=AS_OF.isoformat())
    text = "\n".join(seg.lines)
    assert (
        "    in this order, each strictly later: (a rows of web), then (b rows of web); each at "
        "most 2d after the one before; all with the same non-empty sess; and then no (c rows "
        "of app) within 1d after the last step, once 1d has passed"
    ) in seg.lines
    assert "pooled by time, steps chained by as-of joins" in text
    who = explain_contact(project, "1", as_of=AS_OF.isoformat(), state_dir=tmp_path)
    line = next(x for x in who.lines if "in this order" in x)
    assert line.startswith("      [x] ") and "(value: 2026-03-02T10:00:00+00:00)" in line


def test_sequences_compile_for_every_dialect(make_project: Any) -> None:
    """Every dialect gets the window-function chain, and its SQL parses back."""
    import sqlglot

    from segcli.engines.sql import DIALECTS

    spec = SOURCES + (
        "segments:\n  s: {where: {sequence: "
        + AB
        + ", max_gap: 2d, same: [sess], then_not: {step: {source: app, type: c}, wait: 1d}}}}\n"
    )
    project = make_project(spec, files())
    for dialect in DIALECTS:
        sql = api.compile_sql(project, dialect, AS_OF)
        assert "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING" in sql, dialect
        assert "ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING" in sql, dialect
        assert sqlglot.parse(sql, read=dialect), dialect


def test_json_schema_knows_sequences() -> None:
    kinds = json_schema()["$defs"]["condition"]["anyOf"]
    seq = next(k for k in kinds if "sequence" in k["properties"])["properties"]["sequence"]
    assert set(seq["properties"]) == {"steps", "max_gap", "within", "during", "same", "then_not"}
    assert seq["required"] == ["steps"]


# ---------------------------------------------------------------- diagnostics

SEQ_HEAD = (
    "version: 1\nsources:\n  contacts: {path: contacts.csv, key: contact_id}\n"
    "  email: {path: email.csv, key: contact_id, time: occurred_at, type: event_type}\n"
    "  web: {path: web.csv, key: contact_id}\nsegments:\n  a:\n    where: "
)
STEP = "{source: email, type: click}"
BAD = [
    (f"{{sequence: {{steps: [{STEP}]}}}}", "S004", "sequence steps must be a list of 2 or more"),
    ("{sequence: {max_gap: 2d}}", "S005", "sequence needs 'steps'"),
    (f"{{sequence: {{steps: [{STEP}, {{source: emails}}]}}}}", "S008", "unknown source 'emails'"),
    (f"{{sequence: {{steps: [{STEP}, {{source: web}}]}}}}", "S013", "declares no `time:`"),
    (f"{{sequence: {{steps: [{STEP}, {STEP}], same: [sesion]}}}}", "S009", "unknown column"),
    (f"{{sequence: {{steps: [{STEP}, {STEP}], max_gap: 2 days}}}}", "S006", "bad duration"),
    (
        f"{{sequence: {{steps: [{STEP}, {STEP}], within: 2d, during: today}}}}",
        "S015",
        "within or during",
    ),
    (
        f"{{sequence: {{steps: [{STEP}, {STEP}], then_not: {{step: {STEP}}}}}}}",
        "S005",
        "then_not needs 'step' and 'wait'",
    ),
    (f"{{sequence: {{steps: [{STEP}, {{source: email, count: 1}}]}}}}", "S003", "unknown key"),
    (
        f"{{sequence: {{steps: [{STEP}, {{source: email, where: {{urll: {{eq: x}}}}}}]}}}}",
        "S009",
        "unknown column 'urll'",
    ),
]


@pytest.mark.parametrize(("cond", "code", "message"), BAD)
def test_bad_sequences_are_located(tmp_path: Path, cond: str, code: str, message: str) -> None:
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    diags = diagnostics(tmp_path, SEQ_HEAD + cond + "\n")
    assert [d.code for d in diags] == [code], diags
    assert message in diags[0].message
    assert diags[0].line == 8 and diags[0].col > 1


# ---------------------------------------------------------------- hypothesis

BASE = datetime(2026, 3, 1, tzinfo=UTC)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[str, dict[str, list[dict[str, Any]]], datetime]:
    """A random sequence over two sources, rows on a coarse clock (so ties and gaps exactly
    at max_gap / wait are common), and an as_of among them."""
    hours = st.integers(0, 10).map(lambda h: BASE + timedelta(hours=12 * h))
    rows: dict[str, list[dict[str, Any]]] = {}
    for source in ("web", "app"):
        rows[source] = [
            {
                "cid": draw(st.integers(1, 3)),
                "at": draw(st.one_of(hours, st.none()) if source == "web" else hours),
                "kind": draw(st.sampled_from("abc")),
                "sess": draw(st.sampled_from(["s1", "s2", None])),
                "page": "/p",
            }
            for _ in range(draw(st.integers(0, 24)))
        ]

    def step() -> dict[str, Any]:
        src = draw(st.sampled_from(["web", "app", ["web", "app"]]))
        out: dict[str, Any] = {"source": src}
        if draw(st.booleans()):
            out["type"] = draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=2))
            if draw(st.booleans()):
                out["where"] = {"sess": {"ne": "s2"}}
        return out

    seq: dict[str, Any] = {"steps": [step() for _ in range(draw(st.sampled_from([2, 2, 3])))]}
    durations = st.sampled_from(["12h", "1d", "2d", "36h"])
    if draw(st.booleans()):
        seq["max_gap"] = draw(durations)
    window = draw(st.sampled_from([None, None, "within", "during"]))
    if window == "within":
        seq["within"] = draw(st.sampled_from(["2d", "4d"]))
    elif window == "during":
        seq["during"] = draw(st.sampled_from(["this_week", "last_week", "this_month"]))
    if draw(st.integers(0, 2)) == 0:
        seq["same"] = ["sess"]
    if draw(st.integers(0, 2)) == 0:
        seq["then_not"] = {"step": step(), "wait": draw(durations)}
    as_of = BASE + timedelta(hours=12 * draw(st.integers(4, 12)))
    return yaml.safe_dump({"sequence": seq}, default_flow_style=True).strip(), rows, as_of


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(world=worlds(), negate=st.booleans())
def test_random_sequences_match_reference(world: Any, negate: bool, project_dirs: Any) -> None:
    cond, rows, as_of = world
    where = f"{{not: {cond}}}" if negate else cond
    spec = SOURCES + f"segments:\n  s: {{where: {where}}}\n"
    contacts = [{"id": i, "name": f"c{i}"} for i in range(1, 4)]
    cols = {c: pl.String() for c in ("cid", "at", "kind", "sess", "page")}
    data = {
        "contacts.csv": contacts,
        "web.csv": Table(rows["web"], cols),
        "app.csv": Table(rows["app"], cols),
    }
    project = api.load(write_project(project_dirs(), spec, data))
    ref = Reference(project.spec, contacts, rows, as_of)
    for engine in ("polars", "duckdb"):
        got = compute(project, as_of, engine=engine)
        assert got.members["s"] == ref.members("s"), (engine, cond, as_of, rows)


@pytest.mark.parametrize("body", ["max_gap: 1mo", "then_not: {step: {source: email}, wait: 1y}"])
def test_gaps_and_waits_are_exact_lengths(tmp_path: Path, body: str) -> None:
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    cond = f"{{sequence: {{steps: [{STEP}, {STEP}], {body}}}}}"
    diags = diagnostics(tmp_path, SEQ_HEAD + cond + "\n")
    assert [(d.code, d.line) for d in diags] == [("S006", 8)]
    assert "must be an exact length, got the calendar step" in diags[0].message
