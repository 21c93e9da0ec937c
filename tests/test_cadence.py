"""Cadence (SPEC §2.6): `regularly:` in an event condition — periods (as_of − (i+1)·every,
as_of − i·every], their bounds, `at_least`/`periods`/`of`, with windows and filters; on the
Polars and DuckDB engines against expected answers and the reference, hand-made and with
hypothesis; diagnostics, words and the plan."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from conftest import Computed, Table, write_project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Reference
from test_validate import DATA, diagnostics

from segcli import api
from segcli.views.explain import explain_contact, explain_segment

AS_OF = datetime(2026, 3, 10, tzinfo=UTC)
SOURCES = """
version: 1
timezone: Europe/Berlin
sources:
  contacts: {path: contacts.csv, key: id}
  web: {path: web.csv, key: cid, time: at, type: kind, columns: {at: datetime}}
"""


def t(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


CONTACTS = [{"id": i} for i in range(1, 7)]
WEB = [
    *({"cid": 1, "at": t(d), "kind": "visit"} for d in (7, 8, 9)),  # one a day
    {"cid": 2, "at": t(9, 0), "kind": "visit"},  # exactly a bound: period 1, not period 0
    {"cid": 2, "at": t(10, 0), "kind": "visit"},  # exactly as_of: period 0
    {"cid": 3, "at": t(9, 13), "kind": "visit"},
    {"cid": 3, "at": t(9, 20), "kind": "visit"},
    {"cid": 3, "at": t(7, 13), "kind": "click"},
    {"cid": 4, "at": t(7, 0), "kind": "visit"},  # the open start of the last period
    {"cid": 5, "at": t(10, 1), "kind": "visit"},  # after as_of: invisible
    {"cid": 6, "at": None, "kind": "visit"},  # no time: in no period
]
EV = "{source: web, "
HAND: list[tuple[str, set[int]]] = [
    (EV + "regularly: {every: 1d, of: 3}}", {1}),
    (EV + "regularly: {every: 1d, periods: 2, of: 3}}", {1, 2, 3}),
    (EV + "regularly: {at_least: 2, every: 1d, periods: 1, of: 3}}", {3}),
    (EV + "regularly: {every: 12h, of: 1}}", {2, 3}),
    (EV + "within: 1d, regularly: {every: 1d, periods: 2, of: 3}}", {2}),
    (EV + "type: visit, regularly: {every: 1d, periods: 2, of: 3}}", {1, 2}),
    (EV + "where: {kind: {ne: click}}, regularly: {every: 1d, periods: 2, of: 3}}", {1, 2}),
    (EV + "regularly: {every: 1w, of: 1}}", {1, 2, 3, 4}),
]


def run(project: api.Project, engine: str) -> Computed:
    ev, _ = api.compute(project, AS_OF, engine=engine)
    keys = ev.contact_keys().to_list()
    members = {n: {k for k, v in zip(keys, ev.member(n), strict=True) if v} for n in ev.segments}
    return Computed(members, members, {})


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> api.Project:
    segs = [f"  r{i}: {{where: {{event: {c}}}}}" for i, (c, _) in enumerate(HAND)]
    segs.append(f"  nr: {{where: {{not: {{event: {HAND[0][0]}}}}}}}")
    root = tmp_path_factory.mktemp("cadence")
    text = SOURCES + "segments:\n" + "\n".join(segs) + "\n"
    return api.load(write_project(root, text, {"contacts.csv": CONTACTS, "web.csv": WEB}))


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_hand_written_cadence(hand: api.Project, engine: str) -> None:
    got = run(hand, engine)
    ref = Reference(hand.spec, CONTACTS, {"web": WEB}, AS_OF)
    for i, (cond, want) in enumerate(HAND):
        assert got.members[f"r{i}"] == want, (engine, cond)
        assert ref.members(f"r{i}") == want, cond
    assert got.members["nr"] == {2, 3, 4, 5, 6} == ref.members("nr")


def test_period_bounds_are_open_below_and_closed_above(hand: api.Project) -> None:
    got = run(hand, "polars")
    assert 2 in got.members["r1"]  # rows exactly at as_of and at as_of - 1d: two periods
    assert 4 not in got.members["r1"]  # a row exactly at as_of - 3d is in none of 3 periods
    assert 1 not in got.members["r3"]  # 12:00 is the open start of (12:00, 24:00]


def test_cadence_shares_its_source_scan(hand: api.Project) -> None:
    plan = api.make_plan(hand, AS_OF, ["r0"])
    assert len(plan.scans) == 1 and len(plan.scans[0].aggregates) == 3
    assert plan.scans[0].since == AS_OF - timedelta(days=3)


def test_explain_says_the_cadence(hand: api.Project, tmp_path: Path) -> None:
    seg = explain_segment(hand, "r2", as_of=AS_OF.isoformat())
    want = "    at least 2 rows of web in each of at least 1 of the last 3 periods of 1d"
    assert want in seg.lines
    who = explain_contact(hand, "3", as_of=AS_OF.isoformat(), state_dir=tmp_path)
    assert any(x.startswith("      [x] at least 2 rows") and "(value: 1)" in x for x in who.lines)


def test_cadence_in_scoring_is_not_the_default_test(make_project: Any) -> None:
    spec = SOURCES + (
        "scoring:\n  e:\n    decay: {half_life: 7d}\n    rules:\n"
        f"      - {{name: regular, points: 10, when: {{event: {HAND[0][0]}}}}}\n"
        "segments:\n  all: {where: {all: []}}\n"
    )
    project = make_project(spec, {"contacts.csv": CONTACTS, "web.csv": WEB})
    ev, _ = api.compute(project, AS_OF)
    assert ev.score("e").to_list() == [10.0, 0, 0, 0, 0, 0]  # undecayed: not a "did once" rule


BAD = [
    ("regularly: {every: 1w}", "S005", "regularly needs 'every' and 'of'"),
    ("regularly: {every: 1w, periods: 5, of: 4}", "S006", "periods (5) cannot exceed of (4)"),
    ("regularly: {every: 1 week, of: 4}", "S006", "bad duration"),
    ("regularly: {every: 1w, of: 0}", "S004", "of must be an integer >= 1"),
    ("regularly: {every: 1w, of: 4, often: 2}", "S003", "unknown key 'often'"),
    ("count: {gte: 2}, regularly: {every: 1w, of: 4}", "S015", "regularly or a test"),
]


@pytest.mark.parametrize(("body", "code", "message"), BAD)
def test_bad_cadences_are_located(tmp_path: Path, body: str, code: str, message: str) -> None:
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    head = (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: contact_id}\n"
        "  email: {path: email.csv, key: contact_id, time: occurred_at, type: event_type}\n"
        "segments:\n  a:\n    where: "
    )
    diags = diagnostics(tmp_path, head + "{event: {source: email, " + body + "}}\n")
    assert [d.code for d in diags] == [code], diags
    assert message in diags[0].message
    assert diags[0].line == 7 and diags[0].col > 1


def test_cadence_needs_a_time_column(tmp_path: Path) -> None:
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    text = (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: contact_id}\n"
        "  web: {path: web.csv, key: contact_id}\n"
        "segments:\n  a: {where: {event: {source: web, regularly: {every: 1d, of: 2}}}}\n"
    )
    assert [d.code for d in diagnostics(tmp_path, text)] == ["S013"]


# ---------------------------------------------------------------- hypothesis

BASE = datetime(2026, 3, 1, tzinfo=UTC)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], datetime]:
    """Rows on a 6-hour clock (so rows at period bounds are common), a random cadence."""
    at = st.integers(0, 40).map(lambda h: BASE + timedelta(hours=6 * h))
    rows = [
        {
            "cid": draw(st.integers(1, 3)),
            "at": draw(st.one_of(at, st.none())),
            "kind": draw(st.sampled_from("ab")),
        }
        for _ in range(draw(st.integers(0, 30)))
    ]
    of = draw(st.integers(1, 4))
    reg = {
        "at_least": draw(st.integers(1, 3)),
        "every": draw(st.sampled_from(["6h", "12h", "1d", "2d", "1mo"])),
        "periods": draw(st.integers(1, of)),
        "of": of,
    }
    ev: dict[str, Any] = {"source": "web", "regularly": reg}
    if draw(st.booleans()):
        ev["type"] = "a"
    if draw(st.booleans()):
        ev[draw(st.sampled_from(["within", "during"]))] = draw(st.sampled_from(["2d", "1w"]))
    if "during" in ev:
        ev["during"] = draw(st.sampled_from(["this_week", "last_week", "yesterday"]))
    as_of = BASE + timedelta(
        hours=6 * draw(st.integers(4, 42)), minutes=draw(st.sampled_from([0, 30]))
    )
    return yaml.safe_dump({"event": ev}, default_flow_style=True).strip(), rows, as_of


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(world=worlds())
def test_random_cadences_match_reference(world: Any, project_dirs: Any) -> None:
    cond, rows, as_of = world
    contacts = [{"id": i} for i in range(1, 4)]
    cols = {c: pl.String() for c in ("cid", "at", "kind")}
    data = {"contacts.csv": contacts, "web.csv": Table(rows, cols)}
    spec = SOURCES + f"segments:\n  s: {{where: {cond}}}\n"
    project = api.load(write_project(project_dirs(), spec, data))
    want = Reference(project.spec, contacts, {"web": rows}, as_of).members("s")
    for engine in ("polars", "duckdb"):
        ev, _ = api.compute(project, as_of, engine=engine)
        keys = ev.contact_keys().to_list()
        got = {k for k, v in zip(keys, ev.member("s"), strict=True) if v}
        assert got == want, (engine, cond, as_of, rows)
