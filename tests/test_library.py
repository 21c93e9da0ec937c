"""The library API (`segcli.load`, `segcli.plan`, `segcli.evaluate`, `segcli.run`) returns
values, and the Plan is a frozen, comparable, printable value."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import polars as pl
import pytest

import segcli
from segcli.planning import ir

README = Path(__file__).resolve().parents[1] / "README.md"


def test_plan_is_a_frozen_comparable_value(basic: Path) -> None:
    project = segcli.load(basic / "segments.yaml")
    one = segcli.plan(project, as_of="2026-11-20")
    two = segcli.plan(project, as_of="2026-11-20")
    assert one == two
    assert segcli.plan(project, as_of="2026-11-21") != one
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.as_of = two.as_of  # type: ignore[misc]
    assert one.order[-1] == "hot"
    seg = one.segment("vps")
    assert ir.render(seg.rule) == "coalesce(title starts_with 'VP', False)"
    assert any(line.startswith("source email:") for line in one.describe())


def test_plan_shares_identical_aggregates(basic: Path) -> None:
    project = segcli.load(basic / "segments.yaml")
    plan = segcli.plan(project, as_of="2026-11-20")
    names = [a.name for s in plan.scans for a in s.aggregates]
    keys = [a.key for s in plan.scans for a in s.aggregates]
    assert len(names) == len(set(names))
    assert len(keys) == len(set(keys))


def test_evaluate_and_run_return_frames(basic: Path) -> None:
    project = segcli.load(basic / "segments.yaml")
    ev = segcli.evaluate(project, as_of="2026-11-20")
    frame = ev.memberships()
    assert frame.columns == ["contact_id", *ev.segments]
    result = segcli.run(project, as_of="2026-11-20")
    assert result.memberships is not None and result.scores is not None
    for name in ev.segments:
        written = pl.read_parquet(basic / "out" / "segments" / f"{name}.parquet")["contact_id"]
        in_frame = result.memberships.filter(pl.col(name))["contact_id"]
        assert in_frame.to_list() == written.to_list(), name
    scores = pl.read_parquet(basic / "out" / "scores.parquet")
    assert result.scores["engagement"].to_list() == scores["engagement"].to_list()


def test_readme_library_example_runs(basic: Path) -> None:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README shows the library API in a ```python block"
    namespace: dict[str, object] = {}
    exec(blocks[0], namespace)
    assert isinstance(namespace["members"], pl.DataFrame)
