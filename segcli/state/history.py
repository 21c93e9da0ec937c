"""What the state knows of the past, for the history leaves of SPEC §2.6.

Segment history. The snapshot of a segment that a history option refers to carries a summary
of every committed run before it: the columns `ever` (a member at some committed run) and
`left_at` (the as_of of the last run that recorded the contact's `left` change), with a row
for every contact that was ever a member (ex-members have member = base = false). Carried
from snapshot to snapshot, the summary outlives `keep_runs` pruning. A snapshot without it
(the segment was not referred to by a history option at that run, or an older segcli wrote
it) is summarised from the snapshots the state still keeps.

Property history. For every per-contact column an `ever` field leaf reads, the run stores
the distinct (contact, value) pairs seen at committed runs with the as_of of the first run
that saw each (`first_at`), carried forward in one file per column (`+field-N.parquet` in the
run's folder, named in the manifest's `fields`, with `since`: the first run that stored it).

Time travel (a dry run at an as_of before the last committed run): only committed runs at or
before that as_of count (the latest such snapshot's summary; stored values first seen then).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from segcli import storage
from segcli.engines.history import HIST_KEY, Histories
from segcli.errors import StateError
from segcli.state.store import Manifest, StateDir

UTC_DT = pl.Datetime("us", "UTC")
SUMMARY = ("ever", "left_at")


def segment_history(
    state: StateDir, manifest: Manifest, name: str, key: str, at: datetime
) -> pl.DataFrame:
    """key, member, joined, ever, left of segment NAME after the last committed run at or
    before `at` that computed it (no rows when there is none)."""
    runs = [
        r
        for r in manifest.runs
        if name in r["segments"] and datetime.fromisoformat(r["as_of"]) <= at
    ]
    latest = runs[-1] if runs else None
    snap = _snapshot(state, latest, name, key) if latest else None
    if snap is not None and all(c in snap.columns for c in SUMMARY):
        return snap.select(
            key,
            pl.col("member").alias("member"),
            pl.when(pl.col("member")).then(pl.col("joined_at")).alias("joined"),
            (pl.col("ever") | pl.col("member")).alias("ever"),
            pl.col("left_at").cast(UTC_DT).alias("left"),
        )
    return _summarise(state, runs, name, key)


def _snapshot(
    state: StateDir, run: dict[str, Any] | None, name: str, key: str
) -> pl.DataFrame | None:
    if run is None:
        return None
    rel = f"runs/{run['run_id']}/{name}.parquet"
    if not (state.path / rel).exists():  # pruned: its summary went with it
        return None
    return state.read_snapshot(rel, key)


def _summarise(state: StateDir, runs: list[dict[str, Any]], name: str, key: str) -> pl.DataFrame:
    """The summary of NAME's kept snapshots (oldest first): who was ever a member, when each
    last left (a member of one kept snapshot missing from the next), the last one's stays."""
    ever: pl.DataFrame | None = None
    left: pl.DataFrame | None = None
    members: pl.DataFrame | None = None
    for r in runs:
        snap = _snapshot(state, r, name, key)
        if snap is None:
            continue
        now = snap.filter(pl.col("member")).select(key, pl.col("joined_at").cast(UTC_DT))
        if members is not None:
            gone = members.select(key).join(now, on=key, how="anti")
            at = datetime.fromisoformat(r["as_of"])
            gone = gone.with_columns(pl.lit(at).cast(UTC_DT).alias("left"))
            left = gone if left is None else pl.concat([left, gone]).unique(key, keep="last")
            now = now.with_columns(pl.col(key).cast(members[key].dtype, strict=False))
        ever = now.select(key) if ever is None else pl.concat([ever, now.select(key)]).unique()
        members = now
    if members is None or ever is None:
        return pl.DataFrame(
            schema={
                key: pl.String,
                "member": pl.Boolean,
                "joined": UTC_DT,
                "ever": pl.Boolean,
                "left": UTC_DT,
            }
        )
    out = ever.with_columns(pl.lit(True).alias("ever"))
    out = out.join(
        members.select(key, pl.lit(True).alias("member"), pl.col("joined_at").alias("joined")),
        on=key,
        how="left",
    )
    if left is not None:
        out = out.join(left, on=key, how="left")
    else:
        out = out.with_columns(pl.lit(None, dtype=UTC_DT).alias("left"))
    return out.select(
        key, pl.col("member").fill_null(False), "joined", "ever", pl.col("left").cast(UTC_DT)
    )


def with_summary(
    snap: pl.DataFrame,
    history: pl.DataFrame | None,
    changes: pl.DataFrame,
    key: str,
    at: datetime,
) -> pl.DataFrame:
    """A new snapshot with the summary carried: `history` is what the run read (the summary
    before it), `changes` this run's entered/left changes."""
    dtype = snap[key].dtype
    past = pl.DataFrame(schema={key: dtype, "ever": pl.Boolean, "left_at": UTC_DT})
    if history is not None and history.height:
        past = history.select(
            pl.col(key).cast(dtype, strict=False),
            (pl.col("ever") | pl.col("member")).fill_null(False).alias("ever"),
            pl.col("left").cast(UTC_DT).alias("left_at"),
        ).filter(pl.col("ever") | pl.col("left_at").is_not_null())
    gone = changes.filter(pl.col("change") == "left")[key].cast(dtype).implode()
    out = snap.join(past, on=key, how="full", coalesce=True).with_columns(
        pl.col("member").fill_null(False),
        pl.col("base").fill_null(False),
    )
    out = out.with_columns(
        (pl.col("member") | pl.col("ever").fill_null(False)).alias("ever"),
        pl.when(pl.col(key).is_in(gone))
        .then(pl.lit(at).cast(UTC_DT))
        .otherwise(pl.col("left_at"))
        .alias("left_at"),
    )
    return out.select(key, "joined_at", "source", "member", "base", *SUMMARY).sort(key)


