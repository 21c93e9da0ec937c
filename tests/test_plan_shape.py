"""How the planner groups aggregates into scans, and the Polars text tests it relies on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from segcli import api
from segcli.engines import polars as engine
from segcli.engines.polars_text import text_in
from segcli.planning import planner

CONTACTS = "id\n1\n2\n"
EMAIL = "cid,at,kind\n1,2026-02-25T10:00:00Z,click\n2,2025-01-05T10:00:00Z,open\n"
SPEC = """
version: 1
timezone: Europe/Berlin
sources:
  contacts: {path: contacts.csv, key: id}
  email: {path: email.csv, key: cid, time: at, type: kind}
segments:
  busy_ever:
    where: {event: {source: email, count: {gte: 1}}}
  active_recently:
    where: {event: {source: email, within: 30d, active_days: {gte: 1}}}
"""


def with_segments(segments: str) -> str:
    """SPEC's sources with these segments (YAML under `segments:`) instead of its own."""
    return SPEC.split("segments:")[0] + "segments:" + segments


def test_a_windowed_aggregate_of_every_type_gets_a_windowed_scan(make_project: Any) -> None:
    """Not the every-row scan: there its local dates were computed on all of history."""
    project = make_project(SPEC, {"contacts.csv": CONTACTS, "email.csv": EMAIL})
    plan = api.make_plan(project, api.resolve_as_of(project, "2026-03-01T00:00:00+00:00"))
    scans = {(s.types, s.since is not None): [a.key.agg for a in s.aggregates] for s in plan.scans}
    assert scans == {(None, False): ["count"], (None, True): ["active_days"]}
    got = api.compute(project, "2026-03-01T00:00:00+00:00")[0]
    assert got.member("active_recently").to_list() == [True, False]
    assert got.member("busy_ever").to_list() == [True, True]


@pytest.mark.parametrize("n", [0, 1, 2, 8, 9, 20])
def test_text_in_is_is_in(n: int) -> None:
    values = [f"v{i}" for i in range(n)]
    s = pl.Series("x", ["v0", "v1", None, "v8", "v19", "other", ""], dtype=pl.String)
    got = pl.DataFrame([s]).select(text_in(pl.col("x"), values)).to_series()
    want = pl.DataFrame([s]).select(pl.col("x").is_in(values)).to_series()
    assert got.to_list() == want.to_list()


def test_a_partial_whose_types_are_its_scans_filter_tests_no_type(make_project: Any) -> None:
    """Whole-history single partials share a scan over the union of their types; the one
    whose types are that whole union (last activity of any of them) needs no type test of
    its own, the others keep theirs. Members are unchanged."""
    spec = with_segments(
        """
  last_any:
    where: {event: {source: email, type: [click, open], last: {older_than: 400d}}}
  clicked:
    where: {event: {source: email, type: click, count: {gte: 1}}}
"""
    )
    project = make_project(spec, {"contacts.csv": CONTACTS, "email.csv": EMAIL})
    plan = api.make_plan(project, api.resolve_as_of(project, "2026-03-01T00:00:00+00:00"))
    (scan,) = plan.scans
    assert scan.types == ("click", "open")
    flags = {a.key.types: repr(a.flag) for a in scan.aggregates}
    assert "IsIn" not in flags[("click", "open")]
    assert "IsIn" in flags[("click",)]
    got = api.compute(project, "2026-03-01T00:00:00+00:00")[0]
    assert got.member("last_any").to_list() == [False, True]
    assert got.member("clicked").to_list() == [True, False]


