"""Segment history and property history (SPEC §2.6) over real committed runs.

Every test drives real runs (`api.run`, different `--as-of`) on a real state directory and
compares the memberships with the reference evaluator given the committed runs
(tests/reference.py `PastRun`), on the Polars and the DuckDB engines.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segcli import api
from segcli.errors import SpecError
from tests.reference import PastRun, Reference

ENGINES = ["polars", "duckdb"]
SPEC = """\
version: 1
timezone: UTC
sources:
  contacts: {path: contacts.csv, key: contact_id, columns: {stage: str}}
segments:
  mql: {where: {field: stage, eq: mql}}
  was_mql: {where: {segment: mql, ever: true}}
  never_mql: {where: {not: {segment: mql, ever: true}}}
  mql_30: {where: {segment: mql, member_for: {gte: 30d}}}
  mql_new: {where: {segment: mql, member_for: {lte: 0d}}}
  mql_1mo: {where: {segment: mql, member_for: {between: [1mo, 2mo]}}}
  left_mql: {where: {segment: mql, left: {within: 7d}}}
  left_long_ago: {where: {segment: mql, left: {older_than: 7d}}}
  ever_stage: {where: {field: stage, eq: mql, ever: true}}
  ever_not_lead: {where: {field: stage, ne: lead, ever: true}}
"""
HISTORY_SEGMENTS = [
    "was_mql",
    "never_mql",
    "mql_30",
    "mql_new",
    "mql_1mo",
    "left_mql",
    "left_long_ago",
]
FIELD_SEGMENTS = ["ever_stage", "ever_not_lead"]
ALL = ["mql", *HISTORY_SEGMENTS, *FIELD_SEGMENTS]


def write_contacts(root: Path, stages: dict[int, str | None], extra: bool = True) -> None:
    lines = ["contact_id,stage,title"]
    lines += [f"{k},{'' if v is None else v},T{k}" for k, v in sorted(stages.items())]
    (root / "contacts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def project(root: Path, stages: dict[int, str | None], spec: str = SPEC) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "segments.yaml").write_text(spec, encoding="utf-8")
    write_contacts(root, stages)
    return root / "segments.yaml"


def run(cfg: Path, as_of: str | datetime, **kw: Any) -> dict[str, set[int]]:
    """One run; each segment's members."""
    res = api.run(api.load(cfg), as_of=as_of, **kw)
    assert res.memberships is not None
    frame = res.memberships
    return {n: set(frame.filter(pl.col(n))["contact_id"].to_list()) for n in frame.columns[1:]}


class Runs:
    """Real runs on one project and the reference given the same committed runs."""

    def __init__(self, root: Path, engine: str = "polars", spec: str = SPEC, **kw: Any) -> None:
        self.cfg = project(root, {}, spec)
        self.engine = engine
        self.kw = kw
        self.past: list[PastRun] = []
        self.spec = api.load(self.cfg, with_data=False).spec

    def step(
        self,
        at: datetime,
        stages: dict[int, str | None],
        dry: bool = False,
        segments: list[str] | None = None,
    ) -> dict[str, set[int]]:
        """One run (of `segments` only, when given), checked against the reference."""
        write_contacts(self.cfg.parent, stages)
        kw = {**self.kw, "segments": segments} if segments else self.kw
        got = run(self.cfg, at, dry_run=dry, engine=self.engine, **kw)
        contacts = [{"contact_id": k, "stage": v, "title": f"T{k}"} for k, v in stages.items()]
        ref = Reference(self.spec, contacts, {}, at, history=list(self.past))
        want = {n: ref.members(n) for n in got}
        assert got == want, {n: (got[n], want[n]) for n in got if got[n] != want[n]}
        if not dry:
            members = {"mql": want["mql"]} if "mql" in got else {}
            self.past.append(PastRun(at, members, {"stage": dict(stages)}))
        return got


def at(day: int, hours: float = 0) -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day, hours=hours)


# ------------------------------------------------------------------ segment history


