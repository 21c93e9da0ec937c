"""What a plan reads of each event source (segcli.planning.needs), and the CSV conversion that
keeps only that: the same results, fewer rows and columns converted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from segcli import api
from segcli.engines import polars as polars_engine
from segcli.errors import DataError
from segcli.planning import ir
from segcli.planning.needs import RowNeed, implied_since, implied_types, source_need
from tests.conftest import compute

AS_OF = "2026-03-01T00:00:00+00:00"

CONTACTS = "id,plan\n1,pro\n2,free\n3,pro\n"
# Types: open (whole history), click (within 10 days), sent (nobody), bounce (sequence).
EMAIL = (
    "cid,at,kind,url,unused\n"
    "1,2026-02-25T10:00:00Z,click,/pricing,x\n"
    "1,2026-01-01T10:00:00Z,click,/pricing,x\n"
    "2,2026-01-05T10:00:00Z,open,,x\n"
    "2,2026-02-26T10:00:00Z,sent,,x\n"
    "3,2026-02-27T10:00:00Z,bounce,,x\n"
    "3,2026-02-28T10:00:00Z,open,,x\n"
)

SPEC = """
version: 1
timezone: UTC
sources:
  contacts: {path: contacts.csv, key: id}
  email: {path: email.csv, key: cid, time: at, type: kind}
segments:
  pricing_clickers_10d:
    where: {event: {source: email, type: click, where: {url: {contains: pricing}}, within: 10d}}
  openers:
    where: {event: {source: email, type: open}}
  bounce_then_open:
    where:
      sequence:
        steps:
          - {source: email, type: bounce}
          - {source: email, type: open}
"""


def _plan(project: api.Project) -> Any:
    return api.make_plan(project, api.resolve_as_of(project, AS_OF))


def test_need_lists_the_read_columns_and_the_types_with_their_windows(make_project: Any) -> None:
    project = make_project(SPEC, {"contacts.csv": CONTACTS, "email.csv": EMAIL})
    plan = _plan(project)
    read = next(r for r in plan.sources if r.name == "email")
    need = source_need(plan, read)
    assert set(need.columns) == {"cid", "at", "kind", "url"}  # not `unused`
    assert need.rows is not None
    since = dict(need.rows.types)
    assert set(since) == {"click", "open", "bounce"}  # `sent` is read by nothing
    assert since["open"] is None and since["bounce"] is None  # whole history
    assert since["click"] == datetime(2026, 2, 19, tzinfo=UTC)  # 10 days before as_of
    assert need.rows.any_type is None


def test_csv_conversion_keeps_only_the_needed_rows_and_columns(make_project: Any) -> None:
    project = make_project(SPEC, {"contacts.csv": CONTACTS, "email.csv": EMAIL})
    plan = _plan(project)
    read = next(r for r in plan.sources if r.name == "email")
    rows = project.catalog.frame("email", source_need(plan, read)).collect()
    assert rows.columns == ["cid", "at", "kind", "url"]
    # the old click (before the 10-day window) and the sent row are not converted
    assert sorted(rows["kind"].to_list()) == ["bounce", "click", "open", "open"]
    everything = project.catalog.frame("email").collect()
    assert everything.height == 6 and "unused" in everything.columns


def test_results_are_those_of_every_row(make_project: Any) -> None:
    """The same answers as from the same rows in Parquet, where nothing is skipped."""
    project = make_project(SPEC, {"contacts.csv": CONTACTS, "email.csv": EMAIL})
    got = compute(project, AS_OF)
    assert got.members == {
        "pricing_clickers_10d": {1},
        "openers": {2, 3},
        "bounce_then_open": {3},
    }
    parquet = pl.read_csv(project.spec.base_dir + "/email.csv", try_parse_dates=True)
    other = make_project(
        SPEC.replace("email.csv", "email.parquet"),
        {"contacts.csv": CONTACTS, "email.parquet": parquet},
    )
    assert compute(other, AS_OF).members == got.members


def test_a_reader_of_every_row_needs_every_row(make_project: Any) -> None:
    spec = (
        SPEC
        + """
  anything:
    where: {event: {source: email, count: {gte: 2}}}
"""
    )
    project = make_project(spec, {"contacts.csv": CONTACTS, "email.csv": EMAIL})
    plan = _plan(project)
    need = source_need(plan, next(r for r in plan.sources if r.name == "email"))
    assert need.rows is None
    assert compute(project, AS_OF).members["anything"] == {1, 2, 3}


def test_a_windowed_reader_of_every_type_keeps_recent_rows_of_any_type(make_project: Any) -> None:
    spec = (
        SPEC
        + """
  busy_recently:
    where: {event: {source: email, within: 5d, count: {gte: 2}}}
