"""Read sources: CSV (also .csv.gz) and Parquet, globs, types and timezone normalisation.

Every time column comes out as `Datetime("us", "UTC")`: naive values are read in the project
timezone, aware ones converted. Dates stay `Date`. CSV sources stream (engines/csv_stream.py);
Parquet parts are checked to agree on their schema before any row is read. An event source's
key column is read in the type of the contacts key, and a key that cannot be is a data error.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from segcli.engines import csv_sample as cs
from segcli.engines.csv_stream import DTYPES, UTC_DT, CsvSource, StreamedDataError, bad_values
from segcli.engines.polars_text import read_by_any, text_in
from segcli.errors import DataError
from segcli.planning.needs import SourceNeed
from segcli.spec.model import Source, Spec

__all__ = ["UTC_DT", "Catalog", "catalog_for", "display_path", "file_format", "source_files"]

display_path = cs.show


_CACHED = itertools.count()
_CACHE_DIRS: list[Path] = []


def _cache_dir() -> Path:
    """One temporary folder per process for cached CSV rows, removed when the process ends
    (not with the catalog: a LazyFrame over a cached file may outlive the catalog)."""
    if not _CACHE_DIRS:
        _CACHE_DIRS.append(Path(tempfile.mkdtemp(prefix="segcli-cache-")))
        atexit.register(shutil.rmtree, _CACHE_DIRS[0], True)
    return _CACHE_DIRS[0]


def scratch_file(suffix: str = ".parquet") -> Path:
    """A new file name in the process's temporary folder (removed when the process ends)."""
    return _cache_dir() / f"{next(_CACHED)}{suffix}"


_NO_CONTACTS = "{}: the contacts export has no rows (only a header)"


def remote_words(src: Source) -> str:
    """'is the table T' or 'is at URI': a source only the spark engine reads."""
    return f"is the table {src.table}" if src.table else f"is at {src.path}"


def only_spark(src: Source) -> str:
    """Why an engine other than Spark cannot read a table or URI source, and what to do."""
    return (
        f"source '{src.name}' {remote_words(src)}, which only the spark engine reads "
        "(engine: spark in the spec, or --engine spark)"
    )


def catalog_for(spec: Spec) -> Catalog:
    """A Catalog over a validated spec's sources."""
    return Catalog(spec.base_dir, spec.timezone, dict(spec.sources))