@pytest.mark.parametrize("engine", ENGINES)
def test_first_run_ever_is_membership_now_and_nobody_left(tmp_path: Path, engine: str) -> None:
    r = Runs(tmp_path, engine)
    got = r.step(at(0), {1: "mql", 2: "lead", 3: None})
    assert got["was_mql"] == got["mql"] == {1}
    assert got["never_mql"] == {2, 3}
    assert got["left_mql"] == got["left_long_ago"] == set()
    assert got["mql_new"] == {1}  # a new member's stay is 0
    assert got["mql_30"] == got["mql_1mo"] == set()


@pytest.mark.parametrize("engine", ENGINES)
def test_member_for_bounds_are_inclusive(tmp_path: Path, engine: str) -> None:
    r = Runs(tmp_path, engine)
    r.step(at(0), {1: "mql", 2: "lead"})
    got = r.step(at(29, 23), {1: "mql", 2: "mql"})  # 29d 23h: not yet 30 days
    assert got["mql_30"] == set()
    assert got["mql_new"] == {2}
    got = r.step(at(30), {1: "mql", 2: "mql", 3: "mql"})  # exactly 30 days: in
    assert got["mql_30"] == {1}
    assert got["mql_new"] == {3}  # joined this run: stay 0
    got = r.step(at(31), {1: "mql", 2: "mql", 3: "mql"})  # 2026-02-01: one calendar month
    assert got["mql_1mo"] == {1}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_broken_stay_starts_again(tmp_path: Path, engine: str) -> None:
    r = Runs(tmp_path, engine)
    r.step(at(0), {1: "mql"})
    r.step(at(10), {1: "lead"})
    got = r.step(at(40), {1: "mql"})
    assert got["mql_30"] == set()  # member since day 40 only
    assert got["mql_new"] == {1}
    got = r.step(at(70), {1: "mql"})
    assert got["mql_30"] == {1}


@pytest.mark.parametrize("engine", ENGINES)
def test_left_window_bound_is_inclusive_and_this_run_counts(tmp_path: Path, engine: str) -> None:
    r = Runs(tmp_path, engine)
    r.step(at(0), {1: "mql", 2: "mql"})
    got = r.step(at(3), {1: "lead", 2: "mql"})  # 1 leaves in this run
    assert got["left_mql"] == {1}
    got = r.step(at(10), {1: "lead", 2: "mql"})  # left exactly 7 days ago
    assert got["left_mql"] == {1}
    assert got["left_long_ago"] == set()
    got = r.step(at(10, 1), {1: "lead", 2: "mql"})  # 7 days and an hour
    assert got["left_mql"] == set()
    assert got["left_long_ago"] == {1}
    got = r.step(at(12), {1: "mql", 2: "mql"})  # back in: not "left"
    assert got["left_mql"] == got["left_long_ago"] == set()
    assert got["was_mql"] == {1, 2}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_deleted_contact_that_returns_has_left(tmp_path: Path, engine: str) -> None:
    r = Runs(tmp_path, engine)
    r.step(at(0), {1: "mql", 2: "lead"})
    r.step(at(1), {2: "lead"})  # 1 deleted from the export: leaves with reason deleted
    got = r.step(at(2), {1: "lead", 2: "lead"})
    assert got["left_mql"] == {1}
    assert got["was_mql"] == {1}


@pytest.mark.parametrize("engine", ENGINES)
def test_dry_runs_are_never_history(tmp_path: Path, engine: str) -> None:
    r = Runs(tmp_path, engine)
    r.step(at(0), {1: "mql", 2: "lead"})
    got = r.step(at(1), {1: "lead", 2: "mql"}, dry=True)  # reads history, writes none
    assert got["left_mql"] == {1}
    assert got["was_mql"] == {1, 2}
    got = r.step(at(2), {1: "mql", 2: "lead"})
    assert got["was_mql"] == {1}  # 2 was a member in the dry run only
    assert got["left_mql"] == set()  # 1 never left at a committed run
    assert got["mql_new"] == set()  # 1's stay began at day 0


