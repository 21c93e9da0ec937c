"""Durability of a run's files (docs/semantics.md, "Runs and state"): every snapshot, outbox
payload and staged output file, and the folders naming them, is fsynced before the manifest
is replaced (the commit point), even though the fsyncs now happen all at once
(`fs.fsync_all`) rather than after each file; and the nightly read of every previous
snapshot in one Polars call gives what one read per file gives, errors naming the file."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from segcli import fs, storage
from segcli.errors import StateError, WriteError
from segcli.outputs.files import write_frames
from segcli.state import outbox
from segcli.state.store import StateDir
from tests.faults.common import assert_clean, invoke, tree
from tests.test_state import run, small_project


class Journal:
    """Records, in order, every file and folder fsynced through segcli.fs and every rename."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        real_file, real_dir, real_replace = fs._fsync_path, fs.fsync_dir, os.replace

        def fsync_file(path: Path) -> None:
            real_file(path)
            self.note("file", path)

        def fsync_dir(path: Any) -> None:
            real_dir(path)
            self.note("dir", path)

        def replace(src: Any, dst: Any) -> None:
            real_replace(src, dst)
            self.note("replace", dst)

        monkeypatch.setattr(fs, "_fsync_path", fsync_file)
        monkeypatch.setattr(fs, "fsync_dir", fsync_dir)
        monkeypatch.setattr(os, "replace", replace)

    def note(self, what: str, path: Any) -> None:
        with self.lock:
            self.events.append((what, str(Path(path).resolve())))

    def synced_before(self, what: str, target: Path) -> set[str]:
        """Paths of kind `what` fsynced before the last rename onto `target`."""
        end = max(i for i, e in enumerate(self.events) if e == ("replace", str(target.resolve())))
        return {p for w, p in self.events[:end] if w == what}


def test_every_file_is_fsynced_before_the_manifest_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = small_project(tmp_path)
    run(cfg, "2026-03-01")
    journal = Journal(monkeypatch)
    result = run(cfg, "2026-03-02")
    monkeypatch.undo()
    state, out = tmp_path / ".segcli", tmp_path / "out"
    files = journal.synced_before("file", state / "manifest.json")
    folders = journal.synced_before("dir", state / "manifest.json")
    # The run's snapshots, written under the run folder's temporary name, then renamed.
    tmp_run = state / "runs" / f".tmp-{result.run_id}"
    snapshots = sorted((state / "runs" / result.run_id).glob("*.parquet"))
    assert len(snapshots) == 5
    assert {str(tmp_run.resolve() / p.name) for p in snapshots} <= files
    assert str(tmp_run.resolve()) in folders
    # The outputs, staged before the commit and moved into place after it.
    stage = out / f".segcli-stage-{result.run_id}"
    staged = [stage / storage.relative(f, out) for f in result.files if f.name != "run.json"]
    assert len(staged) == 2 * 5  # members and changes per segment
    assert {str(p.resolve()) for p in staged} <= files
    assert {str(p.resolve()) for p in (stage, stage / "segments", stage / "changes")} <= folders


def test_outbox_payloads_are_fsynced_before_their_folder_is_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(monkeypatch)
    frames = {f"s{i}.entered.parquet": pl.DataFrame({"contact_id": [i]}) for i in range(3)}
    outbox.write_payloads(tmp_path, "0123456789ab", frames)
    monkeypatch.undo()
    tmp = (tmp_path / "outbox" / ".tmp-0123456789ab").resolve()
    final = tmp_path / "outbox" / "0123456789ab"
    assert {str(tmp / n) for n in frames} <= journal.synced_before("file", final)
    assert str(tmp) in journal.synced_before("dir", final)
    assert sorted(p.name for p in final.iterdir()) == sorted(frames)


def test_fsync_all_names_the_file_it_could_not_flush(tmp_path: Path) -> None:
    written = [tmp_path / f"f{i}" for i in range(5)]
    for p in written:
        p.write_bytes(b"x")
    fs.fsync_all(written, [tmp_path])
    gone = tmp_path / "gone"
    with pytest.raises(FileNotFoundError) as caught:
        fs.fsync_all([*written, gone])
    assert caught.value.filename == str(gone)
    # An object store has nothing to flush: a remote place is skipped, even a missing one.
    fs.fsync_all([storage.location("memory://durable-test/nothing-here")])


