#!/usr/bin/env python3
"""segcli vs hand-written DuckDB SQL on every shape of the reference workload (SPEC §6).

    python benchmarks/bench.py --contacts 1000000 --email-events 30000000 \
        --web-events 20000000 --repeat 3 --workdir /work/benchdata/bench

1. generates the rows once with `segcli sample` (Parquet) into WORKDIR/base, reused while the
   parameters and segcli/demo/sample.py are unchanged;
2. lays the same rows out in each shape (`--shape`, default all; see bench_shapes.py) under
   WORKDIR/shapes/NAME/data, with its own spec.yaml (benchmarks/spec.yaml, source paths
   rewritten) and the DuckDB SQL in WORKDIR/shapes/NAME/sql/;
3. per shape, runs each variant in its own process, `--repeat` times, alternating (the order
   rotates each repeat): `segcli run` (fresh --out and --state each time, all outputs and
   state written), the DuckDB single pass (FILTER aggregates), the DuckDB per-segment
   queries; each writes the segments' member files and scores.parquet;
4. measures wall time, CPU time and peak RSS of the whole process tree (each process's
   VmHWM from /proc, sampled every 50 ms);
5. checks that all variants agree (members of every segment, scores within 1e-6), and that
   shapes holding the same rows give the same results; exits 1 loudly when not;
6. prints per shape the medians, the ratios segcli/duckdb_single (SPEC §6: <= 0.75) and
   segcli/duckdb_per_segment (<= 0.5) and peak RSS (< 2 GiB), then one table of all shapes
   with the worst one named; writes WORKDIR/result.json and WORKDIR/result.md.

Several segcli builds can run side by side (a refactor shows "no slowdown"):
`--compare-ref GIT_REF` runs segcli from that commit of this repository (extracted to
WORKDIR/builds/, run with this interpreter), `--segcli-python [LABEL=]PYTHON` runs
`PYTHON -m segcli`, `--engine duckdb` (or spark) runs this checkout on that engine; all
repeat and are checked for agreement. Each build gets its own ratios and a ratio to the first.

Only the standard library is imported at module level: `python bench.py _run-sql FILE THREADS`
is the DuckDB worker process and should not pay for importing Polars.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # bench_sql and bench_shapes sit beside this file
    sys.path.insert(0, str(HERE))

from bench_shapes import SHAPES, Shape, prepare_shape  # noqa: E402
from bench_sql import AS_OF, SEGMENTS, per_segment_sql, run_sql, single_pass_sql  # noqa: E402

SPEC_FILE = HERE / "spec.yaml"
SPEC_PATHS = {  # as benchmarks/spec.yaml has them; each shape rewrites them
    "contacts": "data/contacts.parquet",
    "email_events": "data/email_events/*.parquet",
    "web_events": "data/web_events/*.parquet",
}
SCORE_TOLERANCE = 1e-6
DUCKDB_VARIANTS = ("duckdb_single", "duckdb_per_segment")
VARIANTS = ("segcli", *DUCKDB_VARIANTS)
LIMITS = {"duckdb_single": 0.75, "duckdb_per_segment": 0.5}  # SPEC §6
RSS_LIMIT_GIB = 2.0
MODELS = ("engagement", "recency")
POLL_S = 0.05


@dataclass(frozen=True)
class Workload:
    """The generator's parameters; the data is reused only when all of them match."""

    contacts: int
    email_events: int
    web_events: int
    seed: int = 42


@dataclass(frozen=True)
class Build:
    """A segcli to measure: its label, command and extra environment."""

    label: str
    cmd: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    source: str = ""  # where it comes from (checkout, git ref, interpreter)
    run_args: tuple[str, ...] = ()  # extra `segcli run` options (e.g. --engine duckdb)


@dataclass
class Measurement:
    """One measured process."""

    variant: str
    shape: str
    repeat: int
    wall_s: float
    peak_rss_mib: float  # the process tree's, sampled every POLL_S (tree_hwm_kib)
    ru_maxrss_mib: float  # wait4's: includes this (parent) process's RSS at fork
    user_s: float
    sys_s: float
    exit_code: int
    out: str
    log: str
    load_before: float  # 1-minute load average: other work on the machine skews wall times
    load_after: float


