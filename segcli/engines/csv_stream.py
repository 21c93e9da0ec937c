"""CSV sources streamed through Polars, never loaded whole.

The types are decided up front from the header and a sample of each file's head (declared with
`columns:`, or inferred). The rows then stream through Polars as text, file by file, and each
typed column is parsed and checked batch by batch inside the same query: a batch whose parsed
column has no more nulls than its text (the common case) costs two counts. Only when a value
does not parse are the files read again, to report the first bad value with its file and line.
"""

from __future__ import annotations

import gzip
import itertools
import re
import shutil
import tempfile
import threading
import weakref
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from polars.io.plugins import register_io_source

from segcli.engines import csv_sample as cs
from segcli.errors import DataError
from segcli.spec.model import Source

UTC_DT = pl.Datetime("us", "UTC")
DTYPES: dict[str, pl.DataType] = {
    "str": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "datetime": UTC_DT,
}
_LOCATE_CHUNK = 65_536
# Sources smaller than this parse their times with Polars alone: importing pyarrow for the
# Arrow cast costs more start-up than it saves on a few megabytes (the demo's files).
_ARROW_MIN_BYTES = 32 << 20
_BATCH_ROWS = 100_000  # rows per batch handed to the typed columns' checks
_AHEAD = 2  # .csv.gz parts decompressed ahead of the one being parsed
_AHEAD_BYTES = 32 << 20  # ... when they are this small (compressed); else in their turn
_TAIL_NULL = "__segcli_tail_null__"  # whether a batch's last column has nulls
# Datetime styles tried for a column's fast parse: (format, whether it carries an offset).
_DATETIME_STYLES = (
    ("%Y-%m-%dT%H:%M:%S%.f%z", True),
    ("%Y-%m-%dT%H:%M:%S%.f%:z", True),
    ("%Y-%m-%dT%H:%M:%S%.fZ", True),
    ("%Y-%m-%dT%H:%M:%S%.f", False),
    ("%Y-%m-%d %H:%M:%S%.f", False),
)


FastParse = Callable[[pl.Series], "pl.Series | None"]


def _expr_parse(expr: pl.Expr) -> FastParse:
    return lambda raw: pl.DataFrame([raw]).select(expr).to_series()


