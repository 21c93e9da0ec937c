"""Write a run's outputs: segment membership files, scores and run.json.

A run writes its outputs into a staging folder inside the output directory
(`.segcli-stage-<run_id>/`), commits the state, and only then moves each staged file into
place. A run that fails or is killed before its commit leaves the output directory exactly as
the last committed run left it (its staging folder is removed by the next run); one killed
between its commit and the move is finished by the next run (`publish_pending`).
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl

from segcli import storage
from segcli.fs import (
    EngineFrame,
    atomic_path,
    atomic_write_bytes,
    claim_dir,
    fsync_all,
    write_error,
)
from segcli.storage import Loc, Remote

OUT_MARKER = ".segcli-out"
STAGE_PREFIX = ".segcli-stage-"
_STAGE = re.compile(re.escape(STAGE_PREFIX) + r"[0-9a-f]{12}")


def claim_out(out_dir: Loc, create: bool = True) -> None:
    """Refuse (exit 4) an output directory holding files segcli did not write; mark a new or
    empty one as segcli's (with `create` false: only check)."""
    claim_dir(out_dir, OUT_MARKER, "output directory", _legacy_out, create)


def _legacy_out(path: Loc) -> bool:
    """An output directory written before the marker: it holds a segcli run.json."""
    try:
        data = json.loads((path / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "segcli_version" in data and "run_id" in data


def stage_dir(out_dir: Loc, run_id: str) -> Loc:
    """Where run `run_id` writes its outputs before they are moved into place."""
    return out_dir / f"{STAGE_PREFIX}{run_id}"


def committed_file(out_dir: Loc, run_id: str, rel: str) -> Loc:
    """Where a committed run's output file is now: in place, or still in its staging folder
    when the run was killed between its commit and moving its files (until the next run)."""
    staged = stage_dir(out_dir, run_id) / rel
    return staged if staged.is_file() else out_dir / rel


def publish(out_dir: Loc, run_id: str, files: list[str]) -> None:
    """Move a committed run's staged files into place (run.json last), then remove the
    staging folder. Each move is a rename, so a reader sees the old file or the new one (on
    an object store, a copy: each file is still whole, but a reader may see some files of
    the new run beside others of the old one until run.json, the last, names the new run)."""
    stage = stage_dir(out_dir, run_id)
    if not stage.is_dir():
        return
    try:
        for rel in sorted(files, key=lambda r: r == "run.json"):
            src = stage / rel
            if src.is_file():
                (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                storage.replace(src, out_dir / rel)
    except OSError as exc:
        raise write_error(exc, "move the run's outputs into", out_dir) from exc
    storage.rmtree(stage)


def publish_pending(record: dict[str, Any]) -> None:
    """Finish moving the last committed run's outputs when it was killed before it could."""
    out_dir, files = record.get("out_dir"), record.get("files")
    if isinstance(out_dir, str) and isinstance(files, list):
        publish(storage.location(out_dir), record["run_id"], files)


def discard_stages(out_dir: Loc) -> None:
    """Remove staging folders of runs that never committed (failed or killed)."""
    if not out_dir.is_dir():
        return
    for child in out_dir.iterdir():
        if _STAGE.fullmatch(child.name) and child.is_dir():
            storage.rmtree(child)


def remove_stray_temps(out_dir: Loc) -> None:
    """Remove the temporary files (`.NAME.tmp-PID`) that killed runs left in an output
    directory: those whose process is gone (an object store has none: no temporary files
    are written there)."""
    if isinstance(out_dir, Remote):
        return
    for folder in (out_dir, out_dir / "segments", out_dir / "changes"):
        for tmp in folder.glob(".*.tmp-*") if folder.is_dir() else ():
            pid = tmp.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                tmp.unlink(missing_ok=True)
            except PermissionError:
                pass


def write_frame(df: pl.DataFrame | EngineFrame, path: Loc, fmt: str, sync: bool = True) -> Loc:
    """Write `df` as Parquet or CSV to `path` + the format's extension, atomically; a failure
    is a WriteError naming the file (a full disk says "no space left"). An EngineFrame
    writes itself (Parquet only). With `sync` false the caller makes the file durable
    (`write_frames` does, for all of a run's files at once)."""
    # Appended, not with_suffix: a segment named `v1.2` must not become `v1.parquet`.
    path = path.with_name(f"{path.name}.{'csv' if fmt == 'csv' else 'parquet'}")
    try:
        with atomic_path(path, sync) as tmp:
            if not isinstance(df, pl.DataFrame):
                df.write(tmp)
            else:
                with storage.sink(tmp) as into:
                    if fmt == "csv":
                        iso_timestamps(df).write_csv(into)
                    else:
                        df.write_parquet(into, compression="lz4")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise write_error(exc, "write", path) from exc
    return path


def iso_timestamps(df: pl.DataFrame) -> pl.DataFrame:
    """Time-zone-aware columns as ISO 8601 text with a `+00:00` offset (as Python and
    run.json write them), where Polars' CSV writer would give `+0000`."""
    aware = [c for c, t in df.schema.items() if isinstance(t, pl.Datetime) and t.time_zone]
    return df.with_columns(pl.col(c).dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z") for c in aware)


def write_frames(jobs: list[tuple[pl.DataFrame | EngineFrame, Loc]], fmt: str) -> list[Loc]:
    """Write several frames into a run's staging folder on a small thread pool (Polars
    encodes and compresses outside the GIL, so the files are written side by side), then
    make them and their folders durable in one step (`fsync_all`), before the commit can
    name them: the same guarantee as an fsync after each file, for much less waiting."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(4, len(jobs))) as pool:
        written = list(pool.map(lambda job: write_frame(job[0], job[1], fmt, sync=False), jobs))
    folders = {f.parent for f in written} | {f.parent.parent for f in written}
    try:
        fsync_all(written, sorted(folders, key=str))
    except OSError as exc:
        raise write_error(exc, "write", exc.filename or written[0]) from exc
    return written


def write_json(path: Loc, data: dict[str, Any]) -> None:
    """Write JSON atomically, pretty-printed; a failure is a WriteError naming the file."""
    try:
        atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())
    except OSError as exc:
        raise write_error(exc, "write", path) from exc