# ------------------------------------------------------------------------------- builds


def segcli_command() -> list[str]:
    """The segcli console script beside this Python, else `python -m segcli`."""
    script = Path(sys.executable).parent / "segcli"
    return [str(script)] if script.exists() else [sys.executable, "-m", "segcli"]


def default_build(cmd: list[str] | None = None) -> Build:
    return Build("segcli", tuple(cmd or segcli_command()), source="this checkout")


def build_from_ref(ref: str, workdir: Path) -> Build:
    """segcli as of git REF of this repository, extracted once, run with this interpreter."""
    repo = HERE.parent
    sha = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    if not sha:
        fail(f"--compare-ref {ref}: not a commit of {repo}")
    target = workdir / "builds" / sha[:12]
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", sha, "segcli"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
        (target / ".complete").write_text(sha + "\n")
    build = Build(
        f"segcli@{ref}",
        (sys.executable, "-m", "segcli"),
        (("PYTHONPATH", str(target)),),
        source=f"git {ref} = {sha}",
    )
    where = subprocess.run(
        [*build.cmd[:1], "-c", "import segcli; print(segcli.__file__)"],
        env={**os.environ, **dict(build.env)}, cwd=workdir, capture_output=True, text=True,
        check=False,
    ).stdout.strip()  # fmt: skip
    if not where.startswith(str(target)):
        fail(f"--compare-ref {ref}: imports segcli from {where!r}, not from {target}")
    return build


def build_on_engine(base: Build, engine: str) -> Build:
    """This checkout's segcli with `--engine ENGINE` (SPEC §6: the engines beside Polars)."""
    return Build(
        f"{base.label}-on-{engine}",
        base.cmd,
        base.env,
        source=f"{base.source}, --engine {engine}",
        run_args=("--engine", engine),
    )


def build_from_python(spec: str, n: int) -> Build:
    """`[LABEL=]PYTHON`: segcli as that interpreter imports it."""
    label, _, python = spec.rpartition("=")
    return Build(
        f"segcli:{label or f'py{n}'}", (python, "-m", "segcli"), source=f"interpreter {python}"
    )


# ------------------------------------------------------------------------------- workload


def sample_py_digest() -> str:
    """sha256 of segcli/demo/sample.py: a changed generator means different data."""
    found = importlib.util.find_spec("segcli.demo.sample")
    if found is None or found.origin is None:
        return "unknown"
    return hashlib.sha256(Path(found.origin).read_bytes()).hexdigest()


def prepare_base(workdir: Path, workload: Workload, build: Build) -> Measurement | None:
    """Generate WORKDIR/base (or reuse it); return the generation's measurement, None if reused."""
    base = workdir / "base"
    params_file = base / "params.json"
    wanted = {**asdict(workload), "format": "parquet", "sample_py_sha256": sample_py_digest()}
    if params_file.exists() and json.loads(params_file.read_text()) == wanted:
        return None
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    cmd = [
        *build.cmd,
        "sample",
        "--out", str(base),
        "--contacts", str(workload.contacts),
        "--email-events", str(workload.email_events),
        "--web-events", str(workload.web_events),
        "--seed", str(workload.seed),
        "--format", "parquet",
    ]  # fmt: skip
    env = {**os.environ, **dict(build.env)}
    m = measure(cmd, "generate", "base", 0, workdir, env, base, workdir / "generate.log")
    if m.exit_code != 0:
        fail(f"segcli sample failed (exit {m.exit_code}); see {m.log}:\n{tail(m.log)}")
    params_file.write_text(json.dumps(wanted, indent=2) + "\n")
    return m