def test_last_within_reads_only_its_window(make_project: Any) -> None:
    """`last: {within: D}` is "a matching row in the last D" (rows after as_of are never
    read): it is planned as a count over a scan of the last D only, not as the latest row
    over all of history; with include_missing (or a window of its own, or another test) the
    latest row stays (the two kinds of scan are apart here because their types differ).
    tests/test_reference.py draws such leaves against the reference."""
    spec = with_segments(
        """
  recent:
    where: {event: {source: email, type: [click, open], last: {within: 30d}}}
  recent_missing:
    where: {event: {source: email, type: click, last: {within: 30d, include_missing: false}}}
"""
    )
    contacts = "id\n1\n2\n3\n4\n5\n"
    email = (
        "cid,at,kind\n1,2026-02-25T10:00:00Z,click\n2,2025-01-05T10:00:00Z,open\n"
        "3,2026-01-30T00:00:00Z,click\n"  # exactly the window's start: in
        "4,2026-03-02T00:00:00Z,click\n4,2025-06-01T00:00:00Z,open\n"  # after as_of: unseen
    )
    project = make_project(spec, {"contacts.csv": contacts, "email.csv": email})
    plan = api.make_plan(project, api.resolve_as_of(project, "2026-03-01T00:00:00+00:00"))
    by_agg = {a.key.agg: s for s in plan.scans for a in s.aggregates}
    assert by_agg["count"].since == datetime(2026, 1, 30, tzinfo=UTC)
    assert by_agg["last"].since is None  # include_missing: the latest row's null matters
    got = api.compute(project, "2026-03-01T00:00:00+00:00")[0]
    assert got.member("recent").to_list() == [True, False, True, False, False]
    assert got.member("recent_missing").to_list() == [True, False, True, False, False]


SHARED = with_segments(
    """
  clicked_pricing:
    where: {event: {source: email, type: click, where: {url: {contains: pricing}}}}
  clicked_twice:
    where: {event: {source: email, type: click, count: {gte: 2}}}
  bounced:
    where: {event: {source: email, type: [hard_bounce, soft_bounce], count: {gte: 1}}}
  opened:
    where: {event: {source: email, type: open, count: {gte: 1}}}
  opened_blog:
    where: {event: {source: email, type: open, where: {url: {contains: blog}}}}
"""
)


def test_rare_type_scans_share_one_pass_with_the_same_members(
    make_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole-history scans whose types hold few rows (clicks, bounces) are one scan, each
    aggregate testing its own types; a common type (open) keeps its own scan; members are
    those of the plan's own scans."""
    rows = ["cid,at,kind,url"]
    rows += [f"{c},2026-01-0{1 + c % 5}T10:00:00Z,open," for c in range(1, 7) for _ in range(6)]
    rows += ["1,2026-01-02T10:00:00Z,click,/pricing", "2,2026-01-02T10:00:00Z,click,/blog"]
    rows += ["2,2026-01-03T10:00:00Z,click,/x", "3,2026-01-03T10:00:00Z,hard_bounce,"]
    contacts = "id\n" + "\n".join(str(i) for i in range(1, 8)) + "\n"
    project = make_project(SHARED, {"contacts.csv": contacts, "email.csv": "\n".join(rows)})
    plan = api.make_plan(project, api.resolve_as_of(project, "2026-03-01T00:00:00+00:00"))
    shares = {"email": {"open": 0.9, "click": 0.07, "hard_bounce": 0.02, "soft_bounce": 0.01}}
    scans = planner.share_scans(list(plan.scans), {"email": "kind"}, shares)
    assert sorted(s.types for s in scans) == [
        ("click", "hard_bounce", "soft_bounce"),
        ("open",),
    ]
    shared = next(s for s in scans if s.types and "click" in s.types)
    assert all("IsIn" in repr(a.flag) for a in shared.aggregates)
    assert planner.share_scans(list(plan.scans), {"email": "kind"}, {}) == list(plan.scans)

    seen: list[list[planner.Scan]] = []
    share = planner.share_scans

    def spy(*args: Any) -> list[planner.Scan]:
        seen.append(share(*args))
        return seen[-1]

    monkeypatch.setattr(engine, "share_scans", spy)
    got = api.compute(project, "2026-03-01T00:00:00+00:00")[0]
    assert len(seen[-1]) == len(plan.scans) - 1  # the sample found clicks and bounces rare
    monkeypatch.setattr(engine, "share_scans", lambda scans, *_: scans)
    alone = api.compute(project, "2026-03-01T00:00:00+00:00")[0]
    assert got.memberships().equals(alone.memberships())
    assert got.member("clicked_pricing").to_list() == [True] + [False] * 6
    assert got.member("clicked_twice").to_list() == [False, True] + [False] * 5
    assert got.member("bounced").to_list() == [False, False, True] + [False] * 4


def test_a_pass_over_recent_rows_states_its_start_at_the_top() -> None:
    """The rows some reader reads (a sequence pass, the CSV conversion) are an OR of
    (types, start) terms; when every term has a start, the earliest is also a condition of
    its own, at the top, where the Parquet reader skips older files by their statistics
    (a 30-day sequence pass used to decode all of history). Same rows either way."""
    from segcli.engines.polars_text import read_by_any

    t = [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 10, 20)]
    readers: list[tuple[tuple[str, ...] | None, datetime | None]] = [(("a",), t[1]), (None, t[2])]
    expr = read_by_any(readers, "kind", "at")
    assert str(expr).startswith('[([(col("at")) >= (2026-01-10 00:00:00 UTC)]) & (')
    frame = pl.DataFrame(
        {"kind": ["a", "a", "b", "b", None, "a"], "at": [t[0], t[1], t[1], t[2], t[2], None]},
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    )
    assert frame.select(expr).to_series().to_list() == [False, True, False, True, True, False]
    whole_history = read_by_any([(("a",), None), (None, t[2])], "kind", "at")
    assert str(whole_history).startswith("[(col(")  # no start of its own: all of history
    assert frame.select(whole_history).to_series().to_list() == [
        True, True, False, True, True, True
    ]  # fmt: skip


