"""The head of a CSV source, read before any row streams: how its files are written (delimiter,
encoding, header) and a sample of their rows, from which each column's type is decided.

Everything here reads only the first rows of a file, with Python's csv module, so every
problem it finds is reported with the file and the physical line (quoted newlines counted).
"""

from __future__ import annotations

import codecs
import csv
import gc
import gzip
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import polars as pl

from segcli.errors import DataError

SAMPLE_ROWS = 10_000  # rows read from the head of each sampled file
SAMPLE_FILES = 16  # files of a glob whose heads are sampled (first, last, spread between)
_OTHER_DELIMITERS = {";": '";"', "\t": '"\\t"', "|": '"|"'}  # as written in YAML

_INT = re.compile(r"^-?(0|[1-9]\d{0,17})$")
_FLOAT = re.compile(r"^-?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_BOOL = {"true", "false", "True", "False", "TRUE", "FALSE"}
# What a value of each type looks like, one value at a time (infer matches the same patterns
# on a whole column at once; the tests hold the two to one answer).
_LOOKS = {
    "bool": lambda v: v in _BOOL,
    "int": lambda v: bool(_INT.match(v)),
    "float": lambda v: bool(_FLOAT.match(v)),
    "date": lambda v: bool(_DATE.match(v)),
    "datetime": lambda v: bool(_DATETIME.match(v)) or bool(_DATE.match(v)),
}


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a sample is read: its hundreds of thousands of small
    objects (records, fields) hold no cycles, yet each allocation burst set off full
    collections that cost more than reading the sample (py-spy, 16 sampled .csv.gz parts)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def show(path: Path) -> str:
    """A path as shown in messages: relative to the working directory when under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def codec(encoding: str | None) -> str:
    """Python's name of a declared encoding (utf-8 when none is declared)."""
    return codecs.lookup(encoding or "utf-8").name


def is_utf8(encoding: str | None) -> bool:
    return codec(encoding) == "utf-8"


def open_text(path: Path, encoding: str | None) -> IO[str]:
    """The file as text (gunzipped for .gz), a UTF-8 byte-order mark dropped."""
    name = "utf-8-sig" if is_utf8(encoding) else codec(encoding)
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding=name, newline="")
    return path.open(encoding=name, newline="")


@dataclass(frozen=True)
class Record:
    """One CSV record and the physical line it starts on."""

    line: int
    fields: list[str]


def records(path: Path, delimiter: str, encoding: str | None) -> Iterator[Record]:
    """The file's records with their first line; blank lines skipped.

    DataError naming the file and line for text that is not in the encoding.
    """
    fh = open_text(path, encoding)
    try:
        reader = csv.reader(fh, delimiter=delimiter, strict=False)
        end = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise not_decodable(path, encoding, exc) from None
            except csv.Error as exc:
                raise DataError(f"{show(path)}:{reader.line_num}: cannot read CSV: {exc}") from None
            start, end = end + 1, reader.line_num
            if fields:
                yield Record(start, fields)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{show(path)}: cannot read: {exc}") from None
    finally:
        fh.close()


def not_decodable(path: Path, encoding: str | None, exc: UnicodeDecodeError) -> DataError:
    """The first line of the file that is not in `encoding`, with a hint naming `encoding:`."""
    line, byte = _first_undecodable(path, encoding)
    where = f"{show(path)}:{line}" if line else show(path)
    if is_utf8(encoding):
        hint = (
            "; if it was saved by Excel or another Windows program, declare the source's "
            "encoding (e.g. `encoding: latin-1` or `encoding: cp1252`)"
        )
        return DataError(f"{where}: not UTF-8 text (byte 0x{byte:02x}){hint}")
    return DataError(f"{where}: not {codec(encoding)} text: {exc.reason}")


def _first_undecodable(path: Path, encoding: str | None) -> tuple[int, int]:
    name = codec(encoding)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode(name)
            except UnicodeDecodeError as exc:
                return number, line[exc.start]
    return 0, 0


@dataclass
class Head:
    """A file's header and its first records."""

    path: Path
    header: list[str]
    rows: list[Record]