def _zulu_parse(sample: pl.Series) -> FastParse | None:
    """Arrow's ISO 8601 cast for times that all end in `Z` and have one width, else None.

    Arrow accepts more forms than segcli does (`+01` offsets, for one), so a batch is cast only
    when each of its values has the sample's width and ends in `Z`: at that width, the one form
    Arrow reads is the sample's (`T` or a space between date and time, both read alike by
    segcli); anything else, or a value Arrow rejects, makes the batch take the full parse."""
    widths = sample.str.len_bytes()
    width = widths.min()
    if width is None or width != widths.max() or not sample.str.ends_with("Z").all():
        return None

    def parse(raw: pl.Series) -> pl.Series | None:
        import pyarrow as pa
        import pyarrow.compute as pc

        lengths = raw.str.len_bytes()
        if raw.null_count() < len(raw) and (lengths.min() != width or lengths.max() != width):
            return None
        if not raw.str.ends_with("Z").all():
            return None
        try:
            cast = pc.cast(raw.to_arrow(), pa.timestamp("us", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        out = pl.Series(raw.name, cast)
        return out if out.dtype == UTC_DT else out.cast(UTC_DT)

    return parse


class StreamedDataError(DataError):
    """A DataError raised from inside a Polars query. Polars re-creates the exception with its
    own context (the failing expression) appended; that is cut off again here."""

    def __init__(self, message: str) -> None:
        super().__init__(message.split("\n\n", 1)[0].rstrip())


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


def bad_values(raw: pl.Series, parsed: pl.Series) -> pl.Series | None:
    """Where a non-blank text did not parse; None when nothing is bad (checked by counts first)."""
    if parsed.null_count() == raw.null_count():
        return None
    bad = raw.is_not_null() & (raw.str.strip_chars() != "") & parsed.is_null()
    return bad if bad.any() else None


@dataclass
class CsvSource:
    """One CSV source: its files' heads read, its column types decided, its rows streamable."""

    src: Source
    files: list[Path]
    tz: str
    headers: dict[Path, list[str]]
    sample: list[tuple[Path, cs.Record]]
    # Files whose every row was in the sample (their widths were checked there).
    whole: frozenset[Path] = frozenset()
    _failures: dict[str, DataError] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _plain: dict[Path, str] = field(default_factory=dict)
    _types: dict[str | None, dict[str, str]] = field(default_factory=dict)
    _columns: dict[str, list[str]] = field(default_factory=dict)
    _by_file: dict[Path, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    _tmp: str | None = None

    @classmethod
    def open(cls, src: Source, files: list[Path], tz: str) -> CsvSource:
        """Read every file's header and the sampled files' heads (DataError on any problem)."""
        enc, sep = src.encoding, src.delimiter
        with cs.gc_paused():
            heads = {
                f: cs.read_head(f, src.name, sep, enc, cs.SAMPLE_ROWS) for f in cs.sampled(files)
            }
            headers = {f: h.header for f, h in heads.items()}
            for f in files:
                if f not in headers:
                    headers[f] = cs.read_head(f, src.name, sep, enc, 0).header
            sample = [(f, rec) for f, h in heads.items() for rec in h.rows]
        whole = frozenset(f for f, h in heads.items() if len(h.rows) < cs.SAMPLE_ROWS)
        return cls(src, files, tz, headers, sample, whole)

    def _bytes(self) -> int:
        """The source's size on disk (compressed parts as stored)."""
        return sum(f.stat().st_size for f in self.files)

    @property
    def has_no_rows(self) -> bool:
        """True when every file was sampled and none has a row after its header."""
        return not self.sample and len(cs.sampled(self.files)) == len(self.files)

    @property
    def header(self) -> list[str]:
        """Every column of the source, in order of first appearance over its files."""
        out: dict[str, None] = {}
        for f in self.files:
            out.update(dict.fromkeys(self.headers[f]))
        return list(out)

    def _values(self, column: str) -> list[str]:
        """The sample's non-blank values of `column` (`_where` tells the file and line of one)."""
        if column not in self._columns:
            out: list[str] = []
            for fields in self._transposed().values():
                values = fields.get(column)
                if values is not None:
                    out.extend(v for v in values if v and not v.isspace())
            self._columns[column] = out
        return self._columns[column]

    def _transposed(self) -> dict[Path, dict[str, tuple[str, ...]]]:
        """Per sampled file, each column's sampled values (transposed once: type inference
        reads the sample by column; a value's file and line are wanted only for an error)."""
        if not self._by_file:
            rows: dict[Path, list[list[str]]] = {}
            for f, rec in self.sample:
                rows.setdefault(f, []).append(rec.fields)
            for f, fields in rows.items():
                columns = zip(*fields, strict=True)  # sampled rows are as wide as the header
                self._by_file[f] = dict(zip(self.headers[f], columns, strict=True))
        return self._by_file

    def _where(self, column: str, index: int) -> tuple[Path, int, str]:
        """The file, line and text of the `index`-th value `_values(column)` returns."""
        seen = 0
        for f, rec in self.sample:
            header = self.headers[f]
            if column in header:
                value = rec.fields[header.index(column)]
                if value and not value.isspace():
                    if seen == index:
                        return f, rec.line, value
                    seen += 1
        raise IndexError(index)  # pragma: no cover - index comes from _values

    def types(self, key_type: str | None = None) -> dict[str, str]:
        """Each column's type: declared; the contacts key's type for an event source's key
        (`key_type`); else inferred from the sample. Columns with no value are text, except
        the time column (a datetime). DataError for a sampled value the type cannot parse."""
        if key_type not in self._types:
            with cs.gc_paused():
                self._types[key_type] = self._decide(key_type)
        return self._types[key_type]

    def _decide(self, key_type: str | None) -> dict[str, str]:
        declared = dict(self.src.columns)
        out: dict[str, str] = {}
        guess: dict[str, tuple[list[str], tuple[str, ...], str]] = {}  # values, types, else
        for col in self.header:
            if col in declared:
                out[col] = declared[col]
            elif col == self.src.key and key_type:
                out[col] = key_type
            else:
                values = [v.strip() for v in self._values(col)]
                if col == self.src.key:
                    guess[col] = (values, cs.KEY_TYPES, "str")
                elif col == self.src.time:
                    guess[col] = (values, cs.TIME_TYPES, "datetime")
                else:
                    guess[col] = (values, cs.ANY_TYPE, "str")
        counts = cs.look_counts({c: (v, types) for c, (v, types, _) in guess.items() if v})
        for col, (values, types, otherwise) in guess.items():
            typ = cs.infer(values, types, counts[col]) if values else None
            out[col] = typ or otherwise
        out = {col: out[col] for col in self.header}
        for col, typ in out.items():
            if typ != "str":
                self._check_sample(col, typ, key_type)
        return out

    def _check_sample(self, col: str, typ: str, key_type: str | None) -> None:
        raw = pl.Series(col, self._values(col), dtype=pl.String)
        parsed = pl.DataFrame([raw]).select(parse_text(pl.col(col), typ, self.tz).alias(col))[col]
        bad = bad_values(raw, parsed)
        if bad is not None:
            f, line, value = self._where(col, int(bad.arg_true()[0]))
            raise DataError(self._message(f, line, col, value, typ, key_type))

    def _message(
        self, f: Path, line: int, col: str, value: str, typ: str, key_type: str | None
    ) -> str:
        if col in dict(self.src.columns):
            why = "declared type"
        elif col == self.src.key and key_type is not None:
            why = f"the contacts key is {key_type}; keys must be comparable"
        elif col == self.src.key:
            why = (
                f"the other keys are {typ}; a key is never read as a number with decimals. If "
                f"the keys are text, declare on source '{self.src.name}': columns: {{{col}: str}}"
            )
        elif col == self.src.time:
            why = f"the time column of source '{self.src.name}'"
        else:
            why = (
                "type inferred from the column's other values; if the column is not "
                f"{typ}, declare it on source '{self.src.name}': columns: {{{col}: str}}"
            )
        return f"{cs.show(f)}:{line}: column '{col}': cannot parse {value!r} as {typ} ({why})"

    # ------------------------------------------------------------ streaming

    def frame(self, key_type: str | None = None) -> pl.LazyFrame:
        """The source's rows as a LazyFrame with parsed, checked columns (not yet read)."""
        types = self.types(key_type)
        lf = register_io_source(
            self._batches,
            schema={c: pl.String() for c in self.header},
            explain_name=f"CSV source '{self.src.name}'",
        )
        checked = [self._checked(col, typ, key_type) for col, typ in types.items() if typ != "str"]
        return lf.with_columns(checked) if checked else lf

    def _checked(self, col: str, typ: str, key_type: str | None) -> pl.Expr:
        full = parse_text(pl.col(col), typ, self.tz)
        fast = self._fast_parse(col, typ)

        def check(series: Sequence[pl.Series]) -> pl.Series:
            (raw,) = series
            parsed = fast(raw) if fast is not None else None
            if parsed is None or bad_values(raw, parsed) is not None:
                # Not the sampled style (or no fast parse): this batch takes the full parse.
                parsed = pl.DataFrame([raw]).select(full.alias(col))[col]
            if bad_values(raw, parsed) is not None:
                raise self._failure(col, typ, key_type)
            return parsed

        return pl.map_batches(
            [pl.col(col)], check, return_dtype=DTYPES[typ], is_elementwise=True
        ).alias(col)

    def _fast_parse(self, col: str, typ: str) -> FastParse | None:
        """A cheaper parse for the way the sample's values are written, giving the same values
        as the full parse where it gives any (checked on the sample); a batch it does not
        parse completely takes the full parse.

        Numbers: a plain cast, without first stripping blanks around every value. Datetimes:
        the one format every sampled value is written in, when there is one (several times
        faster than trying every accepted style); for UTC times written with a final `Z` and
        one width (`2026-05-04T10:26:36.120822Z`, most exports), Arrow's ISO 8601 cast,
        another 4x faster than Polars' strptime."""
        if typ in ("int", "float"):
            dtype = DTYPES[typ]
            return lambda raw: raw.cast(dtype, strict=False)
        if typ != "datetime" or self.whole >= set(self.files):
            # Every row was in the sample (so it is small): the full parse of a batch is no
            # dearer than looking for a cheaper one on the same rows.
            return None
        values = self._values(col)
        if not values:
            return None
        sample = pl.Series(col, values, dtype=pl.String)
        want = pl.DataFrame([sample]).select(parse_text(pl.col(col), typ, self.tz).alias(col))
        zulu = _zulu_parse(sample) if self._bytes() >= _ARROW_MIN_BYTES else None
        got = zulu(sample) if zulu is not None else None
        if got is not None and want.to_series().equals(got):
            return zulu
        for fmt, aware in _DATETIME_STYLES:
            expr = pl.col(col).str.to_datetime(
                fmt, strict=False, time_zone="UTC" if aware else None
            )
            if not aware:
                expr = expr.dt.replace_time_zone(
                    self.tz, ambiguous="earliest", non_existent="null"
                ).dt.convert_time_zone("UTC")
            expr = expr.cast(UTC_DT)
            if pl.DataFrame([sample]).select(expr.alias(col)).equals(want):
                return _expr_parse(expr.alias(col))
        return None

    def _batches(
        self,
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        # Polars hands over a few thousand rows at a time (one daily .csv.gz part is several
        # batches); each batch costs a Python call per typed column, so batches are gathered,
        # across files too, to at least _BATCH_ROWS rows.
        held: list[pl.DataFrame] = []
        rows = 0
        for batch in self._file_batches(with_columns, predicate, n_rows, batch_size):
            held.append(batch)
            rows += batch.height
            if rows >= _BATCH_ROWS:
                yield held[0] if len(held) == 1 else pl.concat(held, rechunk=False)
                held, rows = [], 0
        if held:
            yield held[0] if len(held) == 1 else pl.concat(held, rechunk=False)

    def _file_batches(
        self,
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        cols = with_columns if with_columns is not None else self.header
        left = n_rows
        for f, text in self._texts():
            if left is not None and left <= 0:
                return
            have = self.headers[f]
            # A row with fewer fields than the header reads as nulls in its last columns, like
            # empty cells would: the last column is read along to see whether any is null, and
            # only then are the file's lines checked for short rows (_short_rows).
            tail = have[-1] if f not in self.whole else None
            lf = pl.scan_csv(
                text,
                schema={c: pl.String() for c in have},
                separator=self.src.delimiter or ",",
                raise_if_empty=False,
            )
            picked = [pl.col(c) if c in have else pl.lit(None, pl.String()).alias(c) for c in cols]
            if tail is not None:
                picked.append(pl.col(tail).is_null().alias(_TAIL_NULL))
            lf = lf.select(picked)
            tail_null = False
            read = 0
            try:
                for batch in lf.collect_batches(chunk_size=batch_size):
                    read += batch.height
                    if tail is not None:
                        tail_null = tail_null or bool(batch[_TAIL_NULL].any())
                        batch = batch.drop(_TAIL_NULL)
                    if predicate is not None:
                        batch = batch.filter(predicate)
                    if left is not None:
                        batch = batch.head(left)
                        left -= batch.height
                    if batch.height:
                        yield batch
                    if left is not None and left <= 0:
                        break
            except pl.exceptions.PolarsError as exc:
                raise self._read_failure(f, exc) from None
            suspect = tail_null and (left is None or left > 0)
            if suspect and not (left is None and self._every_row_full(text, read, len(have))):
                self._short_rows(f, len(have))

    def _texts(self) -> Iterator[tuple[Path, str | bytes]]:
        """Each file with what Polars reads for it (`_text`). The next `.csv.gz` parts are
        decompressed ahead on a thread while Polars parses the current one (zlib releases the
        GIL); only parts of up to _AHEAD_BYTES compressed, so that memory stays within a few
        parts' text. A part's failure surfaces when its turn comes, as it would in order."""
        if sum(1 for f in self.files if f.name.lower().endswith(".gz")) < 2:
            for f in self.files:
                yield f, self._text(f)
            return
        files = iter(self.files)
        with ThreadPoolExecutor(max_workers=1) as pool:

            def start(f: Path) -> tuple[Path, Future[str | bytes] | None]:
                small = f.stat().st_size <= _AHEAD_BYTES
                return f, pool.submit(self._text, f) if small else None

            ahead = deque(start(f) for f in itertools.islice(files, _AHEAD))
            while ahead:
                f, text = ahead.popleft()
                following = next(files, None)
                if following is not None:
                    ahead.append(start(following))
                yield f, text.result() if text is not None else self._text(f)

    def _text(self, f: Path) -> str | bytes:
        """What Polars reads for `f`: its path (or a UTF-8 copy's), or for a .csv.gz part the
        decompressed bytes, so that a short-row check does not decompress it again (Polars
        holds a decompressed part whole in memory either way)."""
        path = self._readable(f)
        if not path.lower().endswith(".gz"):
            return path
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read()
        except (OSError, EOFError, zlib.error) as exc:
            raise self._read_failure(f, exc) from None

    def _every_row_full(self, text: str | bytes, rows: int, width: int) -> bool:
        """True when a file without quotes holds exactly `width - 1` delimiters per line for
        its header and `rows` rows: Polars rejects a row with too many fields, so no row can
        then have too few. One byte count instead of a scan of every line; False (the lines
        are then checked one by one) when the file has quotes, blank lines or short rows."""
        sep = (self.src.delimiter or ",").encode()
        if len(sep) != 1:
            return False
        count, quoted = 0, False
        if isinstance(text, bytes):
            count, quoted = text.count(sep), b'"' in text
        else:
            with open(text, "rb") as fh:
                while chunk := fh.read(1 << 24):
                    count += chunk.count(sep)
                    quoted = quoted or b'"' in chunk
        return not quoted and count == (width - 1) * (rows + 1)

    def _short_rows(self, f: Path, width: int) -> None:
        """StreamedDataError naming the first record of `f` with fewer fields than its header.

        Each physical line's delimiters are counted by Polars (quoted text removed first); only
        when a line looks short, or holds a quote left open (a field spanning lines), is the
        file read again with Python's csv module to find the record and its line exactly."""
        sep = self.src.delimiter or ","
        line = pl.col("line")
        bare = (
            pl.when(line.str.contains('"', literal=True))
            .then(line.str.replace_all(r'"[^"]*"', ""))
            .otherwise(line)
        )
        suspect = (bare.str.count_matches(re.escape(sep)) < width - 1) | bare.str.contains(
            '"', literal=True
        )
        lines = pl.scan_csv(
            self._readable(f),
            has_header=False,
            skip_rows=1,
            separator="\x1f" if sep != "\x1f" else "\x1e",
            quote_char=None,
            schema={"line": pl.String()},
            truncate_ragged_lines=True,
            raise_if_empty=False,
        )
        try:
            if not lines.select(suspect.fill_null(False).any()).collect().item():
                return
        except pl.exceptions.PolarsError as exc:
            raise self._read_failure(f, exc) from None
        for rec in self._rows(f):
            if len(rec.fields) < width:
                try:
                    cs.check_width(f, rec, width)
                except DataError as short:
                    raise StreamedDataError(short.message) from None

    def _readable(self, f: Path) -> str:
        """A path Polars can read as UTF-8: the file itself, or a UTF-8 copy of it."""
        if cs.is_utf8(self.src.encoding):
            return str(f)
        with self._lock:
            if f not in self._plain:
                if self._tmp is None:
                    self._tmp = tempfile.mkdtemp(prefix="segcli-csv-")
                    weakref.finalize(self, shutil.rmtree, self._tmp, True)
                out = Path(self._tmp) / f"{len(self._plain)}.csv"
                with (
                    cs.open_text(f, self.src.encoding) as src,
                    out.open("w", encoding="utf-8") as dst,
                ):
                    try:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    except UnicodeDecodeError as exc:
                        raise StreamedDataError(
                            cs.not_decodable(f, self.src.encoding, exc).message
                        ) from None
                self._plain[f] = str(out)
            return self._plain[f]

    # ------------------------------------------------------------ finding what failed

    def _read_failure(self, f: Path, exc: Exception) -> DataError:
        """What stopped Polars reading `f`, found again with Python's csv module."""
        width = len(self.headers[f])
        try:
            for rec in cs.records(f, self.src.delimiter or ",", self.src.encoding):
                cs.check_width(f, rec, width)
        except DataError as found:
            return StreamedDataError(found.message)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StreamedDataError(f"{cs.show(f)}: cannot read CSV: {first}")

    def _failure(self, col: str, typ: str, key_type: str | None) -> DataError:
        """The first value of `col` in the files that `typ` cannot parse (computed once)."""
        with self._lock:
            if col not in self._failures:
                self._failures[col] = StreamedDataError(self._locate(col, typ, key_type))
            return self._failures[col]

    def _locate(self, col: str, typ: str, key_type: str | None) -> str:
        for f in self.files:
            header = self.headers[f]
            if col not in header:
                continue
            i = header.index(col)
            chunk: list[cs.Record] = []
            for rec in self._rows(f):
                chunk.append(rec)
                if len(chunk) == _LOCATE_CHUNK:
                    found = self._first_bad(chunk, i, col, typ)
                    if found is not None:
                        return self._message(f, found[0], col, found[1], typ, key_type)
                    chunk = []
            found = self._first_bad(chunk, i, col, typ)
            if found is not None:
                return self._message(f, found[0], col, found[1], typ, key_type)
        return f"source '{self.src.name}': column '{col}' holds a value that is not {typ}"

    def _rows(self, f: Path) -> Iterator[cs.Record]:
        """The records of one file after its header."""
        return itertools.islice(
            cs.records(f, self.src.delimiter or ",", self.src.encoding), 1, None
        )

    def locate_row(self, index: int) -> tuple[Path, int]:
        """The file and first line of row `index` (0-based over the source's rows)."""
        seen = 0
        for f in self.files:
            for rec in self._rows(f):
                if seen == index:
                    return f, rec.line
                seen += 1
        return self.files[-1], 0

    def _first_bad(
        self, chunk: list[cs.Record], i: int, col: str, typ: str
    ) -> tuple[int, str] | None:
        values = [r.fields[i] if i < len(r.fields) and r.fields[i] != "" else None for r in chunk]
        raw = pl.Series(col, values, dtype=pl.String)
        parsed = pl.DataFrame([raw]).select(parse_text(pl.col(col), typ, self.tz).alias(col))[col]
        bad = bad_values(raw, parsed)
        if bad is None:
            return None
        at = int(bad.arg_true()[0])
        return chunk[at].line, str(values[at])