@pytest.mark.parametrize("engine", ENGINES)
def test_pruned_runs_are_not_forgotten(tmp_path: Path, engine: str) -> None:
    r = Runs(tmp_path, engine, keep_runs=1)
    r.step(at(0), {1: "mql", 2: "lead"})
    r.step(at(1), {1: "lead", 2: "lead"})  # 1 leaves
    for day in (2, 3, 4):
        got = r.step(at(day), {1: "lead", 2: "lead"})
    manifest = json.loads((tmp_path / ".segcli" / "manifest.json").read_text())
    assert len(manifest["runs"]) == 1 and len(manifest["pruned"]) == 4
    assert got["was_mql"] == {1}
    assert got["ever_stage"] == {1}
    assert got["left_mql"] == {1}  # left at day 1, within 7 days of day 4
    got = r.step(at(9), {1: "lead", 2: "lead"})
    assert got["left_mql"] == set() and got["left_long_ago"] == {1}


def test_history_new_to_the_spec_is_rebuilt_from_kept_runs(tmp_path: Path) -> None:
    """Runs made before any history option carry no summary: the kept snapshots count."""
    plain = SPEC.split("  was_mql:")[0]
    r = Runs(tmp_path, "polars", spec=plain)
    r.step(at(0), {1: "mql", 2: "mql"})
    r.step(at(40), {1: "mql", 2: "lead"})
    (tmp_path / "segments.yaml").write_text(SPEC, encoding="utf-8")
    r.spec = api.load(r.cfg, with_data=False).spec
    r.past = [PastRun(p.as_of, p.members) for p in r.past]  # no stored values then
    got = r.step(at(42), {1: "mql", 2: "lead", 3: "mql"})
    assert got["was_mql"] == {1, 2, 3}
    assert got["left_mql"] == {2}
    assert got["mql_30"] == {1}
    assert got["ever_stage"] == {1, 3}  # property history starts with this run


@pytest.mark.parametrize("engine", ENGINES)
def test_time_travel_counts_only_runs_up_to_its_as_of(tmp_path: Path, engine: str) -> None:
    r = Runs(tmp_path, engine)
    r.step(at(0), {1: "mql", 2: "lead"})
    r.step(at(20), {1: "lead", 2: "mql"})
    r.step(at(40), {1: "lead", 2: "lead"})
    r.past = r.past[:1]  # a dry run at day 10 sees the day-0 run only
    got = r.step(at(10), {1: "lead", 2: "lead"}, dry=True)
    assert got["was_mql"] == {1}
    assert got["left_mql"] == {1}  # leaves in this (dry) run
    assert got["ever_stage"] == {1}


def test_semi_dynamic_stay_keeps_its_joined_at(tmp_path: Path) -> None:
    spec = SPEC.replace("mql: {where", "mql: {kind: semi_dynamic, where", 1)
    cfg = project(tmp_path, {1: "mql"}, spec)
    run(cfg, at(0))
    write_contacts(tmp_path, {1: "lead"})
    got = run(cfg, at(35))  # kept: still a member, joined at day 0
    assert got["mql"] == {1} and got["mql_30"] == {1}
    assert got["left_mql"] == set()


# ------------------------------------------------------------------ property history


@pytest.mark.parametrize("engine", ENGINES)
def test_property_ever_and_a_contact_new_to_the_export(tmp_path: Path, engine: str) -> None:
    r = Runs(tmp_path, engine)
    r.step(at(0), {1: "mql", 2: "lead", 3: None})
    got = r.step(at(1), {1: "sql", 2: "lead", 3: "lead", 4: "lead"})
    assert got["ever_stage"] == {1}
    assert got["ever_not_lead"] == {1, 3}  # 3 was null at day 0: ne matches null
    got = r.step(at(2), {1: "lead", 2: "lead", 3: "lead", 4: "lead", 5: "lead"})
    assert got["ever_stage"] == {1}
    assert 5 not in got["ever_not_lead"]  # new to the export: only its current value


