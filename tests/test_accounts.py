"""Accounts (SPEC §2.7): `account: {where, count, others}` over the contacts of one account —
null accounts, single-contact accounts, the contact itself with `others: true/false`, `count:
{eq: 0}`, segment references inside `where` (and cycles through them), nesting, `top`, scoring
rules and kinds; on the Polars and DuckDB engines against expected answers and the reference,
hand-made and with hypothesis; diagnostics, words, explain --contact and compiled SQL."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlglot
import yaml
from conftest import Computed, write_project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import Reference
from test_compile_sql import assert_same_as_polars
from test_validate import DATA, diagnostics

from segcli import api
from segcli.engines.sql import DIALECTS
from segcli.errors import SpecError
from segcli.views.explain import explain_contact, explain_segment

AS_OF = datetime(2026, 3, 10, tzinfo=UTC)
SOURCES = """
version: 1
sources:
  contacts: {path: contacts.csv, key: id, account: company_id}
  email: {path: email.csv, key: cid, time: at, type: kind, columns: {at: datetime}}
"""
CONTACTS = [
    {"id": 1, "company_id": 10, "role": "a", "bounced": True},
    {"id": 2, "company_id": 10, "role": "b", "bounced": False},
    {"id": 3, "company_id": 10, "role": "c", "bounced": False},
    {"id": 4, "company_id": 20, "role": "a", "bounced": True},
    {"id": 5, "company_id": None, "role": "a", "bounced": True},  # no account
    {"id": 6, "company_id": None, "role": "b", "bounced": False},  # no account
    {"id": 7, "company_id": 30, "role": "a", "bounced": False},  # alone in its account
    {"id": 8, "company_id": 20, "role": "a", "bounced": False},
    {"id": 9, "company_id": 40, "role": "b", "bounced": True},  # alone, and matches itself
]
EMAIL = [
    {"cid": 2, "at": datetime(2026, 3, 1, tzinfo=UTC), "kind": "click"},
    {"cid": 7, "at": datetime(2026, 1, 1, tzinfo=UTC), "kind": "click"},  # too old
]
HAND: list[tuple[str, set[int]]] = [
    ("{account: {where: {segment: hb}}}", {2, 3, 8}),
    ("{account: {where: {segment: hb}, others: true}}", {2, 3, 8}),
    ("{account: {where: {segment: hb}, others: false}}", {1, 2, 3, 4, 5, 8, 9}),
    ("{account: {where: {segment: hb}, count: {eq: 0}}}", {1, 4, 5, 6, 7, 9}),
    ("{account: {where: {segment: hb}, count: {eq: 0}, others: false}}", {6, 7}),
    ("{account: {where: {field: role, eq: a}, count: {gte: 2}}}", set()),
    ("{account: {where: {field: role, eq: a}, count: {gte: 2}, others: false}}", {4, 8}),
    ("{account: {where: {field: role, eq: a}, count: {between: [1, 1]}}}", {2, 3, 4, 8}),
    ("{account: {where: {event: {source: email, type: click, within: 30d}}}}", {1, 3}),
    ("{not: {account: {where: {segment: hb}}}}", {1, 4, 5, 6, 7, 9}),
    ("{account: {where: {account: {where: {field: role, eq: a}}}, count: {gte: 2}}}", {1}),
    ("{account: {where: {all: []}}}", {1, 2, 3, 4, 8}),  # everyone with a peer
    ("{account: {where: {all: []}, others: false, count: {eq: 1}}}", {5, 6, 7, 9}),
]


def members(project: api.Project, engine: str, as_of: datetime = AS_OF) -> Computed:
    ev, _ = api.compute(project, as_of, engine=engine)
    keys = ev.contact_keys().to_list()
    got = {n: {k for k, v in zip(keys, ev.member(n), strict=True) if v} for n in ev.segments}
    scores = {s: dict(zip(keys, ev.score(s).to_list(), strict=True)) for s in project.spec.scoring}
    return Computed(got, got, scores)


def hand_spec() -> str:
    segs = ["  hb: {where: {field: bounced, eq: true}}"]
    segs += [f"  a{i}: {{where: {c}}}" for i, (c, _) in enumerate(HAND)]
    segs.append("  ex: {where: {all: []}, exclude: {account: {where: {segment: hb}}}}")
    segs.append("  top1: {where: {account: {where: {segment: hb}}}, top: {n: 1, by: {field: id}}}")
    scoring = (
        "scoring:\n  fit:\n    rules:\n"
        "      - {name: a bounce in the account, points: 10,"
        " when: {account: {where: {field: bounced, eq: true}}}}\n"
        "      - {name: every role-a colleague, points: 1,"
        " when: {account: {where: {field: role, eq: a}, count: {gte: 1}, others: false}}}\n"
    )
    return SOURCES + scoring + "segments:\n" + "\n".join(segs) + "\n"


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> api.Project:
    root = tmp_path_factory.mktemp("accounts")
    files = {"contacts.csv": CONTACTS, "email.csv": EMAIL}
    return api.load(write_project(root, hand_spec(), files))


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_hand_written_accounts(hand: api.Project, engine: str) -> None:
    got = members(hand, engine)
    ref = Reference(hand.spec, CONTACTS, {"email": EMAIL}, AS_OF)
    for i, (cond, want) in enumerate(HAND):
        assert got.members[f"a{i}"] == want, (engine, cond)
        assert ref.members(f"a{i}") == want, cond
    assert got.members["ex"] == {1, 4, 5, 6, 7, 9} == ref.members("ex")
    assert got.members["top1"] == {8} == ref.members("top1")


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_account_conditions_in_scoring_rules(hand: api.Project, engine: str) -> None:
    got = members(hand, engine).scores["fit"]
    ref = Reference(hand.spec, CONTACTS, {"email": EMAIL}, AS_OF)
    want = {k: ref.score("fit", k) for k in range(1, 10)}
    assert got == want
    assert want[2] == 11 and want[5] == 1 and want[6] == 0 and want[7] == 1


def test_null_accounts_have_no_peers(hand: api.Project) -> None:
    got = members(hand, "polars").members
    # 5 and 6 share a null account: neither is the other's peer.
    assert 6 not in got["a0"] and 6 in got["a3"]
    # alone, 5 counts only itself, and only with others: false
    assert 5 not in got["a0"] and 5 in got["a2"]


def test_compiled_sql_parses_in_every_dialect_and_duckdb_agrees(hand: api.Project) -> None:
    for dialect in DIALECTS:
        sql = api.compile_sql(hand, dialect, AS_OF)
        sqlglot.parse_one(sql, read=dialect)
        assert "PARTITION BY" in sql.upper(), dialect
    assert_same_as_polars(hand, api.compile_sql(hand, "duckdb", AS_OF), AS_OF)


def test_explain_says_the_account_condition(hand: api.Project, tmp_path: Path) -> None:
    seg = explain_segment(hand, "a2", as_of=AS_OF.isoformat())
    assert (
        "    number of contacts (this one included) of the same account (company_id) for whom"
        " this holds is at least 1:"
    ) in seg.lines
    assert "      is a member of segment hb" in seg.lines
    assert "  depends on: hb (evaluated first)" in seg.lines
    who = explain_contact(hand, "2", as_of=AS_OF.isoformat(), state_dir=tmp_path)
    line = next(x for x in who.lines if x.startswith("      [x] number of other contacts"))
    assert line.endswith(
        "(value: 1; account 10; matching others: id=1; marks below: this contact itself)"
    )
    alone = explain_contact(hand, "6", as_of=AS_OF.isoformat(), state_dir=tmp_path)
    assert any("(value: 0; no account; marks below" in x for x in alone.lines)


def test_explain_contact_lists_a_few_peers(make_project: Any, tmp_path: Path) -> None:
    contacts = [{"id": i, "company_id": 1} for i in range(1, 10)]
    spec = (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: id, account: company_id}\n"
        "segments:\n  s: {where: {account: {where: {all: []}}}}\n"
    )
    project = make_project(spec, {"contacts.csv": contacts})
    who = explain_contact(project, "1", as_of=AS_OF.isoformat(), state_dir=tmp_path)
    line = next(x for x in who.lines if "[x] number of other contacts" in x)
    assert "(value: 8; account 1; matching others: id=2, id=3, id=4, id=5, id=6 and 3 more;" in line


# ---------------------------------------------------------------- kinds and state


def test_peers_are_this_runs_members_and_current_contacts(tmp_path: Path) -> None:
    """A semi_dynamic segment referenced in `where` counts its members this run (kept ones
    included); a contact deleted from the export is nobody's peer any more."""
    contacts = [
        {"id": 1, "company_id": 10, "bounced": True},
        {"id": 2, "company_id": 10, "bounced": False},
    ]
    spec = (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: id, account: company_id}\n"
        "segments:\n  ever_bounced: {kind: semi_dynamic, where: {field: bounced, eq: true}}\n"
        "  peer_bounced: {where: {account: {where: {segment: ever_bounced}}}}\n"
    )
    cfg = write_project(tmp_path, spec, {"contacts.csv": contacts})
    state, out = tmp_path / "state", tmp_path / "out"

    def peers(day: int) -> set[int]:
        r = api.run(api.load(cfg), as_of=AS_OF + timedelta(days=day), state_dir=state, out_dir=out)
        assert r.memberships is not None
        return set(r.memberships.filter("peer_bounced")["id"].to_list())

    assert peers(0) == {2}
    contacts[0]["bounced"] = False  # 1 no longer matches, but stays in ever_bounced
    write_project(tmp_path, spec, {"contacts.csv": contacts})
    assert peers(1) == {2}
    write_project(tmp_path, spec, {"contacts.csv": contacts[1:]})  # 1 deleted
    assert peers(2) == set()


