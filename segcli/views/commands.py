"""Read-side commands (show, explain, sample) as library calls that return data to render."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from segcli import api, storage
from segcli.errors import StateError, UsageError
from segcli.outputs.files import iso_timestamps
from segcli.state import outbox
from segcli.state.store import Manifest, StateDir
from segcli.storage import Loc
from segcli.views.checks import Outcome, expectations, run_check
from segcli.views.lastrun import LastRun, RunRef, last_run, local_time, read_frame
from segcli.views.report import Report, build_report


@dataclass
class Shown:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    total: int
    run: RunRef
    text: str = ""

    def to_json(self, name: str) -> dict[str, Any]:
        return {
            "segment": name,
            **self.run.to_json(),
            "total": self.total,
            "members": [_jsonable(dict(zip(self.columns, r, strict=True))) for r in self.rows],
        }


def show(
    project: api.Project,
    name: str,
    *,
    out_dir: str | Path | None = None,
    state_dir: str | Path | None = None,
    limit: int = 20,
    columns: list[str] | None = None,
    scores: bool = False,
    fmt: str = "table",
) -> Shown:
    """A segment's members after the last committed run, with contact columns and, when
    asked for, score columns (from that run's scores file)."""
    api.check_segment_names(project, [name])
    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"unknown format {fmt!r}: use table, csv or json")
    if limit < 0:
        raise UsageError(f"--limit must be 0 or more, not {limit}")
    spec = project.spec
    key = spec.contacts.key
    lr = last_run(project.state(state_dir), key, spec.timezone)
    members = lr.members(name)
    contacts = project.catalog.frame("contacts").collect()
    members = members.with_columns(pl.col(key).cast(contacts[key].dtype))
    wanted = [c for c in columns or [] if c != key]
    score_frame = None
    if scores or any(c not in contacts.columns for c in wanted):
        given = storage.location(out_dir) if out_dir else None
        score_frame = _scores(project, lr, given, contacts[key].dtype)
    score_cols = [c for c in score_frame.columns if c != key] if score_frame is not None else []
    missing = [c for c in wanted if c not in contacts.columns and c not in score_cols]
    if missing:
        known = ", ".join([*contacts.columns, *score_cols])
        raise UsageError(f"unknown column(s) {', '.join(missing)}; contacts has: {known}")
    if columns:
        contacts = contacts.select([key, *[c for c in wanted if c in contacts.columns]])
    df = members.join(contacts, on=key, how="left")
    if score_frame is not None:
        picked = [c for c in score_cols if scores or c in wanted]
        df = df.join(score_frame.select(key, *picked), on=key, how="left")
        if columns:  # in the order asked for, then the other score columns
            extra = [c for c in picked if c not in wanted]
            df = df.select(key, "joined_at", "source", *wanted, *extra)
    df = df.sort(key)
    total = df.height
    df = df.head(limit)
    text = ""
    if fmt == "csv":
        text = iso_timestamps(df).write_csv()
    elif fmt == "json":
        text = json.dumps([_jsonable(r) for r in df.to_dicts()], indent=2) + "\n"
    elif fmt == "table":
        df = df.with_columns(pl.col("joined_at").dt.convert_time_zone(spec.timezone))
    return Shown(df.columns, [tuple(r) for r in df.iter_rows()], total, lr.segment_ref(name), text)


def _scores(project: api.Project, lr: LastRun, out_dir: Loc | None, dtype: Any) -> pl.DataFrame:
    """The last committed run's scores file (key cast like the contacts key)."""
    if not project.spec.scoring:
        raise UsageError("the spec has no scoring models: there are no scores to show")
    path = lr.output_file("scores", out_dir, project.out_dir())
    key = project.spec.contacts.key
    return read_frame(path).with_columns(pl.col(key).cast(dtype))


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in row.items()}


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
    timezone: str = "UTC"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "timezone"}

    def label(self, which: str) -> str:
        """`run ID (as_of in the project timezone)` of the `from` or `to` side."""
        run_id, at = (
            (self.from_run, self.from_as_of) if which == "from" else (self.to_run, self.to_as_of)
        )
        return f"run {run_id} ({local_time(at, self.timezone) if at != '-' else 'none'})"


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
    state_dir: str | Path | None = None,
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
    tz = project.spec.timezone
    return Diff(name, f_id, ids[to_i], f_at, manifest.runs[to_i]["as_of"], entered, left, tz)


class History(list[dict[str, Any]]):
    """Per committed run (oldest first): size, entered and left of each (or one) segment;
    a list of rows that knows the project timezone its times are shown in."""

    def __init__(self, timezone: str, rows: list[dict[str, Any]]) -> None:
        super().__init__(rows)
        self.timezone = timezone


def history(
    project: api.Project,
    name: str | None,
    state_dir: str | Path | None = None,
) -> History:
    """Size, entered and left of each (or one) segment in every committed run, and the
    status of its deliveries in that run (done, pending, failed)."""
    if name is not None:
        api.check_segment_names(project, [name])
    state = project.state(state_dir)
    manifest = state.read_manifest()
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
                        "deliveries": outbox.status(state.path, r, seg),
                    }
                )
    return History(project.spec.timezone, rows)


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
    """Sizes, overlaps and score distributions of the last committed run, and the history
    of every run, all from the state (scores from the last run's own scores file)."""
    spec = project.spec
    key = spec.contacts.key
    lr = last_run(project.state(state_dir), key, spec.timezone)
    members = {n: lr.members(n)[key] for n in spec.segments if lr.has(n)}
    if not members:
        raise StateError(
            f"no committed run in {lr.state.path} has computed a segment of this spec: "
            "run `segcli run` first"
        )
    scores = None
    if spec.scoring:
        given = storage.location(out_dir) if out_dir else None
        scores = read_frame(lr.output_file("scores", given, project.out_dir()))
    return build_report(spec, members, scores, lr.manifest, lr.ref, state=lr.state.path)