def read_head(
    path: Path, source: str, delimiter: str | None, encoding: str | None, rows: int
) -> Head:
    """The header and up to `rows` records of one file, checked: a header, no repeated column,
    the declared (or an evident) delimiter, every record as wide as the header."""
    sep = delimiter or ","
    it = records(path, sep, encoding)
    first = next(it, None)
    if first is None:
        raise DataError(f"{show(path)}: empty file (a CSV export needs at least a header line)")
    header = [h.strip() for h in first.fields]
    if delimiter is None and len(header) == 1:
        for other, yaml in _OTHER_DELIMITERS.items():
            if other in first.fields[0]:
                raise DataError(
                    f"{show(path)}:1: the header {first.fields[0][:60]!r} is not comma-"
                    f"delimited but looks {yaml}-delimited; declare it on source '{source}': "
                    f"delimiter: {yaml}"
                )
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{show(path)}:1: column {name!r} appears twice in the header")
        seen.add(name)
    out: list[Record] = []
    for rec in it:
        check_width(path, rec, len(header))
        out.append(rec)
        if len(out) >= rows:
            break
    return Head(path, header, out)


def check_width(path: Path, rec: Record, width: int) -> None:
    """DataError for a record with more or fewer fields than the header."""
    if len(rec.fields) != width:
        raise DataError(
            f"{show(path)}:{rec.line}: this row has {len(rec.fields)} fields, the header has "
            f"{width} (a stray delimiter or quote?)"
        )


def sampled(files: list[Path]) -> list[Path]:
    """The files of a glob whose heads are sampled: all when few, else spread over the list."""
    if len(files) <= SAMPLE_FILES:
        return files
    step = (len(files) - 1) / (SAMPLE_FILES - 1)
    return [files[round(i * step)] for i in range(SAMPLE_FILES)]


def infer(
    values: list[str], candidates: tuple[str, ...], counts: dict[str, int] | None = None
) -> str | None:
    """The first candidate type every value looks like; else the one most values look like,
    when that is more than half of them (the others are then reported as bad values).
    `counts`: the values' `look_counts`, when already counted."""
    if not values:
        return None
    if counts is None:
        counts = look_counts({"": (values, candidates)})[""]
    for typ in candidates:
        if counts[typ] == len(values):
            return typ
    best = max(candidates, key=lambda t: counts[t], default=None)
    if best is not None and counts[best] * 2 > len(values):
        return best
    return None


def _looks(s: pl.Expr, typ: str) -> pl.Expr:
    if typ == "bool":
        return s.is_in(sorted(_BOOL))
    if typ == "datetime":
        return s.str.contains(_DATETIME.pattern) | s.str.contains(_DATE.pattern)
    return s.str.contains({"int": _INT, "float": _FLOAT, "date": _DATE}[typ].pattern)


def look_counts(
    columns: dict[str, tuple[list[str], tuple[str, ...]]],
) -> dict[str, dict[str, int]]:
    """Per column, how many of its values look like each of its candidate types: `_LOOKS`,
    vectorised, every column in one query (the sample holds up to SAMPLE_ROWS values per
    column and file; matching them one by one in Python was most of the start-up time of a
    CSV project, and a query per column and type most of what was left on small ones). The
    patterns are the same; the values are stripped, so Python's `$` (which also matches
    before a final newline) and Rust's agree. Each distinct value is matched once and counts
    as often as it occurs (a sample's columns of countries, stages or owners hold a few
    values thousands of times)."""
    exprs: list[pl.Expr] = []
    for i, (values, candidates) in enumerate(columns.values()):
        seen = Counter(values)
        distinct = pl.lit(pl.Series(list(seen), dtype=pl.String))
        times = pl.lit(pl.Series(list(seen.values()), dtype=pl.Int64))
        exprs += [times.filter(_looks(distinct, t)).sum().alias(f"{i}:{t}") for t in candidates]
    row = pl.select(exprs).row(0, named=True) if exprs else {}
    return {
        col: {typ: int(row[f"{i}:{typ}"]) for typ in candidates}
        for i, (col, (_, candidates)) in enumerate(columns.items())
    }


ANY_TYPE = ("bool", "int", "float", "date", "datetime")
KEY_TYPES = ("int",)
TIME_TYPES = ("date", "datetime")
