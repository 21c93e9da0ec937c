"""The shapes of the benchmark's data: the same generated rows, laid out as exports arrive.

`segcli sample --format parquet` writes the rows once into WORKDIR/base. Each shape is derived
from them into WORKDIR/shapes/NAME/data, with the source paths that spec.yaml and the SQL
read (`source_paths`):

- parquet-arrival: one Parquet file per source, rows in arrival order (a seeded shuffle, so
  row groups span the whole time range and a window prunes nothing);
- parquet-daily:   one Parquet part per UTC day, rows sorted by time;
- csvgz-daily:     one `.csv.gz` part per UTC day, rows sorted by time;
- csv-arrival:     one plain `.csv` per source, arrival order;
- parquet-skewed:  as parquet-arrival, but 60% of the rows moved to 100 hot contacts (the
  hottest holds ~13% of all rows), beside the generator's own, flatter spread.

Contacts follow the shape's format. CSV timestamps are ISO 8601 in UTC (`...T...Z`). The
generator's naive timestamps (contacts.created_at, local time in the spec's timezone) are
written as segcli reads the Parquet ones: local time, a time in the DST gap null. Written
naive, such a value is an error in a CSV but null in Parquet (segcli at 514a1e7).

DuckDB does the two sorts (it spills to disk under a memory limit); the daily split streams the
time-sorted file batch by batch, so memory stays flat at any size. Only the standard library
is imported at module level (bench.py's DuckDB worker imports this module).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENT_TABLES = ("email_events", "web_events")
HOT_CONTACTS = 100
HOT_SHARE = 0.6  # of the rows in the skewed shape
UTC_FORMAT = "%Y-%m-%dT%H:%M:%S%.6fZ"
LOCAL_TIMEZONE = "Europe/Berlin"  # spec.yaml's timezone: naive timestamps are local time
BATCH_ROWS = 1_000_000


@dataclass(frozen=True)
class Shape:
    """One layout of the same rows."""

    name: str
    description: str
    ext: str  # parquet, csv or csv.gz
    daily: bool  # one part per UTC day (time-sorted), else one file per source
    skewed: bool = False

    @property
    def csv(self) -> bool:
        return self.ext != "parquet"

    def source_paths(self) -> dict[str, str]:
        """Paths (relative to the shape's directory) of contacts and the two event tables."""
        paths = {"contacts": f"data/contacts.{self.ext}"}
        for table in EVENT_TABLES:
            paths[table] = (
                f"data/{table}/*.{self.ext}" if self.daily else f"data/{table}.{self.ext}"
            )
        return paths


SHAPES = {
    s.name: s
    for s in (
        Shape("parquet-arrival", "one Parquet file per source, arrival order", "parquet", False),
        Shape("parquet-daily", "daily Parquet parts, time-sorted", "parquet", True),
        Shape("csvgz-daily", "daily .csv.gz parts, time-sorted", "csv.gz", True),
        Shape("csv-arrival", "one .csv per source, arrival order", "csv", False),
        Shape(
            "parquet-skewed",
            f"one Parquet file per source, arrival order, {HOT_SHARE:.0%} of rows on "
            f"{HOT_CONTACTS} contacts",
            "parquet",
            False,
            skewed=True,
        ),
    )
}


def code_digest() -> str:
    """A changed derivation (this file) means different shapes."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def prepare_shape(base: Path, shape: Shape, shape_dir: Path, contacts: int, threads: int) -> bool:
    """Write SHAPE_DIR/data from BASE (reused while BASE's params and this code are unchanged).

    Returns True when the data was (re)written.
    """
    data = shape_dir / "data"
    stamp = data / "params.json"
    wanted = {
        "base": json.loads((base / "params.json").read_text()),
        "shape": shape.name,
        "code": code_digest(),
    }
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return False
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    derived = _derived(base, contacts, threads)
    if shape.csv:
        _write_csv(base / "contacts.parquet", data / f"contacts.{shape.ext}")
    else:
        _link(base / "contacts.parquet", data / "contacts.parquet")
    for table in EVENT_TABLES:
        if shape.daily:
            _split_daily(derived / f"sorted-{table}.parquet", data / table, shape.ext)
        else:
            kind = "skewed" if shape.skewed else "arrival"
            source = derived / f"{kind}-{table}.parquet"
            if shape.csv:
                _write_csv(source, data / f"{table}.{shape.ext}")
            else:
                _link(source, data / f"{table}.parquet")
    stamp.write_text(json.dumps(wanted, indent=2) + "\n")
    return True


# ---------------------------------------------------------------- the orders (DuckDB sorts)


def _derived(base: Path, contacts: int, threads: int) -> Path:
    """BASE/derived-CODE: each event table shuffled, time-sorted and skewed (once each)."""
    out = base / f"derived-{code_digest()}"
    done = out / "done"
    if done.exists():
        return out
    for stale in base.glob("derived-*"):
        shutil.rmtree(stale)
    out.mkdir()
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET memory_limit = '6GB'")
    con.execute(f"SET temp_directory = '{out / 'spill'}'")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")
    for table in EVENT_TABLES:
        parts = _files(base, table)
        source = f"read_parquet({parts})"
        # Arrival order: unrelated to time, but the same for the same rows.
        _copy(con, f"SELECT * FROM {source} ORDER BY hash(contact_id, occurred_at, event_type, 7)",
              out / f"arrival-{table}.parquet")  # fmt: skip
        _copy(con, f"SELECT * FROM {source} ORDER BY occurred_at NULLS FIRST, contact_id",
              out / f"sorted-{table}.parquet")  # fmt: skip
        # Hot contacts: ids 1 + k*7919 mod N; the k-th takes a share falling off as u^3.
        hot = (
            f"1 + (CAST(floor({HOT_CONTACTS} * pow((hash(occurred_at, contact_id, 2) % 1000000)"
            f" / 1e6, 3)) AS BIGINT) * 7919) % {contacts}"
        )
        skew = (
            f"CASE WHEN hash(contact_id, occurred_at, 1) % 1000 < {round(HOT_SHARE * 1000)}"
            f" THEN {hot} ELSE contact_id END"
        )
        _copy(
            con,
            f"SELECT * REPLACE ({skew} AS contact_id)"
            f" FROM read_parquet('{out / f'arrival-{table}.parquet'}')",
            out / f"skewed-{table}.parquet",
        )
    con.close()
    shutil.rmtree(out / "spill", ignore_errors=True)
    done.write_text("")
    return out


def _files(base: Path, table: str) -> list[str]:
    single = base / f"{table}.parquet"
    if single.exists():
        return [str(single)]
    return sorted(str(p) for p in (base / table).glob("*.parquet"))


def _copy(con: Any, query: str, path: Path) -> None:
    con.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")


# ---------------------------------------------------------------- writing (streamed)


def _batches(path: Path) -> Iterator[Any]:
    """The rows of a Parquet file as Polars frames of up to BATCH_ROWS, in file order."""
    import polars as pl
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
        yield pl.from_arrow(batch)


def _as_text(frame: Any) -> Any:
    """Timestamps as ISO 8601 text in UTC (naive ones read as local time first)."""
    import polars as pl

    exprs = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            col = pl.col(name)
            if dtype.time_zone is None:
                col = col.dt.replace_time_zone(
                    LOCAL_TIMEZONE, ambiguous="earliest", non_existent="null"
                )
            exprs.append(col.dt.convert_time_zone("UTC").dt.strftime(UTC_FORMAT))
    return frame.with_columns(exprs) if exprs else frame


def _write_csv(source: Path, target: Path) -> None:
    """One CSV (gzipped for .csv.gz) with the rows of `source`, in order."""
    with _open_text(target) as fh:
        for i, frame in enumerate(_batches(source)):
            _as_text(frame).write_csv(fh, include_header=i == 0)


class _DayWriter:
    """Writes time-sorted rows to one file per UTC day; only the current day's file is open."""

    def __init__(self, directory: Path, ext: str) -> None:
        self.directory, self.ext = directory, ext
        self.day: str | None = None
        self.fh: Any = None
        self.writer: Any = None

    def write(self, day: str, frame: Any) -> None:
        if day != self.day:
            self.close()
            self.day = day
            path = self.directory / f"{day}.{self.ext}"
            if self.ext == "parquet":
                import pyarrow.parquet as pq

                self.writer = pq.ParquetWriter(path, frame.to_arrow().schema, compression="zstd")
            else:
                self.fh = _open_text(path)
                _as_text(frame.head(0)).write_csv(self.fh)
        if self.writer is not None:
            self.writer.write_table(frame.to_arrow())
        else:
            _as_text(frame).write_csv(self.fh, include_header=False)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.fh is not None:
            self.fh.close()
        self.fh = self.writer = None


def _split_daily(sorted_file: Path, directory: Path, ext: str) -> None:
    """DIRECTORY/YYYY-MM-DD.EXT per UTC day (undated rows in `undated.EXT`), rows in order."""
    import polars as pl

    directory.mkdir(parents=True, exist_ok=True)
    out = _DayWriter(directory, ext)
    try:
        for frame in _batches(sorted_file):
            day = pl.col("occurred_at").dt.date().cast(pl.String).fill_null("undated")
            keyed = frame.with_columns(day.alias("__day"))
            for (name,), part in keyed.partition_by(
                "__day", maintain_order=True, as_dict=True
            ).items():
                out.write(str(name), part.drop("__day"))
    finally:
        out.close()


def _open_text(path: Path) -> Any:
    """A binary file handle; gzip (level 6, as the gzip tool) for `.gz`."""
    return gzip.open(path, "wb", compresslevel=6) if path.name.endswith(".gz") else path.open("wb")


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