# ---------------------------------------------------------------- property history


def stored_values(
    state: StateDir, manifest: Manifest, column: str, key: str, at: datetime
) -> tuple[pl.DataFrame | None, datetime | None]:
    """The values of `column` stored at committed runs at or before `at` (key, value,
    first_at), and since when the column is stored (None, None: not stored)."""
    entry = manifest.fields.get(column)
    if entry is None:
        return None, None
    since = datetime.fromisoformat(entry["since"])
    if since > at:
        return None, None
    path = state.path / entry["snapshot"]
    try:
        with storage.source(path) as where:
            frame = pl.read_parquet(where)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise StateError(f"state file {path} is missing or corrupt ({exc})") from exc
    missing = [c for c in (key, "value", "first_at") if c not in frame.columns]
    if missing:
        raise StateError(f"state file {path} is corrupt (no column {', '.join(missing)})")
    return frame.filter(pl.col("first_at") <= pl.lit(at).cast(UTC_DT)), since


def as_engine_input(frame: pl.DataFrame, column: str, key: str) -> pl.DataFrame:
    """Stored values as the engine takes them: HIST_KEY and the column."""
    return frame.select(pl.col(key).alias(HIST_KEY), pl.col("value").alias(column))


def next_values(
    stored: pl.DataFrame | None, current: pl.DataFrame, column: str, key: str, at: datetime
) -> tuple[pl.DataFrame, bool]:
    """The values to store after this run: the stored ones plus this run's (key, value),
    each pair once with the first run that saw it; and whether the stored ones were kept
    (False when the column's type changed: its history restarts)."""
    now = current.select(
        key, pl.col(column).alias("value"), pl.lit(at).cast(UTC_DT).alias("first_at")
    )
    if stored is None:
        return now.unique([key, "value"], keep="first").sort(key), True
    if stored["value"].dtype != now["value"].dtype and stored.height:
        return now.unique([key, "value"], keep="first").sort(key), False
    both = pl.concat([stored.with_columns(pl.col(key).cast(now[key].dtype, strict=False)), now])
    both = both.with_columns(pl.col("value").cast(now["value"].dtype))
    kept = both.sort("first_at").unique([key, "value"], keep="first", maintain_order=True)
    return kept.sort(key, "first_at"), True


# ---------------------------------------------------------------- what a run reads and writes


@dataclass
class Past:
    """What a run read of the past: the engines' inputs, each segment's summary (to carry
    into its new snapshot) and each column's stored values with since when they are kept."""

    inputs: Histories
    segments: dict[str, pl.DataFrame]
    stored: dict[str, tuple[pl.DataFrame, datetime]]

    def to_store(
        self, current: dict[str, pl.DataFrame], key: str, at: datetime
    ) -> tuple[dict[str, tuple[pl.DataFrame, str]], list[str]]:
        """Per column: the values to store after this run (`current`: key and this run's
        value) and since when; plus notes for columns whose history restarts."""
        out: dict[str, tuple[pl.DataFrame, str]] = {}
        notes: list[str] = []
        for column, now in current.items():
            old, since = self.stored.get(column, (None, at))
            frame, kept = next_values(old, now, column, key, at)
            if not kept:
                notes.append(
                    f"column '{column}' changed type: its stored history (ever: true) "
                    "restarts with this run"
                )
                since = at
            out[column] = (frame, since.isoformat())
        return out, notes


def _restarts(stored: pl.DataFrame, now: pl.DataType | None) -> bool:
    """Whether stored values no longer match their column's type (as `next_values` judges)."""
    return now is not None and stored.height > 0 and stored["value"].dtype != now


def read_past(
    state: StateDir,
    manifest: Manifest,
    key: str,
    segments: list[str],
    columns: list[str],
    at: datetime,
    types: dict[str, pl.DataType | None] | None = None,
) -> Past:
    """The history of `segments` and the stored values of `columns` as of `at`. `types`:
    each column's type now; stored values of another type are not the engines' input (the
    column's history restarts with this run: `next_values`), so no leaf compares them."""
    seg = {n: segment_history(state, manifest, n, key, at) for n in segments}
    stored: dict[str, tuple[pl.DataFrame, datetime]] = {}
    for c in columns:
        frame, since = stored_values(state, manifest, c, key, at)
        if frame is not None and since is not None:
            stored[c] = (frame, since)
    inputs = Histories(
        segments=seg,
        fields={
            c: as_engine_input(f, c, key)
            for c, (f, _) in stored.items()
            if not _restarts(f, (types or {}).get(c))
        },
    )
    return Past(inputs, seg, stored)