def test_the_state_stores_only_the_columns_ever_leaves_read(tmp_path: Path) -> None:
    cfg = project(tmp_path, {1: "mql", 2: "lead"})
    run(cfg, at(0))
    write_contacts(tmp_path, {1: "sql", 2: "lead", 3: "mql"})
    run(cfg, at(1))
    state = tmp_path / ".segcli"
    manifest = json.loads((state / "manifest.json").read_text())
    assert set(manifest["fields"]) == {"stage"}
    entry = manifest["fields"]["stage"]
    assert entry["since"] == at(0).isoformat()
    stored = pl.read_parquet(state / entry["snapshot"])
    assert stored.columns == ["contact_id", "value", "first_at"]
    rows = {(r["contact_id"], r["value"], r["first_at"]) for r in stored.to_dicts()}
    assert rows == {(1, "mql", at(0)), (2, "lead", at(0)), (1, "sql", at(1)), (3, "mql", at(1))}
    files = [p.name for p in (state / "runs").rglob("*.parquet")]
    assert all(not f.startswith("+field") or f == "+field-0.parquet" for f in files)
    for snap in (state / "runs").rglob("*.parquet"):
        assert "title" not in pl.read_parquet(snap).columns


def test_a_spec_without_ever_leaves_stores_no_values(tmp_path: Path) -> None:
    plain = SPEC.split("  ever_stage:")[0]
    cfg = project(tmp_path, {1: "mql"}, plain)
    run(cfg, at(0))
    manifest = json.loads((tmp_path / ".segcli" / "manifest.json").read_text())
    assert manifest["fields"] == {}
    assert not list((tmp_path / ".segcli" / "runs").rglob("+field*"))


def test_without_state_history_leaves_read_as_a_first_run(tmp_path: Path) -> None:
    cfg = project(tmp_path, {1: "mql", 2: "lead"})
    run(cfg, at(0))
    write_contacts(tmp_path, {1: "lead", 2: "lead"})
    ev, _ = api.compute(api.load(cfg), as_of=at(1))  # compute reads no state
    assert ev.member("was_mql").to_list() == [False, False]
    assert ev.member("left_mql").to_list() == [False, False]
    sql = api.compile_sql(api.load(cfg), "duckdb", as_of=at(1))
    assert "was_mql" in sql


# ------------------------------------------------------------------ random histories

STAGES = st.sampled_from(["mql", "lead", None])
STEP = st.tuples(
    st.integers(0, 20),  # days since the previous step
    st.integers(0, 23),  # hours
    st.dictionaries(st.integers(1, 6), STAGES, min_size=1, max_size=6),
    st.booleans(),  # a dry run
)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(STEP, min_size=1, max_size=6), keep=st.sampled_from([None, 1, 2]))
def test_random_histories_match_the_reference(
    steps: list[tuple[int, int, dict[int, str | None], bool]], keep: int | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        r = Runs(Path(tmp), "polars", keep_runs=keep)
        t = at(0)
        for days, hours, stages, dry in steps:
            t += timedelta(days=days, hours=hours)
            r.step(t, stages, dry=dry)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(STEP, min_size=2, max_size=4))