def test_segments_are_computed_in_levels_after_what_they_read(make_project: Any) -> None:
    """`Plan.levels`: a segment comes after every segment whose columns it reads, as early as
    that allows; the Polars engine computes a level's segments in one step each for rule,
    set and membership. Members are those of the segments alone."""
    segments = """
  clicked: {where: {event: {source: email, type: click}}}
  opened: {where: {event: {source: email, type: open}}}
  either: {where: {any: [{segment: clicked}, {segment: opened}]}}
  semi: {kind: semi_dynamic, where: {segment: either}}
  not_either: {where: {not: {segment: either}}}
  any_event: {where: {event: {source: email}}}
"""
    files = {"contacts.csv": "id\n1\n2\n3\n", "email.csv": EMAIL}
    project = make_project(with_segments(segments), files)
    plan = api.make_plan(project, api.resolve_as_of(project, "2026-03-01T00:00:00+00:00"))
    levels = [[s.name for s in level] for level in plan.levels()]
    assert levels == [["clicked", "opened", "any_event"], ["either"], ["semi", "not_either"]]
    for level in plan.levels():  # nothing reads a column of its own level
        own = {
            c
            for s in level
            for c in (
                planner.rule_col(s.name),
                planner.base_col(s.name),
                planner.segment_col(s.name),
            )
        }
        for s in level:
            reads = planner.ir.columns(s.rule) | planner.ir.columns(s.base)
            reads |= planner.ir.columns(s.member)
            mine = {planner.rule_col(s.name), planner.base_col(s.name)}
            assert not (reads & own) - mine, s.name
    got = api.compute(project, "2026-03-01T00:00:00+00:00")[0]
    assert got.member("clicked").to_list() == [True, False, False]
    assert got.member("either").to_list() == [True, True, False]
    assert got.member("semi").to_list() == [True, True, False]
    assert got.member("not_either").to_list() == [False, False, True]
    assert got.member("any_event").to_list() == [True, True, False]
