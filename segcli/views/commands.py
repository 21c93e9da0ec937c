"""Read-side commands (show, explain, sample) as library calls that return data to render."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from segcli import api
from segcli.errors import DataError, StateError, UsageError
from segcli.state.store import Manifest, StateDir
from segcli.views.checks import Outcome, expectations, run_check
from segcli.views.report import Report, build_report


@dataclass
class Shown:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    total: int
    text: str = ""


def show(
    project: api.Project,
    name: str,
    *,
    out_dir: Path | None = None,
    limit: int = 20,
    columns: list[str] | None = None,
    fmt: str = "table",
) -> Shown:
    """A segment's members from the last run's output, joined with contact columns."""
    api.check_segment_names(project, [name])
    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"unknown format {fmt!r}: use table, csv or json")
    spec = project.spec
    out = project.out_dir(out_dir)
    path = out / "segments" / f"{name}.parquet"
    if not path.exists():
        path = path.with_suffix(".csv")
    if not path.exists():
        raise DataError(f"no output for segment '{name}' in {out}: run `segcli run` first")
    members = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    key = spec.contacts.key
    contacts = project.catalog.frame("contacts").collect()
    members = members.with_columns(pl.col(key).cast(contacts[key].dtype))
    if columns:
        missing = [c for c in columns if c not in contacts.columns]
        if missing:
            raise UsageError(
                f"unknown column(s) {', '.join(missing)}; contacts has: "
                f"{', '.join(contacts.columns)}"
            )
        contacts = contacts.select([key, *[c for c in columns if c != key]])
    df = members.join(contacts, on=key, how="left").sort(key)
    total = df.height
    df = df.head(limit)
    text = ""
    if fmt == "csv":
        text = df.write_csv()
    elif fmt == "json":
        buf = io.StringIO()
        df.write_json(buf)
        text = buf.getvalue() + "\n"
    return Shown(df.columns, [tuple(r) for r in df.iter_rows()], total, text)


def sample(out: Path, **kwargs: Any) -> dict[str, Any]:
    """Generate synthetic exports (see segcli.demo.sample.generate)."""
    from segcli.demo import sample as gen

    fmt = kwargs.pop("fmt", "parquet")
    if fmt not in ("csv", "parquet"):
        raise UsageError(f"unknown format {fmt!r}: use csv or parquet")
    try:
        return dict(gen.generate(Path(out), fmt=fmt, **kwargs))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


@dataclass
class Diff:
    name: str
    from_run: str
    to_run: str
    from_as_of: str
    to_as_of: str
    entered: list[Any]
    left: list[Any]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _members_at(st: StateDir, manifest: Manifest, name: str, run_idx: int, key: str) -> pl.Series:
    """NAME's members after run number `run_idx` (its latest snapshot at or before that run)."""
    for r in reversed(manifest.runs[: run_idx + 1]):
        if name in r["segments"]:
            path = st.path / "runs" / r["run_id"] / f"{name}.parquet"
            if not path.exists():
                raise StateError(
                    f"the snapshot of '{name}' at run {r['run_id']} was pruned (see keep_runs)"
                )
            df = st.read_snapshot(str(path.relative_to(st.path)), key)
            return df.filter(pl.col("member"))[key]
    if manifest.pruned:
        raise StateError(
            f"no kept snapshot of '{name}' at or before run "
            f"{manifest.runs[run_idx]['run_id']}: older runs were pruned (see keep_runs)"
        )
    return pl.Series(key, [])


def diff(
    project: api.Project,
    name: str,
    from_run: str | None,
    to_run: str | None,
    state_dir: Path | None = None,
) -> Diff:
    """Who entered and left NAME between two committed runs (default: the last two)."""
    api.check_segment_names(project, [name])
    st = project.state(state_dir)
    manifest = st.read_manifest()
    ids = [r["run_id"] for r in manifest.runs]
    if not ids:
        raise StateError(f"no committed runs in {st.path}: run `segcli run` first")

    def index(run_id: str) -> int:
        if run_id in manifest.pruned:
            raise StateError(
                f"run {run_id} was pruned from {st.path} (keep_runs); kept runs: "
                f"{', '.join(ids[-10:])}"
            )
        if run_id not in ids:
            raise UsageError(f"unknown run {run_id!r}; runs: {', '.join(ids[-10:])}")
        return ids.index(run_id)

    to_i = index(to_run) if to_run else len(ids) - 1
    from_i = index(from_run) if from_run else to_i - 1
    if from_i < 0 and manifest.pruned:
        raise StateError(
            f"the run before {ids[to_i]} was pruned from {st.path} (keep_runs): nothing to "
            "compare it with"
        )
    key = project.spec.contacts.key
    after = _members_at(st, manifest, name, to_i, key)
    before = _members_at(st, manifest, name, from_i, key) if from_i >= 0 else after.head(0)
    entered = sorted(after.filter(~after.is_in(before.implode())).to_list())
    left = sorted(before.filter(~before.is_in(after.implode())).to_list())
    f_id = ids[from_i] if from_i >= 0 else "(none)"
    f_at = manifest.runs[from_i]["as_of"] if from_i >= 0 else "-"
    return Diff(name, f_id, ids[to_i], f_at, manifest.runs[to_i]["as_of"], entered, left)


def history(
    project: api.Project,
    name: str | None,
    state_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Per committed run (oldest first): size, entered and left of each (or one) segment."""
    if name is not None:
        api.check_segment_names(project, [name])
    manifest = project.state(state_dir).read_manifest()
    rows = []
    for r in manifest.runs:
        for seg, info in r["segments"].items():
            if name is None or seg == name:
                rows.append(
                    {
                        "run_id": r["run_id"],
                        "as_of": r["as_of"],
                        "segment": seg,
                        "kind": info["kind"],
                        "size": info["size"],
                        "entered": info["entered"],
                        "left": info["left"],
                    }
                )
    return rows


@dataclass
class CheckResult:
    outcomes: list[Outcome]
    seconds: float

    @property
    def failed(self) -> int:
        return sum(not o.passed for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.failed == 0,
            "failed": self.failed,
            "total": len(self.outcomes),
            "outcomes": [o.to_json() for o in self.outcomes],
        }


def check(
    project: api.Project,
    *,
    as_of: str | datetime | None = None,
    state_dir: str | Path | None = None,
) -> CheckResult:
    """Data checks of the spec, then each segment's `expect` against the last committed run."""
    t0 = time.perf_counter()
    spec = project.spec
    at = api.resolve_as_of(project, as_of)
    outcomes = [run_check(spec, project.catalog, c, at) for c in spec.checks]
    state = project.state(state_dir)
    outcomes += expectations(spec, state.read_manifest().runs)
    return CheckResult(outcomes, time.perf_counter() - t0)


def report(
    project: api.Project,
    *,
    out_dir: str | Path | None = None,
    state_dir: str | Path | None = None,
) -> Report:
    """Sizes, history, overlaps and score distributions from the last run and the state."""
    spec = project.spec
    out = project.out_dir(out_dir)
    state = project.state(state_dir)
    return build_report(spec, out, state.read_manifest())
