"""The DuckDB engine against the reference evaluator and the Polars engine.

The hypothesis cases of test_reference.py run on `engine="duckdb"` (memberships exactly,
scores within 1e-9; the hand-written cases and the scored spec run on every engine in
test_engines_spark.py); whole runs of the demo project on both engines write identical
members, changes, scores and state, over two runs.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import Computed, write_project
from hypothesis import given
from reference import Reference
from test_reference import (
    SETTINGS,
    Case,
    assert_matches,
    cases,
)

from segcli import api

ROOT = Path(__file__).resolve().parent.parent
FEW = SETTINGS.__class__(SETTINGS, max_examples=25)


def compute(
    project: api.Project,
    as_of: str | datetime,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> Computed:
    ev, _ = api.compute(project, as_of, engine=engine, spark_master=spark_master)
    keys = ev.contact_keys().to_list()

    def true_keys(flags: pl.Series) -> set[Any]:
        return {k for k, v in zip(keys, flags.to_list(), strict=True) if v}

    return Computed(
        {n: true_keys(ev.member(n)) for n in ev.segments},
        {n: true_keys(ev.matches(n)) for n in ev.segments},
        {m: dict(zip(keys, ev.score(m).to_list(), strict=True)) for m in project.spec.scoring},
    )


# The hand-written cases and the scored spec (decay, top, bucket) run on every engine,
# DuckDB included, in tests/test_engines_spark.py (one engine-parametrised fixture).


@FEW
@given(case=cases())
def test_random_segments_and_scores_on_duckdb(case: Case, project_dirs: Any) -> None:
    cfg = write_project(project_dirs(), case.yaml_text, case.files)
    got = compute(api.load(cfg), case.as_of)
    ref = Reference(case.spec, case.contacts, case.tables, case.as_of).evaluate()
    assert_matches(got, ref, repr(case))


# ---------------------------------------------------------------- whole runs of the demo


def _frames(out: Path) -> dict[str, pl.DataFrame]:
    return {str(f.relative_to(out)): pl.read_parquet(f) for f in sorted(out.rglob("*.parquet"))}


def _same(a: pl.DataFrame, b: pl.DataFrame, name: str) -> None:
    assert a.columns == b.columns, name
    assert a.height == b.height, name
    for c in a.columns:
        if a[c].dtype == pl.Float64:
            diff = (a[c] - b[c]).abs().max()
            assert diff is None or math.isclose(float(diff), 0.0, abs_tol=1e-9), (name, c)  # type: ignore[arg-type]
        else:
            assert a[c].equals(b[c]), (name, c)


def test_demo_runs_identical_on_both_engines(tmp_path: Path) -> None:
    """Members, changes, scores and state snapshots of two runs agree file by file."""
    roots = {}
    for engine in ("polars", "duckdb"):
        root = tmp_path / engine
        shutil.copytree(ROOT / "sample_data", root / "sample_data")
        shutil.copy(ROOT / "segments.yaml", root / "segments.yaml")
        scoring = ROOT / "scoring"
        if scoring.exists():
            shutil.copytree(scoring, root / "scoring")
        project = api.load(root / "segments.yaml")
        for at in ("2026-11-13", "2026-11-20"):
            api.run(project, as_of=at, engine=engine)
            out = _frames(root / "out")
            roots.setdefault(at, {})[engine] = out
        manifest = json.loads((root / ".segcli" / "manifest.json").read_text())
        order = [r["run_id"] for r in manifest["runs"]]
        roots.setdefault("state", {})[engine] = _by_order(_frames(root / ".segcli"), order)
    for at, by_engine in roots.items():
        a, b = by_engine["polars"], by_engine["duckdb"]
        assert sorted(a) == sorted(b), at
        for name in a:
            _same(a[name], b[name], f"{at}: {name}")


def _by_order(frames: dict[str, pl.DataFrame], runs: list[str]) -> dict[str, pl.DataFrame]:
    """State files keyed by the run's position instead of its (random) id."""
    out = {}
    for k, v in frames.items():
        parts = list(Path(k).parts)
        if len(parts) > 2 and parts[1] in runs:
            parts[1] = str(runs.index(parts[1]))
        out["/".join(parts)] = v
    return out


def test_run_json_counts_agree(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(ROOT / "sample_data", root / "sample_data")
    shutil.copy(ROOT / "segments.yaml", root / "segments.yaml")
    project = api.load(root / "segments.yaml")
    a = api.run(project, as_of="2026-11-20", engine="duckdb", dry_run=True)
    b = api.run(project, as_of="2026-11-20", dry_run=True)
    assert [(s.name, s.size) for s in a.segments] == [(s.name, s.size) for s in b.segments]
    assert json.dumps(a.to_json()["warnings"]) == json.dumps(b.to_json()["warnings"])


def test_unknown_engine_is_a_usage_error(tmp_path: Path) -> None:
    project = api.load(ROOT / "segments.yaml")
    with pytest.raises(api.UsageError, match="unknown engine 'spork'"):
        api.compute(project, "2026-11-20", engine="spork")
