"""A run on Spark keeps its members on Spark (SPEC §3.1, issue 10).

The kinds' transitions computed on Spark (segcli.engines.spark_state) against the Polars
transition (segcli.state.kinds.transition) on random previous snapshots and current flags;
a whole run that never brings the per-contact result to the driver; what the driver does
see (counts, the changes it delivers); and the errors: CSV outputs, a corrupt snapshot, a
write that fails.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import write_project
from hypothesis import given
from hypothesis import strategies as st
from test_engines_duckdb import ROOT, _by_order, _frames, _same
from test_engines_spark import FEW
from test_reference import HAND_AS_OF, HAND_CONTACTS, HAND_EMAIL, HAND_SOURCES

from segcli import api, storage
from segcli.engines import spark as spark_engine
from segcli.engines import spark_state
from segcli.errors import StateError, UsageError, WriteError
from segcli.planning.planner import base_col, rule_col, segment_col
from segcli.state import history as past_runs
from segcli.state import kinds
from segcli.storage import Remote

pytestmark = pytest.mark.spark

NAMES = ["a", "b"]
AT = datetime(2026, 11, 20, 6, 30, 0, 123456, tzinfo=UTC)
BEFORE = datetime(2026, 11, 13, tzinfo=UTC)

flags = st.tuples(st.booleans(), st.booleans(), st.booleans())  # rule, base, member
snapshot_row = st.tuples(st.booleans(), st.booleans(), st.sampled_from(["rule", "kept", "manual"]))


@st.composite
def histories(draw: Any) -> dict[str, Any]:
    """Current contacts (1..8, ids 0..9) with each segment's flags; per segment, no
    previous snapshot or one over ids 0..9 (some no longer contacts); refreshed or not."""
    ids = sorted(draw(st.sets(st.integers(0, 9), min_size=1, max_size=8)))
    cur = {n: [draw(flags) for _ in ids] for n in NAMES}
    prev: dict[str, list[tuple[int, bool, bool, str]] | None] = {}
    for n in NAMES:
        if draw(st.booleans()):
            keys = sorted(draw(st.sets(st.integers(0, 9), max_size=8)))
            rows = [(k, *draw(snapshot_row)) for k in keys]
            prev[n] = [r for r in rows if r[1] or r[2]]  # members or in the base
        else:
            prev[n] = None
    refreshed = {n for n in NAMES if draw(st.booleans())}
    # Segment b's history is read by some condition (or not): what the state said of each
    # id (member, ever, left before), possibly nothing.
    history = None
    if draw(st.booleans()):
        keys = sorted(draw(st.sets(st.integers(0, 11), max_size=8)))
        history = [(k, draw(st.booleans()), draw(st.booleans()), draw(st.booleans())) for k in keys]
    return {"ids": ids, "cur": cur, "prev": prev, "refreshed": refreshed, "history": history}


def _history(rows: list[tuple[int, bool, bool, bool]]) -> pl.DataFrame:
    ts = pl.Datetime("us", "UTC")
    frame = pl.DataFrame(
        {
            "id": pl.Series([r[0] for r in rows], dtype=pl.Int64),
            "member": pl.Series([r[1] for r in rows], dtype=pl.Boolean),
            "joined": pl.Series([BEFORE if r[1] else None for r in rows], dtype=ts),
            "ever": pl.Series([r[2] for r in rows], dtype=pl.Boolean),
            "left": pl.Series([BEFORE if r[3] else None for r in rows], dtype=ts),
        }
    )
    return frame


def _previous_file(rows: list[tuple[int, bool, bool, str]], path: Path) -> pl.DataFrame:
    ts = pl.Datetime("us", "UTC")
    frame = pl.DataFrame(
        {
            "id": pl.Series([r[0] for r in rows], dtype=pl.Int64),
            "joined_at": pl.Series([BEFORE if r[1] else None for r in rows], dtype=ts),
            "source": pl.Series([r[3] for r in rows], dtype=pl.String),
            "member": pl.Series([r[1] for r in rows], dtype=pl.Boolean),
            "base": pl.Series([r[2] for r in rows], dtype=pl.Boolean),
        }
    )
    frame.write_parquet(path)
    return frame


@given(case=histories())
@FEW
def test_transitions_on_spark_mean_what_the_polars_transition_means(
    case: dict[str, Any], spark: Any, project_dirs: Any
) -> None:
    """Snapshot, member file and changes of every segment, and the counts, equal the
    Polars transition's, whatever the previous snapshot, refresh and deleted contacts; a
    segment whose history is read carries its summary on as with_summary does."""
    root = project_dirs()
    ids = case["ids"]
    columns: dict[str, Any] = {"id": ids}
    for n in NAMES:
        for i, col in enumerate((rule_col(n), base_col(n), segment_col(n))):
            columns[col] = [f[i] for f in case["cur"][n]]
    fields = ", ".join(f"`{c}` {'bigint' if c == 'id' else 'boolean'}" for c in columns)
    rows = list(zip(*columns.values(), strict=True))
    result = spark.createDataFrame(rows, fields)
    previous: dict[str, Path | None] = {}
    frames: dict[str, pl.DataFrame | None] = {}
    for n in NAMES:
        rows = case["prev"][n]
        previous[n] = root / f"{n}.parquet" if rows is not None else None
        frames[n] = _previous_file(rows, root / f"{n}.parquet") if rows is not None else None
    rows = case["history"]
    history = _history(rows) if rows is not None else None
    sent = spark_engine.send(spark, history) if history is not None and rows else None
    summaries = {"b": sent}  # the history as read, sent to Spark as the run sends it
    moves = spark_state.transitions(
        spark,
        result,
        NAMES,
        "id",
        "int",
        previous,
        AT,
        case["refreshed"],
        root / "batch",
        summaries,
    )
    moves.write()
    for n in NAMES:
        cur = pl.DataFrame(
            {
                "id": pl.Series(ids, dtype=pl.Int64),
                "rule": [f[0] for f in case["cur"][n]],
                "base": [f[1] for f in case["cur"][n]],
                "member": [f[2] for f in case["cur"][n]],
            }
        )
        refreshed = n in case["refreshed"] and frames[n] is not None
        snap, changes = kinds.transition(frames[n], cur, "id", AT, refreshed)
        members = snap.filter(pl.col("member")).select("id", "joined_at", "source")
        if n == "b":  # its snapshot carries the history summary on
            snap = past_runs.with_summary(snap, history, changes, "id", AT)
        for what, slice_, want in (
            ("snapshot", moves.snapshot(n), snap),
            ("members", moves.member_file(n), members),
            ("changes", moves.change_file(n), changes),
        ):
            target = root / f"{n}.{what}.parquet"
            slice_.write(target)
            got = pl.read_parquet(target)
            assert got.height == want.height, (n, what)
            assert got.schema == want.schema, (n, what, got.schema, want.schema)
            _same(want, got, f"{n} {what}")
        entered = int((changes["change"] == "entered").sum())
        size, n_in, n_out = moves.counts[n]
        assert (size, n_in, n_out) == (members.height, entered, changes.height - entered)
    shutil.rmtree(root)


def _demo(root: Path) -> api.Project:
    shutil.copytree(ROOT / "sample_data", root / "sample_data")
    shutil.copy(ROOT / "segments.yaml", root / "segments.yaml")
    return api.load(root / "segments.yaml")


def remote_files(patch: pytest.MonkeyPatch) -> None:
    """Make `file://` URIs name a Remote on fsspec's local file system, so that the code
    segcli runs for an object store (moves as copies, no fsync, the lock as a conditional
    create) runs here against a place Spark can also write to."""
    import fsspec

    real = storage.location

    def location(text: str | Path) -> storage.Loc:
        if isinstance(text, str) and text.startswith("file://"):
            return Remote(fsspec.filesystem("file"), text.removeprefix("file://"), "file")
        return real(text)

    patch.setattr(storage, "location", location)


@dataclass
class DemoRuns:
    """Runs of the demo on Polars and on Spark: every file they wrote, keyed by the run's
    as_of (outputs) or position (state), their last results, and what Spark collected."""

    want: dict[str, pl.DataFrame]
    got: dict[str, pl.DataFrame]
    polars_run: Any
    spark_run: Any
    collected: list[list[str]]
    project: api.Project


def demo_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dates: list[str],
    master: str | None = None,
    uris: bool = False,
) -> DemoRuns:
    """The demo run at each of `dates` on Polars, then on Spark (at `master`) with the
    collecting `execute` forbidden and every Arrow collection recorded; asserts that both
    wrote the same files, equal file by file, and the same run summaries. With `uris`, the
    Spark runs name their state and outputs by `file://` URIs that segcli treats as an
    object store's (through fsspec, no renames: `remote_files`), as `--state s3a://…`
    would be."""
    collected: list[list[str]] = []
    real = spark_engine.to_arrow

    def to_arrow(df: Any) -> Any:
        table = real(df)
        collected.append(table.column_names)
        return table

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a run must not collect the per-contact result")

    found = {}
    for engine in ("polars", "spark"):
        root = tmp_path / engine
        project = _demo(root)
        frames = {}
        with monkeypatch.context() as patch:
            if engine == "spark":
                patch.setattr(spark_engine, "to_arrow", to_arrow)
                patch.setattr(spark_engine, "execute", forbidden)
            where: dict[str, str] = {}
            if engine == "spark" and uris:
                remote_files(patch)
                where = {"state_dir": f"file://{root}/.segcli", "out_dir": f"file://{root}/out"}
            for at in dates:
                result = api.run(
                    project, as_of=at, engine=engine, actions=False, spark_master=master, **where
                )
                if where:
                    assert str(result.out_dir) == where["out_dir"]
                frames.update({f"{at}/{k}": v for k, v in _frames(root / "out").items()})
        manifest = json.loads((root / ".segcli" / "manifest.json").read_text())
        order = [r["run_id"] for r in manifest["runs"]]
        frames.update(_by_order(_frames(root / ".segcli"), order))
        found[engine] = (frames, result)
    (want, polars_run), (got, spark_run) = found["polars"], found["spark"]
    assert sorted(want) == sorted(got)
    assert any(k.startswith(f"runs/{len(dates) - 1}/") for k in want)  # every run compared
    for name in want:
        _same(want[name], got[name], name)
    assert [s.summary() for s in spark_run.segments] == [s.summary() for s in polars_run.segments]
    assert spark_run.memberships is None and spark_run.scores is None
    return DemoRuns(want, got, polars_run, spark_run, collected, project)


def test_a_run_never_brings_members_to_the_driver(
    tmp_path: Path, spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Arrow collection and the collecting `execute` forbidden, three runs of the
    demo on Spark write what the Polars engine writes, file by file: members, changes,
    scores, state snapshots (the semi_dynamic and static segments carry members; segments
    whose history `ever` / `member_for` / `left` reads carry their summary) and the stored
    values of `ever: true` columns (computed and written by Spark too). The driver
    collected only the changes it delivers."""
    runs = demo_runs(tmp_path, monkeypatch, ["2026-11-06", "2026-11-13", "2026-11-20"])
    assert any("+field-" in k for k in runs.want)  # the stored `ever` values compared
    assert any("left_at" in f.columns for f in runs.want.values())  # and a history summary
    key = runs.project.spec.contacts.key
    changes = [c for c in runs.collected if "change" in c]
    assert changes and changes == runs.collected
    assert all(key in c for c in changes)
    acting = [s for s in runs.project.spec.segments.values() if s.on_enter or s.on_leave]
    assert acting  # the demo has actions: their changes were collected
    delivered = {d.id: d.contacts for d in runs.spark_run.deliveries}
    assert delivered == {d.id: d.contacts for d in runs.polars_run.deliveries}