def prepare(workdir: Path, shape: Shape, workload: Workload, threads: int) -> Path:
    """WORKDIR/shapes/NAME with data/, spec.yaml and sql/; returns that directory."""
    shape_dir = workdir / "shapes" / shape.name
    t0 = time.perf_counter()
    if prepare_shape(workdir / "base", shape, shape_dir, workload.contacts, threads):
        print(f"  data: written in {time.perf_counter() - t0:.1f} s")
    else:
        print("  data: reused")
    write_spec(shape_dir, shape)
    paths = shape.source_paths()
    (shape_dir / "sql").mkdir(exist_ok=True)
    (shape_dir / "sql" / "single_pass.sql").write_text(single_pass_sql("out", paths))
    (shape_dir / "sql" / "per_segment.sql").write_text(per_segment_sql("out", paths))
    return shape_dir


def write_spec(shape_dir: Path, shape: Shape) -> Path:
    """SHAPE_DIR/spec.yaml: benchmarks/spec.yaml with the shape's source paths."""
    text = SPEC_FILE.read_text()
    for table, path in shape.source_paths().items():
        old = f"path: {SPEC_PATHS[table]}\n"
        assert text.count(old) == 1, f"spec.yaml should name {old!r} once"
        text = text.replace(old, f"path: {path}\n")
    target = shape_dir / "spec.yaml"
    target.write_text(text)
    return target


def warm(shape_dir: Path) -> float:
    """Read every data file once, so no variant pays for a cold page cache; returns GiB."""
    total = 0
    for path in sorted((shape_dir / "data").rglob("*")):
        if path.is_file():
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 24):
                    total += len(chunk)
    return total / 2**30


# ------------------------------------------------------------------------------- running


def tree_hwm_kib(root: int) -> int:
    """Peak resident memory of `root` and its live descendants: the sum of their VmHWM (KiB).

    VmHWM is a process's own high-water mark since exec, so for one process (segcli, the
    DuckDB worker) the last sample is its true peak; for several it is an upper bound.
    (wait4's ru_maxrss is no use here: it counts the parent's RSS at fork time.)
    """
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/status") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("VmHWM:")), 0)
        except (OSError, ValueError):
            continue
        stack.extend(children.get(pid, []))
    return total


@dataclass
class _Sampler:
    """Samples the process tree's peak RSS until stopped; keeps the largest."""

    pid: int
    peak_kib: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_kib = max(self.peak_kib, tree_hwm_kib(self.pid))
            self.stop.wait(POLL_S)


def measure(
    cmd: list[str],
    variant: str,
    shape: str,
    repeat: int,
    cwd: Path,
    env: dict[str, str],
    out: Path,
    log: Path,
) -> Measurement:
    """Run `cmd`; measure its wall time, CPU time and peak RSS (whole process tree)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    with log.open("wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        sampler = _Sampler(proc.pid)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        sampler.stop.set()
        thread.join()
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped by wait4 already
    return Measurement(
        variant=variant,
        shape=shape,
        repeat=repeat,
        wall_s=wall,
        peak_rss_mib=sampler.peak_kib / 1024,
        ru_maxrss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        exit_code=code,
        out=str(out),
        log=str(log),
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )


def run_variant(
    variant: str,
    shape_dir: Path,
    shape: Shape,
    repeat: int,
    threads: int,
    build: Build | None = None,
    as_of: str = AS_OF,
) -> Measurement:
    """One measured run into SHAPE_DIR/runs/VARIANT-REPEAT/out (fresh state)."""
    label = build.label if build else variant
    run_dir = shape_dir / "runs" / f"{label.replace('/', '_')}-{repeat}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    out = run_dir / "out"
    (out / "segments").mkdir(parents=True)
    env = {**os.environ, "POLARS_MAX_THREADS": str(threads)}
    if variant == "segcli":
        build = build or default_build()
        env.update(build.env)
        cmd = [
            *build.cmd,
            "run",
            "-c", str(shape_dir / "spec.yaml"),
            "--as-of", as_of,
            "--out", str(out),
            "--state", str(run_dir / "state"),
            *build.run_args,
        ]  # fmt: skip
    else:
        script = run_dir / "query.sql"
        make = single_pass_sql if variant == "duckdb_single" else per_segment_sql
        script.write_text(make(str(out.relative_to(shape_dir)), shape.source_paths(), as_of))
        cmd = [sys.executable, str(Path(__file__).resolve()), "_run-sql", str(script), str(threads)]
    m = measure(cmd, label, shape.name, repeat, shape_dir, env, out, run_dir / "log.txt")
    if m.exit_code != 0:
        fail(f"{label} on {shape.name} (repeat {repeat}) exited {m.exit_code}:\n{tail(m.log)}")
    return m


# ------------------------------------------------------------------------------- checking


@dataclass
class Results:
    """A variant's outputs: members per segment (sorted key arrays) and scores per model."""

    members: dict[str, Any]  # segment -> polars Series of keys
    scores: Any  # polars DataFrame: contact_id, engagement, recency