def source_files(base_dir: str, src: Source) -> list[Path]:
    """The files a source's path (or glob) names, sorted; DataError when there are none."""
    pattern = str(Path(base_dir) / src.path)
    if any(ch in src.path for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
        if not files:
            raise DataError(f"source '{src.name}': no file matches {src.path} (in {base_dir})")
        return files
    path = Path(pattern)
    if not path.is_file():
        raise DataError(f"source '{src.name}': file not found: {display_path(path)}")
    return [path]


def file_format(path: Path) -> str:
    """'csv' or 'parquet' from the extension; DataError for anything else."""
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    raise DataError(f"{display_path(path)}: unknown file format (use .csv, .csv.gz or .parquet)")


def short_error(exc: BaseException) -> str:
    """A Polars error's first line, without the query plan Polars appends."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class Catalog:
    """Lazily opened, normalised sources of one spec; each source is opened once."""

    base_dir: str
    timezone: str
    sources: dict[str, Source]
    _csv: dict[str, CsvSource] = field(default_factory=dict)
    _parquet: dict[str, pl.LazyFrame] = field(default_factory=dict)
    _files: dict[str, list[Path]] = field(default_factory=dict)
    _cache: dict[tuple[str, str | None, SourceNeed | None], pl.LazyFrame] = field(
        default_factory=dict
    )
    # The columns of a `table:` source (SPEC §3.1), from the engine that has a catalog
    # (segcli.engines.spark_read.table_schema); None: no such engine here.
    table_schema: Callable[[Source], dict[str, pl.DataType]] | None = None

    def __post_init__(self) -> None:
        # An unknown timezone is the spec's error (reported by the validator); the columns are
        # still read, in UTC, so that the rest of the spec can be checked against them.
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.timezone = "UTC"

    def is_remote(self, name: str) -> bool:
        """Whether only Spark reads a source: a catalog table (`table:`) or a URI path."""
        return self.sources[name].remote is not None

    def _not_here(self, name: str) -> DataError:
        return DataError(only_spark(self.sources[name]))

    def files(self, name: str) -> list[Path]:
        if self.is_remote(name):
            raise self._not_here(name)
        if name not in self._files:
            files = source_files(self.base_dir, self.sources[name])
            fmts = {file_format(f) for f in files}
            if len(fmts) > 1:
                raise DataError(f"source '{name}': mixes CSV and Parquet files")
            self._files[name] = files
        return self._files[name]

    def is_csv(self, name: str) -> bool:
        return file_format(self.files(name)[0]) == "csv"

    def csv(self, name: str) -> CsvSource:
        """The CSV reader of a source (its heads read once)."""
        if name not in self._csv:
            self._csv[name] = CsvSource.open(self.sources[name], self.files(name), self.timezone)
        return self._csv[name]

    def key_type(self) -> str | None:
        """The contacts key's type ('int' or 'str'), or None while contacts are unknown."""
        contacts = self.sources.get("contacts")
        if contacts is None:
            return None
        try:
            dtype = self.schema("contacts").get(contacts.key)
        except DataError:  # reported where contacts are read, not again for every source
            return None
        if dtype is None:
            return None
        if dtype.is_integer():
            return "int"
        return "str" if dtype == pl.String else None

    def _key_type_for(self, name: str) -> str | None:
        return None if name == "contacts" else self.key_type()

    def frame(self, name: str, need: SourceNeed | None = None) -> pl.LazyFrame:
        """The source as a LazyFrame with normalised types (not deduplicated, not filtered).

        `need`: what a plan reads of an event source; a CSV source is then converted with
        only those columns and rows (segcli.planning.needs). Without it, every row and
        column."""
        if self.is_remote(name):
            raise self._not_here(name)
        key_type = self._key_type_for(name)
        if self.is_csv(name):
            src = self.sources[name]
            if name == "contacts" or src.relation == "one":
                return self.csv(name).frame(key_type)  # read once: streamed straight through
            return self._columnar(name, key_type, need)
        lf = self._parquet_frame(name)
        src = self.sources[name]
        if key_type is not None and src.key in lf.collect_schema():
            lf = self._aligned_key(lf, name, key_type)
        return lf

    def schema(self, name: str) -> dict[str, pl.DataType]:
        """Column name -> dtype of a source after normalisation (reads no rows)."""
        if self.is_remote(name):
            if self.table_schema is None:
                raise self._not_here(name)
            schema = self.table_schema(self.sources[name])
            key, key_type = self.sources[name].key, self._key_type_for(name)
            if key_type is not None and key in schema:
                schema[key] = DTYPES[key_type]
            return schema
        if self.is_csv(name):
            if name == "contacts" and self.csv(name).has_no_rows:
                raise DataError(_NO_CONTACTS.format(display_path(self.files(name)[0])))
            types = self.csv(name).types(self._key_type_for(name))
            return {c: DTYPES[t] for c, t in types.items()}
        schema = dict(self._parquet_frame(name).collect_schema())
        key, key_type = self.sources[name].key, self._key_type_for(name)
        if key_type is not None and key in schema:
            schema[key] = DTYPES[key_type]
        return schema

    def _columnar(self, name: str, key_type: str | None, need: SourceNeed | None) -> pl.LazyFrame:
        """An event source's CSV rows, parsed and checked in one streaming pass into a temporary
        Parquet file that the plan's several scans then read (re-parsing the text for every
        scan would cost more than the whole aggregation). With a `need`, only the columns and
        rows the plan reads are parsed and kept: values in other columns, and in rows of
        types no condition reads, are not checked either (as for columns nobody reads)."""
        if (name, key_type, need) not in self._cache:
            path = scratch_file()
            lf = self.csv(name).frame(key_type)
            if need is not None:
                lf = _needed(lf, self.sources[name], need)
            try:
                lf.sink_parquet(path, compression="lz4")
            except pl.exceptions.PolarsError as exc:
                raise DataError(f"source '{name}': cannot read: {short_error(exc)}") from None
            except OSError as exc:
                raise DataError(f"source '{name}': cannot cache its CSV rows: {exc}") from None
            self._cache[name, key_type, need] = pl.scan_parquet(path)
        return self._cache[name, key_type, need]

    # ------------------------------------------------------------ Parquet

    def _parquet_frame(self, name: str) -> pl.LazyFrame:
        if name not in self._parquet:
            src = self.sources[name]
            files = self.files(name)
            first = _parquet_schema(files[0])
            for f in files[1:]:
                _same_schema(files[0], first, f, _parquet_schema(f))
            lf = pl.scan_parquet([str(f) for f in files])
            casts = [
                pl.col(col).cast(DTYPES[typ], strict=True)
                for col, typ in src.columns
                if col in first
            ]
            self._parquet[name] = _normalise(
                lf.with_columns(casts) if casts else lf, self.timezone, files
            )
        return self._parquet[name]

    def _aligned_key(self, lf: pl.LazyFrame, name: str, key_type: str) -> pl.LazyFrame:
        """The key column in the contacts key's type; a key that cannot be is a data error."""
        src = self.sources[name]
        if lf.collect_schema()[src.key] == DTYPES[key_type]:
            return lf
        target = DTYPES[key_type]
        files = self.files(name)

        def check(series: Sequence[pl.Series]) -> pl.Series:
            raw, parsed = series
            if parsed.null_count() != raw.null_count():
                raise _unmatched_key(files, src, key_type)
            return parsed

        cast = pl.col(src.key).cast(pl.String).str.strip_chars().cast(target, strict=False)
        checked = pl.map_batches(
            [pl.col(src.key), cast], check, return_dtype=target, is_elementwise=True
        )
        return lf.with_columns(checked.alias(src.key))


def _needed(lf: pl.LazyFrame, src: Source, need: SourceNeed) -> pl.LazyFrame:
    """The columns and rows of a source that a plan reads (SourceNeed)."""
    have = lf.collect_schema()
    lf = lf.select([c for c in have if c in need.columns])
    rows = need.rows
    if rows is None or src.type is None:
        return lf
    if rows.any_type is None:
        # Types alone first: a filter on the type column reaches the CSV reader, so rows of
        # other types are dropped before their other columns are parsed.
        lf = lf.filter(text_in(pl.col(src.type).cast(pl.String), [t for t, _ in rows.types]))
    readers: list[tuple[tuple[str, ...] | None, datetime | None]] = [
        (types, since) for since, types in rows.by_since()
    ]
    if rows.any_type is not None:
        readers.append((None, rows.any_type))
    return lf.filter(read_by_any(readers, src.type, src.time))


def _parquet_schema(path: Path) -> dict[str, pl.DataType]:
    try:
        return dict(pl.read_parquet_schema(path))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(
            f"{display_path(path)}: not a readable Parquet file ({short_error(exc)})"
        ) from None


def _same_schema(
    first: Path, want: dict[str, pl.DataType], other: Path, have: dict[str, pl.DataType]
) -> None:
    """DataError naming the part of a glob whose columns differ from the first part's."""
    for col, dtype in want.items():
        if col not in have:
            raise DataError(
                f"{display_path(other)}: has no column '{col}' (the first part, "
                f"{display_path(first)}, has it)"
            )
        if have[col] != dtype:
            raise DataError(
                f"{display_path(other)}: column '{col}' is {have[col]}, but {dtype} in "
                f"{display_path(first)}; every part of a source must have the same columns"
            )
    extra = [c for c in have if c not in want]
    if extra:
        raise DataError(
            f"{display_path(other)}: has column '{extra[0]}' that {display_path(first)} lacks; "
            "every part of a source must have the same columns"
        )


def _unmatched_key(files: list[Path], src: Source, key_type: str) -> StreamedDataError:
    """The first row of a Parquet source whose key is not a contacts key's type."""
    for f in files:
        offset = 0
        for batch in _parquet_batches(f, src.key):
            raw = pl.Series(batch.column(0)).cast(pl.String)
            parsed = raw.str.strip_chars().cast(DTYPES[key_type], strict=False)
            bad = bad_values(raw, parsed)
            if bad is not None:
                at = int(bad.arg_true()[0])
                return StreamedDataError(
                    f"{display_path(f)}: row {offset + at + 1}: column '{src.key}': key "
                    f"{raw[at]!r} of source '{src.name}' cannot be compared with the contacts "
                    f"key, which is {key_type}"
                )
            offset += len(raw)
    return StreamedDataError(f"source '{src.name}': a key cannot be read as {key_type}")


def _parquet_batches(path: Path, column: str) -> Iterator[Any]:
    """One column of a Parquet file in record batches, for locating a bad value. pyarrow is
    imported here, on the error path only: importing it costs a third of segcli's start-up."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).iter_batches(65_536, columns=[column])  # type: ignore[no-any-return]


def _normalise(lf: pl.LazyFrame, tz: str, files: list[Path]) -> pl.LazyFrame:
    """Datetimes to UTC microseconds (naive ones read in `tz`; one that does not exist there,
    in the hour a DST change skips, is a data error rather than a silent null)."""
    exprs = []
    for col, dtype in lf.collect_schema().items():
        if dtype == UTC_DT:
            # Already UTC microseconds: no conversion, so that filters on the column reach
            # the Parquet reader, which then skips row groups (and files) by their statistics.
            continue
        if isinstance(dtype, pl.Datetime):
            e = pl.col(col)
            if dtype.time_zone is None:
                local = e.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
                e = pl.map_batches(
                    [e, local],
                    _gap_check(files, col, tz),
                    return_dtype=pl.Datetime(dtype.time_unit, tz),
                    is_elementwise=True,
                )
            exprs.append(e.dt.convert_time_zone("UTC").cast(UTC_DT).alias(col))
    return lf.with_columns(exprs) if exprs else lf


def _gap_check(files: list[Path], col: str, tz: str) -> Callable[[Sequence[pl.Series]], pl.Series]:
    def check(series: Sequence[pl.Series]) -> pl.Series:
        raw, local = series
        if local.null_count() != raw.null_count():
            raise _first_gap(files, col, tz)
        return local

    return check


def _first_gap(files: list[Path], col: str, tz: str) -> StreamedDataError:
    """The first naive timestamp of a Parquet source that does not exist in `tz`."""
    for f in files:
        offset = 0
        for batch in _parquet_batches(f, col):
            raw = pl.Series(batch.column(0))
            local = raw.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
            bad = raw.is_not_null() & local.is_null()
            if bad.any():
                at = int(bad.arg_true()[0])
                return StreamedDataError(
                    f"{display_path(f)}: row {offset + at + 1}: column '{col}': {raw[at]} does "
                    f"not exist in {tz} (the clocks skip that hour); write the time with its "
                    "offset, or correct it"
                )
            offset += len(raw)
    return StreamedDataError(f"column '{col}': a time does not exist in {tz}")