"""
    )
    project = make_project(spec, {"contacts.csv": CONTACTS, "email.csv": EMAIL})
    plan = _plan(project)
    need = source_need(plan, next(r for r in plan.sources if r.name == "email"))
    assert need.rows is not None
    # The 5-day reader shares the windowed scan of the 10-day click reader: from its start.
    assert need.rows.any_type == datetime(2026, 2, 19, tzinfo=UTC)
    kinds = project.catalog.frame("email", need).collect()["kind"].to_list()
    assert sorted(kinds) == ["bounce", "click", "open", "open", "sent"]
    assert compute(project, AS_OF).members["busy_recently"] == {3}


def test_deduplicated_sources_keep_every_row(make_project: Any) -> None:
    spec = SPEC.replace("type: kind}", "type: kind, dedupe: [cid, url]}")
    project = make_project(spec, {"contacts.csv": CONTACTS, "email.csv": EMAIL})
    plan = _plan(project)
    need = source_need(plan, next(r for r in plan.sources if r.name == "email"))
    assert need.rows is None  # dropping rows first could change which duplicate is kept
    assert {"cid", "url"} <= set(need.columns)


def test_a_bad_value_in_a_row_nobody_reads_is_not_an_error(make_project: Any) -> None:
    """Documented in docs/semantics.md: like a column nobody reads, a row of a type nobody
    reads is not parsed past the sampled head of the file; a bad value in a row that is read
    still is an error, with its line."""
    filler = "".join(f"2,2025-06-01T10:00:{i % 60:02d}Z,sent,,x\n" for i in range(10_001))
    bad_unread = EMAIL + filler + "2,not a time,sent,,x\n"
    project = make_project(SPEC, {"contacts.csv": CONTACTS, "email.csv": bad_unread})
    assert compute(project, AS_OF).members["openers"] == {2, 3}
    bad_read = EMAIL + filler + "2,not a time,open,,x\n"
    project = make_project(SPEC, {"contacts.csv": CONTACTS, "email.csv": bad_read})
    with pytest.raises(
        DataError, match=r"email\.csv:10009: column 'at': cannot parse 'not a time'"
    ):
        compute(project, AS_OF)


def test_implied_types_reads_conjunctions_and_disjunctions() -> None:
    kind = ir.Col("kind")
    click = ir.IsIn(kind, ("click",), as_text=True)
    both = ir.IsIn(kind, ("click", "open"), as_text=True)
    other = ir.Cmp("gt", ir.Col("n"), ir.Lit(1))
    assert implied_types(ir.FillNull(ir.And((other, click)), ir.Lit(False)), "kind") == ("click",)
    assert implied_types(ir.And((both, click)), "kind") == ("click",)
    assert implied_types(ir.Or((click, ir.IsIn(kind, ("open",), as_text=True))), "kind") == (
        "click",
        "open",
    )
    assert implied_types(ir.Or((click, other)), "kind") is None
    assert implied_types(other, "kind") is None
    assert implied_types(ir.IsIn(ir.Col("other"), ("click",), as_text=True), "kind") is None


def test_row_need_groups_types_by_their_start() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    need = RowNeed((("b", t), ("a", None), ("c", t), ("d", None)), None)
    assert need.by_since() == [(None, ("a", "d")), (t, ("b", "c"))]


def _spy_on_frames(project: api.Project, monkeypatch: Any) -> list[tuple[str, Any]]:
    """Every (source, need) the project's catalog is asked for from now on."""
    seen: list[tuple[str, Any]] = []
    real = project.catalog.frame

    def frame(name: str, need: Any = None) -> pl.LazyFrame:
        seen.append((name, need))
        return real(name, need)

    monkeypatch.setattr(project.catalog, "frame", frame)
    return seen


def test_the_polars_engine_reads_through_the_need(make_project: Any, monkeypatch: Any) -> None:
    """The engine hands the catalog each event source's need (else nothing is skipped)."""
    project = make_project(SPEC, {"contacts.csv": CONTACTS, "email.csv": EMAIL})
    seen = _spy_on_frames(project, monkeypatch)
    polars_engine.execute(_plan(project), project.catalog)
    needs = [n for name, n in seen if name == "email"]
    assert needs and all(n is not None and n.rows is not None for n in needs)


def test_implied_since_reads_window_starts() -> None:
    at = ir.Col("at")
    t1 = datetime(2026, 1, 1, tzinfo=UTC)
    t2 = datetime(2026, 2, 1, tzinfo=UTC)
    window = ir.And((ir.Cmp("ge", at, ir.Lit(t1)), ir.Cmp("le", at, ir.Lit(t2))))
    kind = ir.IsIn(ir.Col("kind"), ("click",), as_text=True)
    assert implied_since(ir.FillNull(ir.And((kind, window)), ir.Lit(False)), "at") == t1
    later = ir.Cmp("gt", at, ir.Lit(t2))
    assert implied_since(ir.And((window, later)), "at") == t2  # both must hold
    assert implied_since(ir.Or((window, later)), "at") == t1  # either may hold
    assert implied_since(ir.Or((window, kind)), "at") is None
    assert implied_since(ir.Cmp("ge", ir.Col("other"), ir.Lit(t1)), "at") is None
    assert implied_since(ir.Cmp("le", at, ir.Lit(t1)), "at") is None


def test_a_sequence_reads_only_its_types_within_its_window(make_project: Any) -> None:
    spec = SPEC.replace(
        "          - {source: email, type: open}\n",
        "          - {source: email, type: open}\n        within: 30d\n",
    )
    project = make_project(spec, {"contacts.csv": CONTACTS, "email.csv": EMAIL})
    plan = _plan(project)
    need = source_need(plan, next(r for r in plan.sources if r.name == "email"))
    assert need.rows is not None
    since = dict(need.rows.types)
    assert since["bounce"] == datetime(2026, 1, 30, tzinfo=UTC)  # only the sequence reads it
    assert since["open"] is None  # `openers` reads every open
    assert compute(project, AS_OF).members["bounce_then_open"] == {3}


def test_the_duckdb_engine_reads_through_the_need_with_the_same_answers(
    make_project: Any, monkeypatch: Any
) -> None:
    pytest.importorskip("duckdb")
    project = make_project(SPEC, {"contacts.csv": CONTACTS, "email.csv": EMAIL})
    seen = _spy_on_frames(project, monkeypatch)
    got = compute(project, AS_OF, engine="duckdb")
    needs = [n for name, n in seen if name == "email"]
    assert needs and all(n is not None and n.rows is not None for n in needs)
    assert got.members == compute(project, AS_OF).members