def test_a_failed_fsync_of_an_output_is_a_write_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(path: Path) -> None:
        if path.name == "b.parquet":
            raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(fs, "_fsync_path", failing)
    jobs: list[tuple[Any, Any]] = [
        (pl.DataFrame({"k": [1]}), tmp_path / "stage" / "segments" / n) for n in "abc"
    ]
    with pytest.raises(WriteError) as caught:
        write_frames(jobs, "parquet")
    assert str(tmp_path / "stage" / "segments" / "b.parquet") in str(caught.value)
    assert "input/output error" in str(caught.value)


@pytest.mark.parametrize("where", ["output", "snapshot"])
def test_a_failed_fsync_leaves_out_and_state_as_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """An fsync that fails (a disk error) before the commit: exit 4, and out/ and the
    state exactly as the last committed run left them."""
    cfg = small_project(tmp_path)
    assert_clean(invoke(["run", "-c", str(cfg), "--as-of", "2026-03-01"], tmp_path), 0)
    before = {"out": tree(tmp_path / "out"), "state": tree(tmp_path / ".segcli")}
    real = fs._fsync_path
    marker = ".segcli-stage-" if where == "output" else f"{os.sep}.tmp-"

    def failing(path: Path) -> None:
        if marker in str(path):
            raise OSError(errno.EIO, "Input/output error", str(path))
        real(path)

    monkeypatch.setattr(fs, "_fsync_path", failing)
    res = invoke(["run", "-c", str(cfg), "--as-of", "2026-03-02"], tmp_path)
    monkeypatch.undo()
    assert_clean(res, 4, "input/output error")
    assert {"out": tree(tmp_path / "out"), "state": tree(tmp_path / ".segcli")} == before
    assert_clean(invoke(["run", "-c", str(cfg), "--as-of", "2026-03-02"], tmp_path), 0)


def _state_with_snapshots(root: Path) -> tuple[StateDir, list[str]]:
    """A state folder holding snapshots of two shapes (with and without history columns)."""
    at = pl.datetime(2026, 3, 1, time_zone="UTC")
    plain = pl.DataFrame({"contact_id": [3, 1], "source": ["rule", "include"]}).with_columns(
        joined_at=at, member=True, base=pl.Series([True, False])
    )
    rels = []
    for i in range(4):
        frame = plain.head(i % 2 + 1)
        if i % 2:
            frame = frame.with_columns(ever=True, left_at=pl.lit(None, pl.Datetime("us", "UTC")))
        rel = f"runs/0123456789ab/s{i}.parquet"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(root / rel, compression="lz4")
        rels.append(rel)
    return StateDir(root), rels


def test_snapshots_read_together_equal_snapshots_read_one_by_one(tmp_path: Path) -> None:
    state, rels = _state_with_snapshots(tmp_path)
    together = state.read_snapshots(rels, "contact_id")
    alone = [state.read_snapshot(rel, "contact_id") for rel in rels]
    assert len(together) == len(alone) == 4
    for a, b in zip(together, alone, strict=True):
        assert a.schema == b.schema and a.equals(b)
    assert "ever" in together[1].columns and "ever" not in together[0].columns


@pytest.mark.parametrize("problem", ["missing", "truncated", "lacks a column"])
def test_snapshots_read_together_name_the_bad_file(tmp_path: Path, problem: str) -> None:
    state, rels = _state_with_snapshots(tmp_path)
    bad = tmp_path / rels[2]
    if problem == "missing":
        bad.unlink()
    elif problem == "truncated":
        bad.write_bytes(bad.read_bytes()[:20])
    else:
        pl.DataFrame({"contact_id": [1]}).write_parquet(bad)
    with pytest.raises(StateError) as caught:
        state.read_snapshots(rels, "contact_id")
    assert str(bad) in str(caught.value)
    assert ("lacks column(s)" if problem == "lacks a column" else "missing or corrupt") in str(
        caught.value
    )


def test_a_nightly_run_reads_the_previous_snapshots_in_one_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = small_project(tmp_path)
    run(cfg, "2026-03-01")
    calls: list[int] = []
    real = pl.collect_all

    def counting(frames: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(list(frames)))
        return real(frames, *args, **kwargs)

    monkeypatch.setattr(pl, "collect_all", counting)
    ran = StateDir.read_snapshot
    single: list[str] = []
    monkeypatch.setattr(
        StateDir, "read_snapshot", lambda self, rel, key: single.append(rel) or ran(self, rel, key)
    )
    run(cfg, "2026-03-02")
    monkeypatch.undo()
    manifest = json.loads((tmp_path / ".segcli" / "manifest.json").read_text())
    assert 5 in calls and not single
    assert len(manifest["runs"]) == 2