# ---------------------------------------------------------------- diagnostics


def _copy_data(tmp_path: Path) -> None:
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)


HEAD = (
    "version: 1\nsources:\n  contacts: {path: contacts.csv, key: contact_id, account: country}\n"
    "segments:\n  a:\n    where: "
)
BAD = [
    ("{account: {where: {field: country, eq: DE}, count: {contains: x}}}", "S012", "count"),
    ("{account: {where: {field: country, eq: DE}, count: {gte: 1, ate: 2}}}", "S007", "'ate'"),
    ("{account: {where: {field: country, eq: DE}, other: true}}", "S003", "unknown key 'other'"),
    ("{account: {where: {field: country, eq: DE}, others: 1}}", "S004", "true or false"),
    ("{account: {count: {gte: 1}}}", "S005", "account needs 'where'"),
    ("{account: {where: {field: countyr, eq: DE}}}", "S009", "unknown column 'countyr'"),
    ("{account: {where: {segment: nope}}}", "S010", "unknown segment 'nope'"),
]


@pytest.mark.parametrize(("body", "code", "message"), BAD)
def test_bad_account_conditions_are_located(
    tmp_path: Path, body: str, code: str, message: str
) -> None:
    _copy_data(tmp_path)
    diags = diagnostics(tmp_path, HEAD + body + "\n")
    assert [d.code for d in diags] == [code], diags
    assert message in diags[0].message
    assert diags[0].line == 6 and diags[0].col > 1


