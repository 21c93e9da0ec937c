"""The benchmark as a correctness check: on a tiny workload, every shape holds the same rows,
segcli gives the same answers on every layout, and agrees with the hand-written DuckDB SQL of
benchmarks/ (single pass and per segment). No timing is asserted; the full-size run is
`python benchmarks/bench.py`."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"
# Seed and sizes chosen so that all segments but vps_in_nj_clicked_30d have members.
WORKLOAD = {"contacts": 2000, "email_events": 60_000, "web_events": 40_000, "seed": 11}
# DuckDB runs where they check something new (its CSV and skewed reading); each DuckDB run on
# 400 daily parts costs seconds, and the daily shapes are checked against the others instead.
DUCKDB_ON = {
    "parquet-arrival": ("duckdb_single", "duckdb_per_segment"),
    "csv-arrival": ("duckdb_single",),
    "parquet-skewed": ("duckdb_single",),
}


def load_bench(path: Path = BENCH, name: str = "segcli_bench") -> ModuleType:
    """A script of benchmarks/ as a module (they are not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench()


@pytest.fixture(scope="module")
def workdir(bench: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny workload generated once, in every shape."""
    workdir = tmp_path_factory.mktemp("bench")
    build = bench.Build("segcli", (sys.executable, "-m", "segcli"))
    generated = bench.prepare_base(workdir, bench.Workload(**WORKLOAD), build)
    assert generated is not None and generated.exit_code == 0
    for shape in bench.SHAPES.values():
        bench.prepare(workdir, shape, bench.Workload(**WORKLOAD), threads=2)
    return workdir


@pytest.fixture(scope="module")
def outputs(bench: ModuleType, workdir: Path) -> dict[tuple[str, str], Any]:
    """(shape, variant) -> results, each run once as the benchmark runs it (own process)."""
    build = bench.Build("segcli", (sys.executable, "-m", "segcli"))
    results = {}
    for name, shape in bench.SHAPES.items():
        for variant in ("segcli", *DUCKDB_ON.get(name, ())):
            shape_dir = workdir / "shapes" / name
            m = bench.run_variant(variant, shape_dir, shape, 1, threads=2, build=build)
            assert m.exit_code == 0
            assert m.peak_rss_mib > 0
            results[name, variant] = bench.read_results(Path(m.out))
    return results


@pytest.mark.parametrize(("shape", "variant"), [(s, v) for s, vs in DUCKDB_ON.items() for v in vs])
def test_segcli_agrees_with_duckdb(
    bench: ModuleType, outputs: dict[tuple[str, str], Any], shape: str, variant: str
) -> None:
    problems = bench.compare({"segcli": outputs[shape, "segcli"], variant: outputs[shape, variant]})
    assert problems == [], "\n".join(problems)


def test_every_layout_gives_the_same_answers(
    bench: ModuleType, outputs: dict[tuple[str, str], Any]
) -> None:
    first = outputs["parquet-arrival", "segcli"]
    for name, shape in bench.SHAPES.items():
        if not shape.skewed:
            problems = bench.compare({"parquet-arrival": first, name: outputs[name, "segcli"]})
            assert problems == [], f"{name}:\n" + "\n".join(problems)


def _rows(shape_dir: Path, path: str) -> pl.DataFrame:
    files = sorted(shape_dir.glob(path))
    if path.endswith(".parquet"):
        return pl.concat([pl.read_parquet(f) for f in files])
    return pl.concat([pl.read_csv(f, infer_schema=False) for f in files])


def test_shapes_hold_the_same_rows(bench: ModuleType, workdir: Path) -> None:
    for table in ("email_events", "web_events"):
        counts = {}
        for name, shape in bench.SHAPES.items():
            shape_dir = workdir / "shapes" / name
            rows = _rows(shape_dir, shape.source_paths()[table])
            counts[name] = rows.height
            times = rows["occurred_at"].cast(pl.String)
            if shape.daily:  # one part per UTC day, each sorted by time
                parts = sorted(shape_dir.glob(shape.source_paths()[table]))
                assert len(parts) > 100  # campaigns are not daily: fewer email days
                assert times.is_sorted()  # parts in name order are days in order
                assert all(p.name[:10] == str(t)[:10] for p, t in _first_times(parts))
            else:  # arrival order: not time order
                assert not times.is_sorted()
            if shape.skewed:
                n_hot = sys.modules["bench_shapes"].HOT_CONTACTS  # bench.py's sibling module
                hot = rows["contact_id"].value_counts(sort=True).head(n_hot)
                assert hot["count"].sum() > 0.5 * rows.height
        assert len(set(counts.values())) == 1, (table, counts)
        assert counts["parquet-arrival"] == WORKLOAD[table]


def _first_times(parts: list[Path]) -> list[tuple[Path, str]]:
    out = []
    for p in parts[:3]:
        frame = pl.read_parquet(p) if p.suffix == ".parquet" else pl.read_csv(p, infer_schema=False)
        out.append((p, str(frame["occurred_at"][0])))
    return out


def test_workload_exercises_the_segments(
    bench: ModuleType, outputs: dict[tuple[str, str], Any]
) -> None:
    results = outputs["parquet-arrival", "segcli"]
    sizes = {name: len(keys) for name, keys in results.members.items()}
    assert set(sizes) == set(bench.SEGMENTS)
    empty = sorted(name for name, n in sizes.items() if n == 0)
    assert len(empty) <= 2, f"too many empty segments to check anything: {empty}"
    # Not everybody either: each segment is a real selection.
    assert all(n < WORKLOAD["contacts"] for n in sizes.values()), sizes
    scores = results.scores
    assert scores.height == WORKLOAD["contacts"]
    assert scores["engagement"].max() > 0 and scores["recency"].min() < 0


def test_main_reports_every_build(bench: ModuleType, workdir: Path) -> None:
    """The command line end to end on reused data: two segcli builds and one DuckDB variant."""
    code = bench.main(
        [
            *("--contacts", "2000", "--email-events", "60000", "--web-events", "40000"),
            *("--seed", "11", "--repeat", "1", "--workdir", str(workdir), "--no-warm"),
            *("--shape", "parquet-skewed", "--variants", "segcli,duckdb_single"),
            *("--segcli", f"{sys.executable} -m segcli", "--compare-ref", "HEAD"),
        ]
    )
    assert code == 0
    report = json.loads((workdir / "result.json").read_text())
    assert report["generation"] is None  # the base data was reused
    (entry,) = report["shapes"]
    assert set(entry["summary"]) == {"segcli", "segcli@HEAD", "duckdb_single"}
    assert {"segcli/duckdb_single", "segcli@HEAD/segcli"} <= set(entry["ratios"])
    assert "| parquet-skewed (segcli@HEAD) |" in (workdir / "result.md").read_text()


def test_generated_data_is_reused(bench: ModuleType, tmp_path: Path) -> None:
    build = bench.Build("segcli", (sys.executable, "-m", "segcli"))
    small = bench.Workload(contacts=50, email_events=500, web_events=300, seed=1)
    assert bench.prepare_base(tmp_path, small, build) is not None
    assert bench.prepare_base(tmp_path, small, build) is None  # same parameters: reused
    other = bench.Workload(contacts=50, email_events=500, web_events=301, seed=1)
    assert bench.prepare_base(tmp_path, other, build) is not None
    shape = bench.SHAPES["csv-arrival"]
    shape_dir = bench.prepare(tmp_path, shape, other, threads=1)
    assert _rows(shape_dir, "data/web_events.csv").height == 301
    # Reused until the base changes.
    stamp = (shape_dir / "data" / "params.json").stat().st_mtime_ns
    bench.prepare(tmp_path, shape, other, threads=1)
    assert (shape_dir / "data" / "params.json").stat().st_mtime_ns == stamp


def test_engine_builds_run_on_their_engine_and_agree(
    bench: ModuleType, workdir: Path, outputs: dict[tuple[str, str], Any]
) -> None:
    """`bench.py --engine duckdb` runs this checkout with `--engine duckdb`; its outputs are
    checked against the Polars engine's like every other build's."""
    base = bench.Build("segcli", (sys.executable, "-m", "segcli"))
    build = bench.build_on_engine(base, "duckdb")
    assert build.label == "segcli-on-duckdb"
    shape = bench.SHAPES["parquet-arrival"]
    m = bench.run_variant("segcli", workdir / "shapes" / shape.name, shape, 1, 2, build)
    assert m.exit_code == 0 and m.variant == "segcli-on-duckdb"
    assert json.loads((Path(m.out) / "run.json").read_text())["engine"] == "duckdb"
    duck = bench.read_results(Path(m.out))
    problems = bench.compare({"polars": outputs[shape.name, "segcli"], "duckdb": duck})
    assert problems == [], "\n".join(problems)