def read_results(out: Path) -> Results:
    """Read out/segments/*.parquet and out/scores.parquet (segcli's layout, SPEC §4)."""
    import polars as pl

    members = {}
    for name in SEGMENTS:
        path = out / "segments" / f"{name}.parquet"
        members[name] = pl.read_parquet(path, columns=["contact_id"])["contact_id"].sort()
    scores = pl.read_parquet(out / "scores.parquet", columns=["contact_id", *MODELS])
    return Results(members, scores.sort("contact_id"))


def compare(results: dict[str, Results]) -> list[str]:
    """Every disagreement between the first variant and each other one, in words."""
    import polars as pl

    problems: list[str] = []
    (base_name, base), *others = results.items()
    for name, other in others:
        for seg in SEGMENTS:
            a, b = base.members[seg], other.members[seg]
            only_a = a.filter(~a.is_in(b.implode()))
            only_b = b.filter(~b.is_in(a.implode()))
            if len(a) != len(b) or len(only_a) or len(only_b):
                problems.append(
                    f"segment {seg}: {base_name} {len(a):,} members, {name} {len(b):,}; "
                    f"only in {base_name}: {len(only_a):,} (e.g. {only_a.head(5).to_list()}), "
                    f"only in {name}: {len(only_b):,} (e.g. {only_b.head(5).to_list()})"
                )
        joined = base.scores.join(other.scores, on="contact_id", how="full", suffix="_o")
        if joined.height != base.scores.height or joined.height != other.scores.height:
            problems.append(
                f"scores: {base_name} has {base.scores.height:,} rows, {name} "
                f"{other.scores.height:,}, {joined.height:,} keys together"
            )
        for model in MODELS:
            diff = (pl.col(model) - pl.col(f"{model}_o")).abs()
            worst = joined.select(
                diff.max().alias("max"),
                (diff > SCORE_TOLERANCE).sum().alias("n"),
                pl.col(model).is_null().sum().alias("null_a"),
                pl.col(f"{model}_o").is_null().sum().alias("null_b"),
            ).row(0, named=True)
            if (worst["max"] or 0) > SCORE_TOLERANCE or worst["null_a"] or worst["null_b"]:
                example = joined.filter(diff > SCORE_TOLERANCE).head(5)
                problems.append(
                    f"score {model}: {base_name} vs {name}: max abs diff {worst['max']}, "
                    f"{worst['n']:,} contacts off by > {SCORE_TOLERANCE}, nulls "
                    f"{worst['null_a']}/{worst['null_b']}; e.g.\n{example}"
                )
    return problems


def check_shape(last: dict[str, Measurement]) -> tuple[dict[str, Results], list[str]]:
    """Each variant's last outputs, and every disagreement: all against the first variant,
    and the two DuckDB variants against each other."""
    results = {v: read_results(Path(m.out)) for v, m in last.items()}
    problems = compare(results)
    sql = {v: results[v] for v in DUCKDB_VARIANTS if v in results}
    if len(sql) == 2:
        problems += compare(sql)
    return results, problems


# ------------------------------------------------------------------------------- report