def test_account_needs_the_declared_column(tmp_path: Path) -> None:
    _copy_data(tmp_path)
    text = HEAD.replace(", account: country", "") + "{account: {where: {all: []}}}\n"
    (d,) = diagnostics(tmp_path, text)
    assert (d.code, d.line, d.col) == ("S013", 6, 22)
    assert "declare its account column" in d.message and "account: company_id" in (d.help or "")


def test_the_account_column_must_exist(tmp_path: Path) -> None:
    _copy_data(tmp_path)
    text = HEAD.replace("account: country", "account: countr") + "{all: []}\n"
    (d,) = diagnostics(tmp_path, text)
    assert (d.code, d.line) == ("S009", 3) and "'countr'" in d.message
    assert "did you mean 'country'?" in (d.help or "")


def test_only_contacts_declare_an_account(tmp_path: Path) -> None:
    _copy_data(tmp_path)
    text = (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: contact_id}\n"
        "  web: {path: web.csv, key: contact_id, account: contact_id}\n"
        "segments:\n  a: {where: {all: []}}\n"
    )
    (d,) = diagnostics(tmp_path, text)
    assert (d.code, d.line) == ("S015", 4) and "only the contacts source" in d.message


def test_a_cycle_through_an_account_condition_is_printed(tmp_path: Path) -> None:
    _copy_data(tmp_path)
    text = (
        HEAD.replace("  a:\n    where: ", "")
        + "  b: {where: {account: {where: {segment: c}}}}\n"
        + "  c: {where: {any: [{segment: b}, {field: country, eq: DE}]}}\n"
    )
    (d,) = diagnostics(tmp_path, text)
    assert d.code == "S011" and d.message == "segment reference cycle: b -> c -> b"
    assert d.line == 5


