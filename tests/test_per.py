"""Per-value grouping (SPEC §2.6): `per: COLUMN` with `has`/`lacks` — nulls ignored, has-only,
lacks-only, both, neither, a lacked type outside the window, `count: {eq: 0}` for contacts
without rows, pooled sources, type/where/during selecting rows first, scoring; on the Polars
and DuckDB engines against expected answers and the reference, hand-made and with
hypothesis; the SQL of every dialect; located diagnostics, words and the plan."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import sqlglot
import yaml
from conftest import Table, write_project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Reference
from test_validate import diagnostics

from segcli import api
from segcli.engines.sql import DIALECTS
from segcli.views.explain import explain_contact, explain_segment

AS_OF = datetime(2026, 3, 10, tzinfo=UTC)
SOURCES = """
version: 1
timezone: Europe/Berlin
sources:
  contacts: {path: contacts.csv, key: id}
  email: {path: email.csv, key: cid, time: at, type: kind, columns: {at: datetime}}
  web: {path: web.csv, key: cid, time: at, type: kind, columns: {at: datetime}}
"""


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def row(cid: int, camp: str | None, kind: str, days: float) -> dict[str, Any]:
    return {"cid": cid, "at": ago(days), "kind": kind, "camp": camp}


CONTACTS = [{"id": i} for i in range(1, 9)]
EMAIL = [
    # 1: a, c and d were sent and never opened; b was opened
    row(1, "a", "sent", 5),
    row(1, "b", "sent", 5),
    row(1, "b", "open", 4),
    row(1, "c", "sent", 3),
    row(1, "d", "sent", 2),
    # 2: a opened; e opened 100 days ago, outside a 90-day window
    row(2, "a", "sent", 20),
    row(2, "a", "open", 19),
    row(2, "e", "sent", 10),
    row(2, "e", "open", 100),
    # 3: rows without a campaign are ignored (their open blocks nothing)
    row(3, None, "sent", 5),
    row(3, None, "open", 4),
    row(3, "x", "sent", 5),
    # 4: only an open
    row(4, "f", "open", 5),
    # 5: no rows at all
    # 6: opened a by email; sent a on the web source
    row(6, "a", "open", 5),
    # 7: sent after as_of: not happened yet
    row(7, "g", "sent", -1),
    # 8: sent and clicked h
    row(8, "h", "sent", 3),
    row(8, "h", "click", 2),
]
WEB = [row(6, "a", "sent", 6)]

SNO = "{source: email, per: camp, has: [sent], lacks: [open]"
HAND: list[tuple[str, set[int]]] = [
    (SNO + ", within: 90d}", {1, 2, 3, 8}),  # the lacked open of e is outside the window
    (SNO + ", within: 90d, count: {gte: 3}}", {1}),
    (SNO + "}", {1, 3, 8}),  # without a window e's old open blocks it
    (SNO + ", within: 90d, count: {eq: 0}}", {4, 5, 6, 7}),  # no rows: 0 values
    ("{source: email, per: camp, has: [sent]}", {1, 2, 3, 8}),
    ("{source: email, per: camp, has: [sent], count: {gte: 2}}", {1, 2}),
    ("{source: email, per: camp, lacks: [open]}", {1, 3, 8}),
    ("{source: email, per: camp, has: [sent, click]}", {8}),
    ("{source: email, per: camp}", {1, 2, 3, 4, 6, 8}),  # a value passes with any row
    ("{source: email, per: camp, count: {gte: 2}}", {1, 2}),
    ("{source: email, per: camp, count: {eq: 1}}", {3, 4, 6, 8}),
    ("{source: email, type: sent, per: camp, count: {gte: 2}}", {1, 2}),
    ("{source: email, type: [sent, open], per: camp, lacks: [open]}", {1, 3, 8}),
    ("{source: email, type: open, per: camp}", {1, 2, 4, 6}),
    (SNO + ", where: {camp: {in: [b, e]}}, within: 90d}", {2}),
    (SNO + ", where: {camp: {in: [a, c, d]}}, count: {gte: 3}}", {1}),
    (SNO + ", during: this_month}", {1, 3, 8}),  # e was sent in February
    ("{source: [email, web], per: camp, has: [sent], lacks: [open]}", {1, 3, 8}),
    ("{source: web, per: camp, has: [sent], lacks: [open]}", {6}),
    ("{source: [email, web], per: camp, has: [sent, open]}", {1, 2, 6}),
]


def members(ev: Any, name: str) -> set[Any]:
    keys = ev.contact_keys().to_list()
    return {k for k, v in zip(keys, ev.member(name), strict=True) if v}


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> api.Project:
    segs = [f"  p{i}: {{where: {{event: {c}}}}}" for i, (c, _) in enumerate(HAND)]
    segs.append(f"  np: {{where: {{not: {{event: {HAND[0][0]}}}}}}}")
    root = tmp_path_factory.mktemp("per")
    text = SOURCES + "segments:\n" + "\n".join(segs) + "\n"
    files = {"contacts.csv": CONTACTS, "email.csv": EMAIL, "web.csv": WEB}
    return api.load(write_project(root, text, files))


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_hand_written_per_conditions(hand: api.Project, engine: str) -> None:
    ev, _ = api.compute(hand, AS_OF, engine=engine)
    ref = Reference(hand.spec, CONTACTS, {"email": EMAIL, "web": WEB}, AS_OF)
    for i, (cond, want) in enumerate(HAND):
        assert members(ev, f"p{i}") == want, (engine, cond)
        assert ref.members(f"p{i}") == want, cond
    assert members(ev, "np") == {4, 5, 6, 7} == ref.members("np")


def test_compiled_sql_of_every_dialect_parses_and_duckdb_agrees(hand: api.Project) -> None:
    ev, _ = api.compute(hand, AS_OF)
    for dialect in DIALECTS:
        sql = api.compile_sql(hand, dialect, AS_OF.isoformat())
        tree = sqlglot.parse_one(sql, read=dialect)
        assert [s.alias_or_name for s in tree.selects][1:] == list(hand.spec.segments)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    got = pl.from_arrow(con.sql(api.compile_sql(hand, "duckdb", AS_OF.isoformat())).arrow())
    assert isinstance(got, pl.DataFrame)
    for name in hand.spec.segments:
        assert got[name].to_list() == ev.member(name).to_list(), name


def test_per_conditions_share_one_pass_per_source_and_column(hand: api.Project) -> None:
    plan = api.make_plan(hand, AS_OF, ["p0", "p2", "p4", "p17"])
    assert plan.scans == () and plan.pooled == ()
    one, pooled = plan.per_scans
    assert one.sources == ("email",) and one.column == "camp" and len(one.aggregates) == 3
    # With `has`, rows of other types cannot change a verdict: only sent and open are read.
    assert one.parts[0].types == ("open", "sent")
    assert one.parts[0].since is None  # p2 and p4 look at all of history
    assert pooled.sources == ("email", "web") and len(pooled.parts) == 2
    windowed = api.make_plan(hand, AS_OF, ["p0"]).per_scans[0].parts[0]
    assert windowed.since == AS_OF - timedelta(days=90)
    every = api.make_plan(hand, AS_OF, ["p8"]).per_scans[0].parts[0]
    assert every.types is None  # no has: a value passes with a row of any type
    assert any(line.startswith("per-value pass over email") for line in plan.describe())


def test_explain_says_the_grouping_and_the_passing_count(hand: api.Project, tmp_path: Path) -> None:
    seg = explain_segment(hand, "p1", as_of=AS_OF.isoformat())
    want = (
        "    number of camp values with sent and without open among rows of email in the "
        "last 90d is at least 3"
    )
    assert want in seg.lines, seg.lines
    assert (
        "  per-value pass over email: rows grouped by (contact, camp), 1 count(s) of passing values"
        in seg.lines
    )
    (per,) = seg.data["plan"]["per"]
    assert per["column"] == "camp" and per["parts"][0]["types"] == ["open", "sent"]
    assert per["aggregates"][0]["what"].startswith("values of camp; with sent; without open")
    who = explain_contact(hand, "1", as_of=AS_OF.isoformat(), state_dir=tmp_path)
    line = next(x for x in who.lines if "number of camp values" in x and "at least 3" in x)
    assert line.startswith("      [x]") and line.endswith("(value: 3; passing: a, c, d)")
    line = next(x for x in who.lines if "number of camp values among rows of email is" in x)
    assert line.endswith("(value: 4; passing: a, b, c, d)")
    (node,) = [s["where"] for s in who.data["segments"] if s["segment"] == "p1"]  # the tree as data
    assert node["value"] == 3 and node["passing"] == ["a", "c", "d"]


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_explain_lists_the_first_ten_passing_values(
    make_project: Any, engine: str, tmp_path: Path
) -> None:
    spec = SOURCES + f"engine: {engine}\nsegments:\n  s: {{where: {{event: {SNO}}}}}}}\n"
    camps = [f"c{i:02d}" for i in range(12)]
    rows = [row(1, c, "sent", 3) for c in camps] + [row(1, "c03", "open", 2)]
    rows += [row(2, "z", "open", 1)]
    files = {
        "contacts.csv": CONTACTS[:2],
        "email.csv": rows,
        "web.csv": "cid,at,kind,camp\n",
    }
    project = make_project(spec, files)
    who = explain_contact(project, "1", as_of=AS_OF.isoformat(), state_dir=tmp_path / "s1")
    first = ", ".join(c for c in camps if c != "c03")[: len("c00, ") * 10 - 2]
    assert any(x.endswith(f"(value: 11; passing: {first}, ...)") for x in who.lines), who.lines
    who = explain_contact(project, "2", as_of=AS_OF.isoformat(), state_dir=tmp_path / "s2")
    assert any(
        x.startswith("      [ ] number of camp") and x.endswith("(value: 0)") for x in who.lines
    )


def test_listing_passing_values_is_duckdb_sql_only(hand: api.Project) -> None:
    from segcli.engines.sql import Translator
    from segcli.engines.sql_per import per_reduction
    from segcli.errors import SpecError

    plan = api.make_plan(hand, AS_OF, ["p0"], None, True)
    listing = next(a for ps in plan.per_scans for a in ps.aggregates if a.key.agg == "values")
    assert "list_sort" in per_reduction(listing, Translator("duckdb")).sql("duckdb").lower()
    with pytest.raises(SpecError) as info:
        per_reduction(listing, Translator("postgres"))
    assert info.value.diagnostics[0].code == "E901"


SCORING = """
scoring:
  e:
    decay: {half_life: 7d}
    rules:
      - {name: each unopened, points: 5, each: true, when: {event: %s}}
      - {name: any unopened, points: 10, when: {event: %s}}
