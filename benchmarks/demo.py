#!/usr/bin/env python3
"""The README's demo, timed (SPEC §6: "the demo (3,000 contacts) runs in under 0.5 s wall,
start-up included").

    python benchmarks/demo.py --runs 10

Copies the repository's `segments.yaml` and `sample_data/` into a scratch folder, then per
round and per build, alternating (the order rotates each round), runs the console script in
its own process, as a user would:

- **fresh**: `segcli run --as-of 2026-11-20` with no state (the README's first command; its
  `mql` actions run: an export file and a `python3` command);
- **second**: `segcli run --as-of 2026-11-21` on that state (the nightly run);
- **no actions**: the fresh run with `--no-actions` (segcli alone, without its command's
  child process).

and prints each one's median, minimum and maximum wall time and median CPU time (user + sys
of the process and its children, the command action's included). Builds: this checkout's
console script, `--compare-ref GIT_REF` (that commit, run with this interpreter) and
`--segcli-python [LABEL=]PYTHON` (another interpreter's segcli), as `bench.py` has them.
The `python3` the demo's command starts is the first on PATH: a pyenv shim there (a shell
script) costs ~0.05 s before the script's interpreter starts, so it is reported.

Exit code 0 when every run succeeded, 2 when one failed. No limit is enforced: the machine's
noise is too large for a timed gate; the figures are for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from bench import Build, add_build_arguments, builds_from  # noqa: E402

LIMIT_S = 0.5  # SPEC §6


@dataclass(frozen=True)
class Case:
    as_of: str
    options: tuple[str, ...] = ()
    fresh: bool = True  # the state starts empty
    ok_exits: tuple[int, ...] = (0,)


CASES = {
    "fresh": Case("2026-11-20"),
    "second": Case("2026-11-21", fresh=False),
    "no actions": Case("2026-11-20", ("--no-actions",), ok_exits=(0, 5)),  # 5: left pending
}


@dataclass
class Run:
    build: str
    case: str
    wall_s: float
    cpu_s: float
    exit_code: int


def copy_demo(into: Path) -> Path:
    """The demo's spec and data, as the README runs them, in a folder of their own."""
    shutil.copy(REPO / "segments.yaml", into / "segments.yaml")
    shutil.copytree(REPO / "sample_data", into / "sample_data")
    return into


def clean(folder: Path) -> None:
    """No state, outputs or exports: the next run is a first run."""
    for name in (".segcli", "out", "exports"):
        shutil.rmtree(folder / name, ignore_errors=True)


def timed(build: Build, folder: Path, case: str) -> Run:
    how = CASES[case]
    # An installed segcli has its modules' bytecode (pip compiles it); a build run from a
    # git archive gets it on its first run, unless bytecode writing is turned off.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(build.env)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [*build.cmd, "run", "--as-of", how.as_of, *how.options],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in how.ok_exits:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
        print(f"  {build.label} {case}: exit {done.returncode}", file=sys.stderr)
        print("    " + "\n    ".join(tail), file=sys.stderr)
    return Run(build.label, case, wall, cpu, done.returncode)


def one_round(builds: list[Build], folders: dict[str, Path], rotate: int) -> list[Run]:
    """Each build's three runs; the builds' order rotates so none always goes first."""
    order = builds[rotate % len(builds) :] + builds[: rotate % len(builds)]
    runs: list[Run] = []
    for build in order:
        folder = folders[build.label]
        for case, how in CASES.items():
            if how.fresh:
                clean(folder)
            runs.append(timed(build, folder, case))
    return runs


def summary(runs: list[Run]) -> dict[str, dict[str, dict[str, float]]]:
    """build -> case -> median/min/max wall and median CPU, of the runs that succeeded."""
    grouped: dict[str, dict[str, list[Run]]] = {}
    for r in runs:
        if r.exit_code in CASES[r.case].ok_exits:
            grouped.setdefault(r.build, {}).setdefault(r.case, []).append(r)
    return {
        build: {
            case: {
                "median_s": statistics.median(r.wall_s for r in ok),
                "min_s": min(r.wall_s for r in ok),
                "max_s": max(r.wall_s for r in ok),
                "cpu_s": statistics.median(r.cpu_s for r in ok),
                "runs": len(ok),
            }
            for case, ok in cases.items()
        }
        for build, cases in grouped.items()
    }


def python3_on_path() -> str:
    """What `python3` is for the demo's command: its path, and whether it is a shim."""
    found = shutil.which("python3")
    if found is None:
        return "python3: not on PATH (the demo's command action will fail)"
    with open(found, "rb") as fh:
        script = fh.read(2) == b"#!"
    return f"python3 = {found}" + (" (a script, e.g. a pyenv shim)" if script else "")


def report(table: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    lines = [
        f"  {'build':<24} {'run':<11} {'median':>8} {'min':>8} {'max':>8} {'cpu':>8}  "
        f"(SPEC §6: < {LIMIT_S} s wall)"
    ]
    for build, cases in table.items():
        for case, s in cases.items():
            verdict = "ok" if s["median_s"] < LIMIT_S else "over"
            lines.append(
                f"  {build:<24} {case:<11} {s['median_s']:7.3f}s {s['min_s']:7.3f}s "
                f"{s['max_s']:7.3f}s {s['cpu_s']:7.3f}s  {verdict}"
            )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10, help="rounds (each build's three runs)")
    add_build_arguments(p)
    p.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    p.add_argument("--result", type=Path, default=None, help="also write the figures as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.runs < 1:
        print("--runs must be at least 1", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="segcli-demo-"))
    workdir = (args.workdir or scratch).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        builds = builds_from(args, workdir)
        folders: dict[str, Path] = {}
        for n, b in enumerate(builds):
            folder = workdir / f"demo-{n}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            folders[b.label] = copy_demo(folder)
        print(f"the demo ({REPO / 'segments.yaml'}), {args.runs} round(s); {python3_on_path()}")
        for b in builds:
            print(f"  {b.label}: {' '.join(b.cmd)} ({b.source})")
        runs: list[Run] = []
        for i in range(args.runs):
            runs += one_round(builds, folders, i)
        table = summary(runs)
        print("\n".join(report(table)))
        if args.result:
            args.result.write_text(
                json.dumps({"summary": table, "runs": [r.__dict__ for r in runs]}, indent=2) + "\n"
            )
        failed = [r for r in runs if r.exit_code not in CASES[r.case].ok_exits]
        return 2 if failed else 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
