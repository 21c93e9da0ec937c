"""The demo expresses the source articles (docs/articles.md): every segment the page names is
in segments.yaml and, on the demo data, has members without being everyone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from segcli import api
from segcli.spec import graph
from segcli.spec import model as m
from segcli.spec.timeutil import parse_duration

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = (ROOT / "docs" / "articles.md").read_text(encoding="utf-8")
# The constructs the articles asked for that language v2 made expressible, by segment.
V2 = {
    "account_bounce_prospects": m.AccountCond,
    "paid_last_6_months": m.EventCond,
    "weekly_regulars": m.EventCond,
    "pricing_then_demo_request": m.SequenceCond,
    "matrix_sales_now": m.GradeCond,
    "matrix_nurture_fit": m.GradeCond,
    "matrix_engaged_poor_fit": m.GradeCond,
    "ever_mql_not_customer": m.SegmentRef,
    "trial_ends_this_week": m.FieldCond,
    "two_buying_signals": m.AtLeastCond,
}


def named_segments() -> list[str]:
    """Segment names in the tables' second column (`model X` entries are models)."""
    names: list[str] = []
    for line in ARTICLES.splitlines():
        cells = line.split("|")
        if len(cells) < 4 or cells[1].strip() in ("the article says", "---"):
            continue
        cell = re.sub(r"model `[^`]+`", "", cells[2])
        names += [n for n in re.findall(r"`([a-z0-9_]+)`", cell) if n not in names]
    return names


@pytest.fixture(scope="module")
def sizes() -> tuple[dict[str, int], int]:
    project = api.load(ROOT / "segments.yaml")
    ev, _ = api.compute(project, "2026-11-20")
    return {n: int(ev.member(n).sum()) for n in ev.segments}, ev.contact_keys().len()


def test_every_article_names_demo_segments() -> None:
    for article in ("000", "001", "002", "003", "004"):
        assert f"## {article}" in ARTICLES or f"and {article} " in ARTICLES, article
    spec = api.load(ROOT / "segments.yaml").spec
    names = named_segments()
    assert set(V2) <= set(names)
    assert [n for n in names if n not in spec.segments] == []


def test_v2_segments_use_the_new_constructs() -> None:
    spec = api.load(ROOT / "segments.yaml").spec
    for name, kind in V2.items():
        seg = spec.segments[name]
        assert any(isinstance(c, kind) for c in graph.walk(seg.where)), name
    paid = spec.segments["paid_last_6_months"].where
    assert isinstance(paid, m.EventCond) and paid.test.ops[0].value == parse_duration("6mo")
    regulars = spec.segments["weekly_regulars"].where
    assert isinstance(regulars, m.EventCond) and regulars.regularly is not None
    ever = list(graph.walk(spec.segments["ever_mql_not_customer"].where))
    assert any(isinstance(c, m.SegmentRef) and c.ever for c in ever)
    trial = spec.segments["trial_ends_this_week"].where
    assert isinstance(trial, m.FieldCond) and trial.test.offset is not None
    assert spec.contacts.account == "company_id"
    assert spec.scoring["fit"].grades


@pytest.mark.parametrize("name", named_segments())
def test_article_segment_has_members_but_not_everyone(
    sizes: tuple[dict[str, int], int], name: str
) -> None:
    got, everyone = sizes
    assert 0 < got[name] < everyone, (name, got[name])