segments:
  all: {where: {all: []}}
"""


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_each_per_rule_gives_points_per_passing_value_without_decay(
    make_project: Any, engine: str, tmp_path: Path
) -> None:
    when = SNO + ", within: 90d}"
    files = {"contacts.csv": CONTACTS, "email.csv": EMAIL, "web.csv": WEB}
    project = make_project(SOURCES + SCORING % (when, when), files)
    ev, _ = api.compute(project, AS_OF, engine=engine)
    want = [25.0, 15.0, 15.0, 0.0, 0.0, 0.0, 0.0, 15.0]  # 5 a value (3, 1, 1, 1) + 10
    assert ev.score("e").to_list() == want
    ref = Reference(project.spec, CONTACTS, {"email": EMAIL, "web": WEB}, AS_OF)
    assert [ref.score("e", k) for k in range(1, 9)] == want
    if engine == "polars":
        who = explain_contact(project, "1", as_of=AS_OF.isoformat(), state_dir=tmp_path)
        assert "    +15.00  each unopened  (5 per value)" in who.lines


def test_per_rules_need_no_time_column_under_decay(make_project: Any) -> None:
    spec = (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: id}\n"
        "  email: {path: email.csv, key: cid, type: kind}\n"
        "scoring:\n  e:\n    decay: {half_life: 7d}\n    rules:\n"
        "      - {name: n, points: 1, each: true, when: {event: {source: email, per: camp}}}\n"
    )
    rows = [{"cid": 1, "kind": "sent", "camp": c} for c in ("a", "b", "b")]
    project = make_project(spec, {"contacts.csv": [{"id": 1}, {"id": 2}], "email.csv": rows})
    ev, _ = api.compute(project, AS_OF)
    assert ev.score("e").to_list() == [2.0, 0.0]


def test_numbers_pooled_from_int_and_float_columns_are_one_value(make_project: Any) -> None:
    spec = (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: id}\n"
        "  a: {path: a.csv, key: cid, type: kind, columns: {camp: int}}\n"
        "  b: {path: b.csv, key: cid, type: kind, columns: {camp: float}}\n"
        "segments:\n  s: {where: {event: {source: [a, b], per: camp, has: sent, lacks: open}}}\n"
    )
    files = {
        "contacts.csv": [{"id": 1}, {"id": 2}],
        "a.csv": [{"cid": 1, "kind": "sent", "camp": 7}, {"cid": 2, "kind": "sent", "camp": 7}],
        "b.csv": [{"cid": 1, "kind": "open", "camp": 7.0}, {"cid": 2, "kind": "open", "camp": 8.5}],
    }
    project = make_project(spec, files)
    for engine in ("polars", "duckdb"):
        ev, _ = api.compute(project, AS_OF, engine=engine)
        assert members(ev, "s") == {2}, engine


# ---------------------------------------------------------------- diagnostics

DATA = {
    "contacts.csv": "id\n1\n",
    "email.csv": "cid,at,kind,camp,n\n1,2026-03-01T00:00:00Z,sent,a,1\n",
    "web.csv": "cid,at,kind,camp\n1,2026-03-01T00:00:00Z,sent,7\n",
    "plain.csv": "cid,camp\n1,a\n",
}
HEAD = (
    "version: 1\nsources:\n  contacts: {path: contacts.csv, key: id}\n"
    "  email: {path: email.csv, key: cid, time: at, type: kind}\n"
    "  web: {path: web.csv, key: cid, time: at, type: kind}\n"
    "  plain: {path: plain.csv, key: cid}\n"
    "segments:\n  a:\n    where: "
)
BAD = [
    ("source: email, has: [sent]", "S005", "has needs per"),
    ("source: email, lacks: open", "S005", "lacks needs per"),
    ("source: email, per: camp, sum: {column: n, gte: 1}", "S015", "its only test is count"),
    ("source: email, per: camp, distinct: {column: camp, gte: 1}", "S015", "only test is count"),
    ("source: email, per: camp, regularly: {every: 1d, of: 2}", "S015", "per or regularly"),
    ("source: email, per: camp, has: [open], lacks: [open]", "S015", "in both has and lacks"),
    ("source: email, type: sent, per: camp, has: [sent], lacks: [open]", "S015", "not among"),
    ("source: email, type: [a, b], per: camp, has: [sent]", "S015", "has type 'sent' is not"),
    ("source: plain, per: camp, has: [sent]", "S013", "need source 'plain' to declare `type:`"),
    ("source: email, per: campaign", "S009", "unknown column 'campaign'"),
    ("source: [email, plain], per: n", "S009", "unknown column 'n' in source 'plain'"),
    ("source: [email, web], per: camp", "S012", "different types in the pooled sources"),
    ("source: email, per: [camp]", "S004", "per"),
    ("source: email, per: camp, has: {sent: 1}", "S004", "has"),
    ("source: email, per: camp, count: {contains: x}", "S012", "count"),
]


@pytest.mark.parametrize(("body", "code", "message"), BAD)
def test_bad_per_conditions_are_located(tmp_path: Path, body: str, code: str, message: str) -> None:
    for name, text in DATA.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    diags = diagnostics(tmp_path, HEAD + "{event: {" + body + "}}\n")
    assert [d.code for d in diags] == [code], diags
    assert message in diags[0].message, diags[0].message
    assert diags[0].line == 9 and diags[0].col > 12, diags[0]


def test_empty_has_and_lacks_ask_nothing(make_project: Any) -> None:
    spec = (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: id}\n"
        "  plain: {path: plain.csv, key: cid}\n"  # no type column: none is needed
        "segments:\n  s: {where: {event: {source: plain, per: camp, has: [], lacks: []}}}\n"
        "  t: {where: {event: {source: plain, per: camp}}}\n"
    )
    rows = [{"cid": 1, "camp": "a"}, {"cid": 2, "camp": None}]
    project = make_project(spec, {"contacts.csv": [{"id": 1}, {"id": 2}], "plain.csv": rows})
    for engine in ("polars", "duckdb"):
        ev, _ = api.compute(project, AS_OF, engine=engine)
        assert members(ev, "s") == members(ev, "t") == {1}, engine


def test_each_on_a_per_condition_needs_the_default_count(tmp_path: Path) -> None:
    for name, text in DATA.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    text = HEAD.split("segments:")[0] + (
        "scoring:\n  e:\n    rules:\n      - {name: r, points: 1, each: true,\n"
        "         when: {event: {source: email, per: camp, count: {gte: 2}}}}\n"
    )
    diags = diagnostics(tmp_path, text)
    assert [(d.code, d.line) for d in diags] == [("S015", 10)]


# ---------------------------------------------------------------- hypothesis

BASE = datetime(2026, 3, 1, tzinfo=UTC)
KINDS = ("sent", "open", "click")


@st.composite
def worlds(draw: st.DrawFn) -> tuple[str, dict[str, list[dict[str, Any]]], datetime]:
    """Rows of two sources with few contacts, values and types, and a random per condition."""

    def rows() -> list[dict[str, Any]]:
        at = st.integers(0, 40).map(lambda h: BASE + timedelta(hours=6 * h))
        return [
            {
                "cid": draw(st.integers(1, 3)),
                "at": draw(st.one_of(at, st.none())),
                "kind": draw(st.sampled_from(KINDS)),
                "camp": draw(st.sampled_from(["a", "b", "c", None])),
            }
            for _ in range(draw(st.integers(0, 14)))
        ]

    tables = {"email": rows(), "web": rows()}
    source = draw(st.sampled_from([["email"], ["web"], ["email", "web"]]))
    has = draw(st.lists(st.sampled_from(KINDS), max_size=2, unique=True))
    lacks = draw(st.lists(st.sampled_from([k for k in KINDS if k not in has]), max_size=2))
    ev: dict[str, Any] = {"source": source, "per": "camp"}
    if has:
        ev["has"] = has
    if lacks:
        ev["lacks"] = sorted(set(lacks))
    if draw(st.booleans()):
        extra = draw(st.lists(st.sampled_from(KINDS), max_size=2))
        ev["type"] = sorted({*has, *lacks, *extra}) or ["sent"]
    if draw(st.booleans()):
        ev["within"] = draw(st.sampled_from(["2d", "5d"]))
    elif draw(st.booleans()):
        ev["during"] = draw(st.sampled_from(["this_week", "last_week"]))
    if draw(st.booleans()):
        ev["where"] = {"camp": {"ne": draw(st.sampled_from("abc"))}}
    if draw(st.booleans()):
        op = draw(st.sampled_from(["gte", "eq", "lte"]))
        ev["count"] = {op: draw(st.integers(0, 3))}
    as_of = BASE + timedelta(hours=6 * draw(st.integers(4, 42)), minutes=30)
    return yaml.safe_dump({"event": ev}, default_flow_style=True).strip(), tables, as_of


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(world=worlds())
def test_random_per_conditions_match_reference(world: Any, project_dirs: Any) -> None:
    cond, tables, as_of = world
    contacts = [{"id": i} for i in range(1, 4)]
    cols = {c: pl.String() for c in ("cid", "at", "kind", "camp")}
    data: dict[str, Any] = {"contacts.csv": contacts}
    data.update({f"{n}.csv": Table(rows, cols) for n, rows in tables.items()})
    # `each` needs the default test: points per passing value, checked when there is one.
    scoring = ""
    if "count" not in cond:
        rule = f"{{name: r, points: 1.5, each: true, when: {cond}}}"
        scoring = f"scoring:\n  e:\n    rules:\n      - {rule}\n"
    spec = SOURCES + f"segments:\n  s: {{where: {cond}}}\n" + scoring
    project = api.load(write_project(project_dirs(), spec, data))
    ref = Reference(project.spec, contacts, tables, as_of)
    want = ref.members("s")
    for engine in ("polars", "duckdb"):
        ev, _ = api.compute(project, as_of, engine=engine)
        assert members(ev, "s") == want, (engine, cond, as_of, tables)
        if scoring:
            got = ev.score("e").to_list()
            expected = [ref.score("e", k) for k in range(1, 4)]
            assert all(math.isclose(a, b) for a, b in zip(got, expected, strict=True)), engine
