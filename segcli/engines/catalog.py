"""Read sources: CSV (also .csv.gz) and Parquet, globs, type inference and timezone normalisation.

Every time column comes out as `Datetime("us", "UTC")`: naive values are read in the project
timezone, aware ones converted. Dates stay `Date`. CSV files are read as text and converted
column by column, so an unparseable value is reported with its file, row and value.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from segcli.errors import DataError
from segcli.spec.model import Source, Spec


def catalog_for(spec: Spec) -> Catalog:
    """A Catalog over a validated spec's sources."""
    return Catalog(spec.base_dir, spec.timezone, dict(spec.sources))


UTC_DT = pl.Datetime("us", "UTC")
_SAMPLE = 2000
_INT = re.compile(r"^-?(0|[1-9]\d{0,17})$")
_FLOAT = re.compile(r"^-?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_BOOL = {"true", "false", "True", "False", "TRUE", "FALSE"}


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


def display_path(path: Path) -> str:
    """A path as shown in messages: relative to the working directory when under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass
class Catalog:
    """Lazily opened, normalised sources of one spec; each source is opened once."""

    base_dir: str
    timezone: str
    sources: dict[str, Source]
    _frames: dict[str, pl.LazyFrame] = field(default_factory=dict)
    _files: dict[str, list[Path]] = field(default_factory=dict)

    def files(self, name: str) -> list[Path]:
        if name not in self._files:
            self._files[name] = source_files(self.base_dir, self.sources[name])
        return self._files[name]

    def frame(self, name: str) -> pl.LazyFrame:
        """The source as a LazyFrame with normalised types (not deduplicated, not filtered)."""
        if name not in self._frames:
            src = self.sources[name]
            files = self.files(name)
            fmts = {file_format(f) for f in files}
            if len(fmts) > 1:
                raise DataError(f"source '{name}': mixes CSV and Parquet files")
            if fmts == {"parquet"}:
                lf = _scan_parquet(files, src)
            else:
                lf = pl.concat(
                    [_read_csv(f, src, self.timezone).lazy() for f in files],
                    how="vertical_relaxed",
                )
                lf = _settle_empty_columns(lf, src)
            self._frames[name] = _normalise(lf, self.timezone)
        return self._frames[name]

    def schema(self, name: str) -> dict[str, pl.DataType]:
        """Column name -> dtype of a source after normalisation."""
        try:
            return dict(self.frame(name).collect_schema())
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"source '{name}': cannot read {self.files(name)[0]}: {exc}") from exc


def _settle_empty_columns(lf: pl.LazyFrame, src: Source) -> pl.LazyFrame:
    """Columns with no value in any file: the time column is a datetime, others text.

    A header-only export (no events today) must still have a time column, and a column empty
    in one export takes its type from the others (vertical_relaxed concat of Null).
    """
    schema = lf.collect_schema()
    casts = [
        pl.col(c).cast(UTC_DT if c == src.time else pl.String())
        for c, dtype in schema.items()
        if dtype == pl.Null
    ]
    return lf.with_columns(casts) if casts else lf


def _scan_parquet(files: list[Path], src: Source) -> pl.LazyFrame:
    try:
        lf = pl.scan_parquet([str(f) for f in files])
        schema = lf.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"source '{src.name}': cannot read Parquet {files[0]}: {exc}") from exc
    casts = []
    for col, typ in src.columns:
        if col in schema:
            casts.append(pl.col(col).cast(_dtype(typ), strict=True))
    return lf.with_columns(casts) if casts else lf


def _dtype(typ: str) -> pl.DataType:
    return {
        "str": pl.String(),
        "int": pl.Int64(),
        "float": pl.Float64(),
        "bool": pl.Boolean(),
        "date": pl.Date(),
        "datetime": UTC_DT,
    }[typ]


def _normalise(lf: pl.LazyFrame, tz: str) -> pl.LazyFrame:
    """Datetimes to UTC microseconds (naive ones read in `tz`)."""
    exprs = []
    for col, dtype in lf.collect_schema().items():
        if isinstance(dtype, pl.Datetime):
            e = pl.col(col)
            if dtype.time_zone is None:
                e = e.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
            exprs.append(e.dt.convert_time_zone("UTC").cast(UTC_DT))
    return lf.with_columns(exprs) if exprs else lf


def infer_type(values: pl.Series) -> str:
    """Infer a CSV column's type from a sample of its non-null text values."""
    vals = [v for v in values.drop_nulls().head(_SAMPLE).to_list() if v != ""]
    if not vals:
        return "str"
    tests: tuple[tuple[str, Callable[[str], bool]], ...] = (
        ("bool", lambda v: v in _BOOL),
        ("int", lambda v: bool(_INT.match(v))),
        ("float", lambda v: bool(_FLOAT.match(v))),
        ("date", lambda v: bool(_DATE.match(v))),
        ("datetime", lambda v: bool(_DATETIME.match(v)) or bool(_DATE.match(v))),
    )
    for typ, test in tests:
        if all(test(v) for v in vals):
            return typ
    return "str"


def parse_text(col: pl.Expr, typ: str, tz: str) -> pl.Expr:
    """Convert a text column to `typ`; unparseable values become null (checked by the caller)."""
    if typ == "str":
        return col
    if typ == "int":
        return col.str.strip_chars().cast(pl.Int64, strict=False)
    if typ == "float":
        return col.str.strip_chars().cast(pl.Float64, strict=False)
    if typ == "bool":
        low = col.str.strip_chars().str.to_lowercase()
        return pl.when(low == "true").then(True).when(low == "false").then(False)
    if typ == "date":
        return col.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    n = col.str.strip_chars().str.replace(r"[zZ]$", "+00:00").str.replace(" ", "T", literal=True)
    n = pl.when(n.str.len_chars() == 10).then(n + "T00:00:00").otherwise(n)
    n = (
        pl.when(n.str.contains(r"T\d{2}:\d{2}([+-]|$)"))
        .then(n.str.replace(r"(T\d{2}:\d{2})", "${1}:00"))
        .otherwise(n)
    )
    aware = n.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone="UTC")
    aware2 = n.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_zone="UTC")
    naive = (
        n.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False)
        .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    return pl.coalesce(aware.cast(UTC_DT), aware2.cast(UTC_DT), naive.cast(UTC_DT))


def _has_values(values: pl.Series) -> bool:
    return bool(values.is_not_null().any())


def _read_csv(path: Path, src: Source, tz: str) -> pl.DataFrame:
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{display_path(path)}: cannot read CSV: {exc}") from exc
    declared = dict(src.columns)
    exprs = []
    types: dict[str, str] = {}
    for col in raw.columns:
        typ = declared.get(col) or infer_type(raw[col])
        if col not in declared and not _has_values(raw[col]):
            typ = "null"  # settled after all files are read (_settle_empty_columns)
        types[col] = typ
        expr = pl.col(col).cast(pl.Null) if typ == "null" else parse_text(pl.col(col), typ, tz)
        exprs.append(expr.alias(col))
    df = raw.select(exprs)
    for col, typ in types.items():
        if typ in ("str", "null"):
            continue
        bad = raw[col].is_not_null() & (raw[col].str.strip_chars() != "") & df[col].is_null()
        if bad.any():
            idx = int(bad.arg_true()[0])
            value = raw[col][idx]
            count = int(bad.sum())
            more = f" ({count} such rows)" if count > 1 else ""
            how = "declared" if col in declared else "inferred"
            raise DataError(
                f"{display_path(path)}:{idx + 2}: column '{col}': cannot parse {value!r} as {typ} "
                f"({how} type){more}"
            )
    return df