def test_random_histories_duckdb_agrees(
    steps: list[tuple[int, int, dict[int, str | None], bool]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        r = Runs(Path(tmp), "duckdb")
        t = at(0)
        for days, hours, stages, dry in steps:
            t += timedelta(days=days, hours=hours)
            r.step(t, stages, dry=dry)


# ------------------------------------------------------------------ spec errors


@pytest.mark.parametrize(
    ("leaf", "code", "words"),
    [
        ("{segment: mql, ever: false}", "S006", "ever: false"),
        ("{segment: mql, ever: 1}", "S004", "ever must be true or false"),
        ("{segment: mql, ever: true, left: {within: 7d}}", "S015", "one history option"),
        ("{segment: mql, member_for: {gte: 30}}", "S006", "bad duration 30"),
        ("{segment: mql, member_for: {ne: 30d}}", "S007", "does not take operator 'ne'"),
        ("{segment: mql, member_for: 30d}", "S004", "member_for takes a mapping"),
        ("{segment: mql, left: {gt: 5}}", "S012", "time of leaving"),
        ("{segment: mql, left: {eq: 2026-01-01}}", "S007", "does not take operator 'eq'"),
        ("{segment: mql, since: 7d}", "S003", "unknown key 'since'"),
        ("{field: stage, eq: mql, ever: false}", "S006", "ever: false"),
        ("{field: stage, within: 7d, ever: true}", "S015", "cannot be combined with within"),
        ("{field: seen, gt: -7d, ever: true}", "S015", "relative time"),
    ],
)
def test_history_mistakes_are_located(tmp_path: Path, leaf: str, code: str, words: str) -> None:
    spec = SPEC.split("segments:")[0] + "segments:\n  mql: {where: {field: stage, eq: x}}\n"
    spec += f"  bad:\n    where: {leaf}\n"
    cfg = project(tmp_path, {1: "mql"}, spec)
    (tmp_path / "contacts.csv").write_text("contact_id,stage,seen\n1,mql,2026-01-01\n")
    with pytest.raises(SpecError) as err:
        api.load(cfg)
    diags = err.value.diagnostics
    assert any(d.code == code and words in d.message and d.line == 8 for d in diags), diags


# ------------------------------------------------------------------ explain


def test_explain_says_what_history_leaves_read(tmp_path: Path) -> None:
    from segcli.views.explain import explain_contact, explain_segment

    cfg = project(tmp_path, {1: "mql", 2: "lead"})
    p = api.load(cfg)
    before = "\n".join(explain_segment(p, "ever_stage").lines)
    assert "history of stage: no values stored yet" in before
    run(cfg, at(0))
    write_contacts(tmp_path, {1: "lead", 2: "mql"})
    run(cfg, at(3))
    p = api.load(cfg)
    text = "\n".join(explain_segment(p, "ever_stage").lines)
    assert "stage is 'mql', now or at any committed run since its values are stored" in text
    assert f"history of stage: values stored at committed runs since {at(0).isoformat()}" in text
    data = explain_segment(p, "ever_stage").data["history"]
    assert data == [f"history of stage: values stored at committed runs since {at(0).isoformat()}"]
    words = "\n".join(explain_segment(p, "mql_1mo").lines)
    assert "the current stay lasts at least 1mo and the current stay lasts at most 2mo" in words
    assert "history of segment mql: its committed runs at or before as_of" in words
    one = "\n".join(explain_contact(p, "1").lines)
    assert f"(left at: {at(3).isoformat()})" in one
    assert "(current stay since: not a member now)" in one
    assert "(a member at a committed run: True)" in one
    assert f"(values stored since {at(0).isoformat()})" in one
    two = "\n".join(explain_contact(p, "2").lines)
    assert f"(current stay since: {at(3).isoformat()})" in two
    assert "(left at: never at a committed run)" in two
    # At an --as-of before the first run nothing is stored yet.
    early = "\n".join(explain_contact(p, "1", as_of="2025-12-01").lines)
    assert "(no values stored yet: only the current value counts)" in early


def test_a_segment_cannot_read_its_own_history(tmp_path: Path) -> None:
    spec = SPEC.split("segments:")[0] + (
        "segments:\n  mql: {where: {any: [{field: stage, eq: mql}, {segment: mql, ever: true}]}}\n"
    )
    cfg = project(tmp_path, {1: "mql"}, spec)
    with pytest.raises(SpecError) as err:
        api.load(cfg)
    assert [d.code for d in err.value.diagnostics] == ["S011"]


RELATED = """\
version: 1
timezone: UTC
sources:
  contacts: {path: contacts.csv, key: contact_id, columns: {stage: str}}
  crm: {path: crm.csv, key: contact_id, relation: one}
segments:
  was_customer: {where: {field: crm.status, eq: customer, ever: true}}
scoring:
  fit:
    rules:
      - {name: Was an MQL, points: 10, when: {field: stage, eq: mql, ever: true}}
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_ever_on_a_relation_one_column_and_in_scoring(tmp_path: Path, engine: str) -> None:
    cfg = project(tmp_path, {1: "mql", 2: "lead"}, RELATED)
    (tmp_path / "crm.csv").write_text("contact_id,status\n1,customer\n2,prospect\n")
    api.run(api.load(cfg), as_of=at(0), engine=engine)
    write_contacts(tmp_path, {1: "lead", 2: "lead"})
    (tmp_path / "crm.csv").write_text("contact_id,status\n1,churned\n2,prospect\n")
    res = api.run(api.load(cfg), as_of=at(1), engine=engine)
    assert res.memberships is not None and res.scores is not None
    assert res.memberships["was_customer"].to_list() == [True, False]
    assert res.scores["fit"].to_list() == [10.0, 0.0]
    manifest = json.loads((tmp_path / ".segcli" / "manifest.json").read_text())
    assert set(manifest["fields"]) == {"crm.status", "stage"}


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:20])


def _bad_fields(p: Path) -> None:
    data = json.loads(p.read_text())
    data["fields"]["stage"]["snapshot"] = "runs/../../etc/passwd"
    p.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "corrupt",
    [
        _truncate,
        lambda p: pl.DataFrame({"contact_id": [1]}).write_parquet(p),
        "manifest",
    ],
)
def test_corrupt_stored_values_exit_4_naming_the_file(tmp_path: Path, corrupt: Any) -> None:
    from typer.testing import CliRunner

    from segcli.cli import app

    cfg = project(tmp_path, {1: "mql"})
    run(cfg, at(0))
    manifest = tmp_path / ".segcli" / "manifest.json"
    entry = json.loads(manifest.read_text())["fields"]["stage"]
    path = manifest if corrupt == "manifest" else tmp_path / ".segcli" / entry["snapshot"]
    (_bad_fields if corrupt == "manifest" else corrupt)(path)
    res = CliRunner().invoke(app, ["run", "-c", str(cfg), "--as-of", at(1).isoformat()])
    assert res.exit_code == 4, res.output
    assert str(path) in res.stderr and "corrupt" in res.stderr
    assert "Traceback" not in res.output + res.stderr


@pytest.mark.parametrize("engine", ENGINES)
def test_runs_of_other_segments_leave_the_history_as_it_was(tmp_path: Path, engine: str) -> None:
    """A run with --segment computes only the chosen segments and what they refer to: the
    history of a segment it does not compute stays as its last committed run left it."""
    spec = SPEC + "  other: {where: {field: stage, eq: lead}}\n"
    r = Runs(tmp_path, engine, spec=spec)
    r.step(at(0), {1: "mql", 2: "mql"})
    write_contacts(tmp_path, {1: "lead", 2: "mql"})
    only = r.step(at(1), {1: "lead", 2: "mql"}, segments=["other"])
    assert set(only) == {"other"}
    got = r.step(at(5), {1: "lead", 2: "mql"})  # 1 leaves mql at this run, not at day 1
    assert got["left_mql"] == {1}
    assert got["ever_stage"] == {1, 2}
    got = r.step(at(12), {1: "lead", 2: "lead"}, dry=True)
    assert got["left_mql"] == {1, 2}  # 1 left at day 5 (exactly 7 days), 2 leaves now
    got = r.step(at(13), {1: "lead", 2: "lead"}, segments=["left_mql"])
    assert set(got) == {"mql", "left_mql"} and got["left_mql"] == {2}
    got = r.step(at(14), {1: "lead", 2: "mql"})
    assert got["was_mql"] == {1, 2} and got["mql_new"] == {2}
