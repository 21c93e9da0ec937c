"""The benchmark as a correctness check: on a tiny workload, segcli and the hand-written DuckDB
SQL of benchmarks/bench.py (single pass and per segment) agree on every segment's members and
every score. No timing is asserted; the full-size run is `python benchmarks/bench.py`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"
# Seed and sizes chosen so that all segments but vps_in_nj_clicked_30d have members.
WORKLOAD = {"contacts": 2000, "email_events": 60_000, "web_events": 40_000, "seed": 11}


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("segcli_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench()


@pytest.fixture(scope="module")
def outputs(bench: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each variant run once (as the benchmark runs them: own process, fresh state)."""
    workdir = tmp_path_factory.mktemp("bench")
    segcli = [sys.executable, "-m", "segcli"]
    generated = bench.prepare_workload(workdir, bench.Workload(**WORKLOAD), segcli)
    assert generated is not None and generated.exit_code == 0
    bench.write_spec(workdir)
    results = {}
    for variant in bench.VARIANTS:
        m = bench.run_variant(variant, workdir, 1, threads=2, segcli=segcli)
        assert m.exit_code == 0
        assert m.peak_rss_mib > 0
        results[variant] = bench.read_results(Path(m.out))
    return results


def test_segcli_agrees_with_duckdb_single_pass(bench: ModuleType, outputs: dict[str, Any]) -> None:
    problems = bench.compare({v: outputs[v] for v in ("segcli", "duckdb_single")})
    assert problems == [], "\n".join(problems)


def test_segcli_agrees_with_duckdb_per_segment(bench: ModuleType, outputs: dict[str, Any]) -> None:
    problems = bench.compare({v: outputs[v] for v in ("segcli", "duckdb_per_segment")})
    assert problems == [], "\n".join(problems)


def test_workload_exercises_the_segments(bench: ModuleType, outputs: dict[str, Any]) -> None:
    sizes = {name: len(keys) for name, keys in outputs["segcli"].members.items()}
    assert set(sizes) == set(bench.SEGMENTS)
    empty = sorted(name for name, n in sizes.items() if n == 0)
    assert len(empty) <= 2, f"too many empty segments to check anything: {empty}"
    # Not everybody either: each segment is a real selection.
    assert all(n < WORKLOAD["contacts"] for n in sizes.values()), sizes
    scores = outputs["segcli"].scores
    assert scores.height == WORKLOAD["contacts"]
    assert scores["engagement"].max() > 0 and scores["recency"].min() < 0


def test_generated_data_is_reused(bench: ModuleType, tmp_path: Path) -> None:
    segcli = [sys.executable, "-m", "segcli"]
    small = bench.Workload(contacts=50, email_events=500, web_events=300, seed=1)
    assert bench.prepare_workload(tmp_path, small, segcli) is not None
    assert bench.prepare_workload(tmp_path, small, segcli) is None  # same parameters: reused
    other = bench.Workload(contacts=50, email_events=500, web_events=301, seed=1)
    assert bench.prepare_workload(tmp_path, other, segcli) is not None
    assert sorted(p.name for p in (tmp_path / "data" / "web_events").iterdir()) == [
        "part-000.parquet"
    ]