def test_spark_writes_state_and_outputs_at_a_uri(
    tmp_path: Path, spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--state` and `--out` as URIs on Spark (SPEC §3.1): Spark writes every snapshot,
    member file and change file into the URI itself and reads the previous snapshots from
    there; segcli moves Spark's part files by the store's own moves (no rename), and two
    runs write exactly what Polars writes on local folders."""
    moves: list[str] = []
    real = storage.replace

    def replace(src: storage.Loc, dst: storage.Loc) -> None:
        if isinstance(dst, Path):  # a rename: only the Polars runs on local folders
            assert "spark" not in dst.parts, dst
        else:
            moves.append(dst.name)
        real(src, dst)

    monkeypatch.setattr(storage, "replace", replace)
    folders: list[str] = []
    mkdtemp = tempfile.mkdtemp

    def recorded(*args: Any, **kwargs: Any) -> Any:
        folders.append(str(kwargs.get("prefix")))
        return mkdtemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", recorded)
    runs = demo_runs(tmp_path, monkeypatch, ["2026-11-13", "2026-11-20"], uris=True)
    assert "mql.parquet" in moves and "scores.parquet" in moves and "run.json" in moves
    # The history inputs (the demo reads `ever`, `member_for` and stored values) went to
    # Spark as Arrow, not as scratch Parquet files in a temporary folder of the driver's.
    assert any("left_at" in f.columns for f in runs.want.values())
    assert set(folders) <= {"segcli-cache-"}, folders


def _hand(tmp_path: Path) -> api.Project:
    spec = HAND_SOURCES + "segments:\n  keep: {kind: semi_dynamic, where: {field: age, gte: 30}}\n"
    cfg = write_project(tmp_path, spec, {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL})
    return api.load(cfg)


def test_csv_outputs_on_spark_are_a_usage_error(tmp_path: Path) -> None:
    """Spark writes Parquet: `--format csv` with the spark engine is exit 2, before
    anything starts (no Spark needed)."""
    with pytest.raises(UsageError, match="--format parquet"):
        api.run(_hand(tmp_path), as_of=HAND_AS_OF, engine="spark", fmt="csv")


def test_a_corrupt_snapshot_is_a_state_error_on_spark(tmp_path: Path, spark: Any) -> None:
    """The previous snapshot Spark would read is checked first: a state error (exit 4)
    naming it, not a Spark failure."""
    project = _hand(tmp_path)
    api.run(project, as_of=HAND_AS_OF, engine="spark")
    snapshots = list((tmp_path / ".segcli" / "runs").rglob("keep.parquet"))
    assert len(snapshots) == 1
    snapshots[0].write_bytes(b"not parquet")
    with pytest.raises(StateError, match=r"keep\.parquet is missing or corrupt"):
        api.run(project, as_of=HAND_AS_OF, engine="spark")


def test_a_failed_spark_write_leaves_outputs_and_state_as_they_were(
    tmp_path: Path, spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark failing while it writes (here: a row raises an error, as a full disk would)
    is a write error; out/ and the state keep the last committed run, the staging folder is
    gone, and the next run works."""
    from pyspark.sql import functions as F

    project = _hand(tmp_path)
    first = api.run(project, as_of=HAND_AS_OF, engine="spark")
    before = _frames(tmp_path / "out")
    manifest = (tmp_path / ".segcli" / "manifest.json").read_text()

    def blocked(self: spark_state.Batch) -> None:
        self.df = self.df.withColumn("boom", F.expr("raise_error('no space left')"))
        real(self)

    real = spark_state.Batch.write_all
    monkeypatch.setattr(spark_state.Batch, "write_all", blocked)
    with pytest.raises(WriteError, match="no space left"):
        api.run(project, as_of=HAND_AS_OF, engine="spark")
    monkeypatch.undo()
    assert not list((tmp_path / "out").glob(".segcli-stage-*"))
    after = _frames(tmp_path / "out")
    assert sorted(after) == sorted(before)
    for name in before:
        _same(before[name], after[name], name)
    assert (tmp_path / ".segcli" / "manifest.json").read_text() == manifest
    again = api.run(project, as_of=HAND_AS_OF, engine="spark")
    assert [s.size for s in again.segments] == [s.size for s in first.segments]


def test_stored_values_on_spark_restart_when_the_column_changes_type(tmp_path: Path) -> None:
    """The `ever: true` values Spark stores mean what the Polars engine stores: kept with
    the first run that saw each (contact, value), and restarted, with the same note, when
    the column's type changes between runs (text, then numbers)."""
    leaf = "}}\nsegments:\n  was: {where: {field: stage, ne: %s, ever: true}}"
    specs = {
        "text": "columns: {stage: str" + leaf % "'9'",
        "number": "columns: {stage: int" + leaf % 9,
    }
    runs = [("text", "2026-11-01", "1"), ("text", "2026-11-08", "2"), ("number", "2026-11-15", "3")]
    found = {}
    for engine in ("polars", "spark"):
        root = tmp_path / engine
        root.mkdir()
        notes = []
        for kind, at, stage in runs:
            (root / "segments.yaml").write_text(
                "version: 1\ntimezone: UTC\nsources:\n  contacts: {path: contacts.csv, "
                f"key: contact_id, {specs[kind]}\n"
            )
            rows = [f"{k},{stage if k % 2 else 5}" for k in range(1, 7)]
            (root / "contacts.csv").write_text("contact_id,stage\n" + "\n".join(rows) + "\n")
            result = api.run(api.load(root / "segments.yaml"), as_of=at, engine=engine)
            notes += [w for w in result.warnings if "changed type" in w]
        manifest = json.loads((root / ".segcli" / "manifest.json").read_text())
        order = [r["run_id"] for r in manifest["runs"]]
        files = _by_order(_frames(root / ".segcli"), order)
        found[engine] = ({k: v for k, v in files.items() if "+field-" in k}, notes)
    (want, want_notes), (got, got_notes) = found["polars"], found["spark"]
    assert want_notes == got_notes and len(want_notes) == 1
    assert sorted(want) == sorted(got) and len(want) == 3
    for name in want:
        _same(want[name], got[name], name)
    last = want[max(want)]
    assert last["value"].dtype == pl.Int64 and last["first_at"].n_unique() == 1  # restarted
    second = want[sorted(want)[1]]
    assert second.height == 6 + 3  # three contacts' stage changed: both values kept