def summarize(ms: list[Measurement]) -> dict[str, dict[str, float]]:
    """Per variant: median/min/max wall, median CPU, peak RSS, the highest load seen."""
    out: dict[str, dict[str, float]] = {}
    for v in dict.fromkeys(m.variant for m in ms):
        mine = [m for m in ms if m.variant == v]
        out[v] = {
            "median_wall_s": statistics.median(m.wall_s for m in mine),
            "min_wall_s": min(m.wall_s for m in mine),
            "max_wall_s": max(m.wall_s for m in mine),
            "median_cpu_s": statistics.median(m.user_s + m.sys_s for m in mine),
            "max_peak_rss_mib": max(m.peak_rss_mib for m in mine),
            "max_load": max(max(m.load_before, m.load_after) for m in mine),
        }
    return out


def ratios(summary: dict[str, dict[str, float]], builds: list[str]) -> dict[str, float]:
    """segcli build / DuckDB variant (median wall), and each build / the first build."""
    out = {}
    for b in builds:
        for v in DUCKDB_VARIANTS:
            if b in summary and v in summary:
                out[f"{b}/{v}"] = summary[b]["median_wall_s"] / summary[v]["median_wall_s"]
                out[f"{b}/{v} (cpu)"] = summary[b]["median_cpu_s"] / summary[v]["median_cpu_s"]
        if b != builds[0] and b in summary and builds[0] in summary:
            out[f"{b}/{builds[0]}"] = (
                summary[b]["median_wall_s"] / summary[builds[0]]["median_wall_s"]
            )
    return out


def print_shape(shape: Shape, summary: dict[str, dict[str, float]], rs: dict[str, float]) -> None:
    print(
        f"\n  {'variant':<24} {'median wall':>12} {'min':>8} {'max':>8} {'cpu':>8} {'peak RSS':>10}"
    )
    for v, s in summary.items():
        print(
            f"  {v:<24} {s['median_wall_s']:>10.2f} s {s['min_wall_s']:>6.2f} s "
            f"{s['max_wall_s']:>6.2f} s {s['median_cpu_s']:>6.1f} s "
            f"{s['max_peak_rss_mib'] / 1024:>6.2f} GiB"
        )
    for name, r in rs.items():
        if "(cpu)" in name:
            continue
        cpu = rs.get(f"{name} (cpu)")
        limit = next((LIMITS[v] for v in DUCKDB_VARIANTS if name.endswith("/" + v)), None)
        verdict = (
            ""
            if limit is None
            else f"  (SPEC §6: <= {limit}; " + ("ok)" if r <= limit else "MISSED)")
        )
        cpu_text = "" if cpu is None else f"; CPU time {cpu:.2f}"
        print(f"  {name:<44} {r:5.2f}{verdict}{cpu_text}")
    load = max(s["max_load"] for s in summary.values())
    cores = os.cpu_count() or 1
    if load > cores:
        print(
            f"  WARNING: load average reached {load:.1f} on {cores} cores: other work competed "
            "for the CPU; wall times and ratios are less reliable (CPU times less so)"
        )


def table(shapes: list[dict[str, Any]], builds: list[str]) -> list[str]:
    """The per-shape table (Markdown), one row per shape and segcli build."""
    head = (
        "| shape | segcli | DuckDB single pass | DuckDB per segment | ratios (≤ 0.75 / ≤ 0.5) "
        "| CPU-time ratios | segcli peak RSS | DuckDB peak RSS (single / per seg.) | agree |"
    )
    lines = [head, "|" + "---|" * 9]
    for entry in shapes:
        s, r = entry["summary"], entry["ratios"]
        for b in builds:
            if b not in s:
                continue

            def wall(v: str, s: dict[str, dict[str, float]] = s) -> str:
                return f"{s[v]['median_wall_s']:.2f} s" if v in s else "-"

            def rss(v: str, s: dict[str, dict[str, float]] = s) -> str:
                return f"{s[v]['max_peak_rss_mib'] / 1024:.2f}" if v in s else "-"

            pair, cpu = (
                " / ".join(
                    f"{r[f'{b}/{v}{kind}']:.2f}" if f"{b}/{v}{kind}" in r else "-"
                    for v in DUCKDB_VARIANTS
                )
                for kind in ("", " (cpu)")
            )
            name = entry["shape"] + ("" if len(builds) == 1 else f" ({b})")
            lines.append(
                f"| {name} | {wall(b)} | {wall('duckdb_single')} | {wall('duckdb_per_segment')} "
                f"| {pair} | {cpu} | {rss(b)} GiB | {rss('duckdb_single')} / "
                f"{rss('duckdb_per_segment')} GiB | {'no' if entry['disagreements'] else 'yes'} |"
            )
    return lines


