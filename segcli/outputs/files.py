"""Write a run's outputs: segment membership files, scores and run.json (each atomically)."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from segcli.fs import atomic_path, atomic_write_bytes


def remove_stray_temps(out_dir: Path) -> None:
    """Remove the temporary files (`.NAME.tmp-PID`) that killed runs left in an output
    directory: those whose process is gone."""
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


def write_frame(df: pl.DataFrame, path: Path, fmt: str) -> Path:
    """Write `df` as Parquet or CSV to `path` + the format's extension, atomically."""
    # Appended, not with_suffix: a segment named `v1.2` must not become `v1.parquet`.
    path = path.with_name(f"{path.name}.{'csv' if fmt == 'csv' else 'parquet'}")
    with atomic_path(path) as tmp:
        if fmt == "csv":
            df.write_csv(tmp)
        else:
            df.write_parquet(tmp, compression="lz4")
    return path


def write_frames(jobs: list[tuple[pl.DataFrame, Path]], fmt: str) -> list[Path]:
    """Write several frames (each atomically) on a small thread pool: Polars encodes and
    compresses outside the GIL, so the files are written side by side."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(4, len(jobs))) as pool:
        return list(pool.map(lambda job: write_frame(job[0], job[1], fmt), jobs))


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically, pretty-printed."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())