def test_a_scoring_rule_cannot_reach_a_segment_through_an_account(tmp_path: Path) -> None:
    _copy_data(tmp_path)
    text = HEAD.replace("segments:\n  a:\n    where: ", "") + (
        "scoring:\n  m:\n    rules:\n"
        "      - {name: r, points: 1, when: {account: {where: {segment: a}}}}\n"
        "segments:\n  a: {where: {all: []}}\n"
    )
    with pytest.raises(SpecError) as info:
        api.load(_write(tmp_path, text))
    assert [d.code for d in info.value.diagnostics] == ["S015"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "segments.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- hypothesis

WHERES = [
    {"field": "flag", "eq": True},
    {"segment": "base"},
    {"not": {"field": "role", "eq": "a"}},
    {"account": {"where": {"field": "flag", "eq": True}}},
    {"account": {"where": {"segment": "base"}, "others": False, "count": {"eq": 0}}},
]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    """A few contacts in a few accounts (null ones too, ints or text), a random account
    condition over a random `where`."""
    accounts = draw(st.sampled_from([[1, 2, 3], ["acme", "beta"]]))
    contacts = [
        {
            "id": i,
            "company_id": draw(st.one_of(st.none(), st.sampled_from(accounts))),
            "flag": draw(st.booleans()),
            "role": draw(st.sampled_from("ab")),
        }
        for i in range(1, draw(st.integers(1, 9)) + 1)
    ]
    cond: dict[str, Any] = {"where": draw(st.sampled_from(WHERES))}
    if draw(st.booleans()):
        cond["others"] = draw(st.booleans())
    if draw(st.booleans()):
        op = draw(st.sampled_from(["eq", "gte", "gt", "lte", "ne"]))
        cond["count"] = {op: draw(st.integers(0, 3))}
    return yaml.safe_dump({"account": cond}, default_flow_style=True).strip(), contacts


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(world=worlds())
def test_random_account_conditions_match_reference(world: Any, project_dirs: Any) -> None:
    cond, contacts = world
    spec = (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: id, account: company_id,"
        " columns: {company_id: str}}\n"
        "segments:\n  base: {where: {field: role, eq: b}}\n"
        f"  s: {{where: {cond}}}\n"
    )
    project = api.load(write_project(project_dirs(), spec, {"contacts.csv": contacts}))
    as_text = [{**c, "company_id": _text(c["company_id"])} for c in contacts]
    want = Reference(project.spec, as_text, {}, AS_OF).members("s")
    for engine in ("polars", "duckdb"):
        assert members(project, engine).members["s"] == want, (engine, cond, contacts)


def _text(v: Any) -> str | None:
    return None if v is None else str(v)