def worst(shapes: list[dict[str, Any]], build: str) -> str:
    """The shape with the highest ratio to the single pass (else per segment), in words."""
    scored = []
    for entry in shapes:
        r = entry["ratios"]
        for v in DUCKDB_VARIANTS:
            if f"{build}/{v}" in r:
                scored.append((r[f"{build}/{v}"] / LIMITS[v], entry["shape"], v, r[f"{build}/{v}"]))
    if not scored:
        return ""
    _, shape, v, r = max(scored)
    return f"worst shape for {build}: {shape} ({r:.2f}× {v}, limit {LIMITS[v]})"


def tail(path: str, lines: int = 30) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def fail(message: str, code: int = 2) -> None:
    print(f"\nERROR: {message}", file=sys.stderr)
    raise SystemExit(code)


# ------------------------------------------------------------------------------- main


def bench_shape(
    shape: Shape,
    shape_dir: Path,
    variants: list[str],
    builds: list[Build],
    repeat: int,
    threads: int,
    as_of: str,
) -> tuple[list[Measurement], dict[str, Results], list[str]]:
    """All repeats of all variants on one shape, alternating; the last outputs are checked."""
    order: list[tuple[str, Build | None]] = []
    if "segcli" in variants:
        order += [("segcli", b) for b in builds]
    order += [(v, None) for v in variants if v != "segcli"]
    ms: list[Measurement] = []
    for i in range(repeat):
        k = i % len(order)
        for variant, build in order[k:] + order[:k]:  # the order rotates each repeat
            m = run_variant(variant, shape_dir, shape, i + 1, threads, build, as_of)
            print(
                f"  repeat {i + 1} {m.variant:<24} {m.wall_s:7.2f} s  "
                f"{m.peak_rss_mib / 1024:5.2f} GiB  (load {m.load_before:.1f})",
                flush=True,
            )
            ms.append(m)
    last = {}
    for variant, build in order:
        label = build.label if build else variant
        last[label] = next(m for m in reversed(ms) if m.variant == label)
    results, problems = check_shape(last)
    return ms, results, problems


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    """The options naming the segcli builds to measure (demo.py has them too)."""
    p.add_argument("--segcli", default=None, help="this checkout's segcli command")
    p.add_argument(
        "--compare-ref",
        action="append",
        default=[],
        metavar="GIT_REF",
        help="also run segcli from this commit (repeatable)",
    )
    p.add_argument(
        "--segcli-python",
        action="append",
        default=[],
        metavar="[LABEL=]PYTHON",
        help="also run `PYTHON -m segcli` (repeatable)",
    )


def builds_from(args: argparse.Namespace, workdir: Path) -> list[Build]:
    """This checkout's segcli, then the --compare-ref and --segcli-python builds."""
    builds = [default_build(args.segcli.split() if args.segcli else None)]
    builds += [build_from_ref(ref, workdir) for ref in args.compare_ref]
    builds += [build_from_python(py, n) for n, py in enumerate(args.segcli_python, 2)]
    return builds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--contacts", type=int, default=1_000_000)
    p.add_argument("--email-events", type=int, default=30_000_000)
    p.add_argument("--web-events", type=int, default=20_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="POLARS_MAX_THREADS and DuckDB threads")
    p.add_argument("--workdir", type=Path, default=Path("/work/benchdata/bench"))
    p.add_argument("--as-of", default=AS_OF)
    p.add_argument(
        "--shape",
        default="all",
        help="comma-separated shapes, or all: " + ", ".join(SHAPES),
    )
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated subset of " + ", ".join(VARIANTS) + " (segcli = every build)",
    )
    add_build_arguments(p)
    p.add_argument(
        "--engine",
        action="append",
        default=[],
        metavar="ENGINE",
        help="also run this checkout's segcli with --engine ENGINE (duckdb, spark; repeatable)",
    )
    p.add_argument("--no-warm", action="store_true", help="do not pre-read each shape's files")
    p.add_argument("--result", type=Path, default=None, help="default WORKDIR/result.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if unknown := set(variants) - set(VARIANTS):
        fail(f"unknown variants: {', '.join(sorted(unknown))}")
    names = list(SHAPES) if args.shape == "all" else [s.strip() for s in args.shape.split(",")]
    if unknown := set(names) - set(SHAPES):
        fail(f"unknown shapes: {', '.join(sorted(unknown))} (known: {', '.join(SHAPES)})")
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    builds = builds_from(args, workdir)
    builds += [build_on_engine(builds[0], e) for e in args.engine if e != "polars"]
    labels = [b.label for b in builds]
    workload = Workload(args.contacts, args.email_events, args.web_events, args.seed)

    print(f"workload {workload} in {workdir}; threads={args.threads}; as_of={args.as_of}")
    for b in builds:
        print(f"  {b.label}: {' '.join(b.cmd)} ({b.source})")
    gen = prepare_base(workdir, workload, builds[0])
    print("base data: reused" if gen is None else f"base data: generated in {gen.wall_s:.1f} s")

    entries: list[dict[str, Any]] = []
    reference: tuple[str, Results] | None = None  # the first even-keyed shape's segcli results
    for name in names:
        shape = SHAPES[name]
        print(f"\n== {name}: {shape.description}")
        shape_dir = prepare(workdir, shape, workload, args.threads)
        if not args.no_warm:
            print(f"  warmed the page cache: {warm(shape_dir):.2f} GiB")
        ms, results, problems = bench_shape(
            shape, shape_dir, variants, builds, args.repeat, args.threads, args.as_of
        )
        first = next(iter(results))
        if not shape.skewed:  # the same rows in another layout: the same answers
            if reference is None:
                reference = (name, results[first])
            else:
                cross = compare({reference[0]: reference[1], name: results[first]})
                problems += [f"across shapes: {p}" for p in cross]
        summary = summarize(ms)
        rs = ratios(summary, labels)
        print_shape(shape, summary, rs)
        for p in problems:
            print(f"  DISAGREEMENT: {p}", file=sys.stderr)
        entries.append(
            {
                "shape": name,
                "description": shape.description,
                "runs": [asdict(m) for m in ms],
                "summary": summary,
                "ratios": rs,
                "sizes": {s: len(results[first].members[s]) for s in SEGMENTS},
                "disagreements": problems,
            }
        )

    lines = table(entries, labels)
    verdicts = [w for b in labels if (w := worst(entries, b))]
    print("\n" + "\n".join(lines))
    for v in verdicts:
        print(v)
    report = {
        "workload": asdict(workload),
        "threads": args.threads,
        "repeat": args.repeat,
        "as_of": args.as_of,
        "builds": [asdict(b) for b in builds],
        "generation": None if gen is None else asdict(gen),
        "shapes": entries,
        "python": sys.version.split()[0],
    }
    result = args.result or workdir / "result.json"
    result.write_text(json.dumps(report, indent=2) + "\n")
    result.with_suffix(".md").write_text("\n".join([*lines, "", *verdicts]) + "\n")
    print(f"\nresult: {result} (table: {result.with_suffix('.md')})")
    problems = [p for e in entries for p in e["disagreements"]]
    if problems:
        print("\n" + "!" * 78, file=sys.stderr)
        print(f"DISAGREEMENT ({len(problems)}):", file=sys.stderr)
        for line in problems:
            print(f"  - {line}", file=sys.stderr)
        print("!" * 78, file=sys.stderr)
        return 1
    print(
        f"all variants agree on {len(SEGMENTS)} segments and {len(MODELS)} models "
        f"in {len(entries)} shape(s)"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "_run-sql":
        run_sql(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(main())
