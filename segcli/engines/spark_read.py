"""Sources as Spark reads them, typed exactly as the Polars engine types them.

Spark reads every file itself (by path or glob, `.csv`, `.csv.gz` and Parquet); nothing passes
through the driver. The column types are the catalog's (segcli.engines.catalog: declared, or
inferred from the files' heads), so both engines agree on what a column is. The text of a CSV
cell becomes a value by Spark SQL written to accept only the forms segcli's own parser
(csv_stream.parse_text) reads the same way; a non-blank cell that does not parse stops the
job with `raise_error` and a marker, and the driver then finds and reports the file, line
and value with the catalog's reader (`locate`), as the Polars engine would. A naive
timestamp is read in the project timezone (the earlier instant when the wall-clock time
occurs twice, an error when it does not occur); an event source's key takes the contacts
key's type, and a key that cannot is an error — never a float, never silently null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import polars as pl
from sqlglot import exp

from segcli.engines.catalog import Catalog, display_path, short_error
from segcli.engines.csv_stream import DTYPES
from segcli.engines.polars import type_name
from segcli.engines.sql import local_midnight
from segcli.engines.sql_query import ROW
from segcli.errors import DataError

MARK = "segcli-unreadable:"  # raise_error's message prefix; the suffix indexes Reader.checks
_WS = r"^\s+|\s+$"
_INT = r"^[+-]?[0-9]+$"
_FLOAT = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$|^-?(inf|Infinity|NaN|nan)$"
_DATE = r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$"
_DATETIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,9})?"
    r"([+-][0-9]{2}:[0-9]{2})?$"
)
_NEVER = "\u0000segcli-null\u0000"  # a text no cell holds
_SPARK_TYPES = {"int": "bigint", "float": "double", "str": "string", "bool": "boolean"}


def q(name: str) -> str:
    """A column name quoted for Spark SQL."""
    return "`" + name.replace("`", "``") + "`"


def s(text: str) -> str:
    """A string literal for Spark SQL."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_text_sql(raw: str, typ: str, tz: str) -> str:
    """Spark SQL turning a text column into `typ` as csv_stream.parse_text does; null for a
    value the forms accepted here do not cover (the caller's check makes that an error)."""
    t = f"regexp_replace({raw}, {s(_WS)}, '')"
    if typ == "str":
        return raw
    if typ == "int":
        return f"CASE WHEN {t} RLIKE {s(_INT)} THEN CAST({t} AS BIGINT) END"
    if typ == "float":
        return f"CASE WHEN {t} RLIKE {s(_FLOAT)} THEN CAST({t} AS DOUBLE) END"
    if typ == "bool":
        return f"CASE lower({t}) WHEN 'true' THEN true WHEN 'false' THEN false END"
    if typ == "date":
        return f"CASE WHEN {t} RLIKE {s(_DATE)} THEN CAST({t} AS DATE) END"
    # datetime: the same rewriting as parse_text (Z as +00:00, a space as T, a date alone
    # at midnight, seconds added to HH:MM), then one strict form, with or without offset
    n = f"regexp_replace({t}, '[zZ]$', '+00:00')"
    n = f"regexp_replace({n}, '^([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}) ', '$1T')"
    n = f"CASE WHEN length({n}) = 10 THEN concat({n}, 'T00:00:00') ELSE {n} END"
    n = f"regexp_replace({n}, '(T[0-9]{{2}}:[0-9]{{2}})([+-]|$)', '$1:00$2')"
    n = f"regexp_replace({n}, '([+-][0-9]{{2}})([0-9]{{2}})$', '$1:$2')"
    aware = f"CAST({n} AS TIMESTAMP)"
    naive = local_sql(f"CAST({n} AS TIMESTAMP_NTZ)", tz)
    return (
        f"CASE WHEN NOT {n} RLIKE {s(_DATETIME)} THEN NULL "
        f"WHEN {n} RLIKE '[+-][0-9]{{2}}:[0-9]{{2}}$' THEN {aware} ELSE {naive} END"
    )


def local_sql(naive: str, tz: str) -> str:
    """A naive (wall-clock) timestamp in `tz` as its UTC instant, as the catalog reads it."""
    tree = local_midnight(exp.maybe_parse(naive, dialect="spark"), tz, "spark")
    return tree.sql("spark")


@dataclass
class Reader:
    """Reads a spec's sources on one SparkSession; remembers what each check guards."""

    spark: Any
    catalog: Catalog
    key_type: str
    checks: list[tuple[str, str, str]] = field(default_factory=list)  # source, column, type
    read: list[str] = field(default_factory=list)  # the sources read, in order

    def checked(self, source: str, column: str, typ: str, raw: str, parsed: str) -> str:
        """`parsed`, or the job stops when `raw` has a value that did not parse."""
        self.checks.append((source, column, typ))
        mark = s(f"{MARK}{len(self.checks) - 1}")
        blank = f"regexp_replace(CAST({raw} AS STRING), {s(_WS)}, '') = ''"
        return (
            f"CASE WHEN {raw} IS NOT NULL AND NOT {blank} AND ({parsed}) IS NULL "
            f"THEN raise_error({mark}) ELSE {parsed} END"
        )

    def types(self, name: str) -> dict[str, str]:
        """The catalog's segcli type of every column of a source (the key aligned)."""
        types = {c: type_name(t) for c, t in self.catalog.schema(name).items()}
        src = self.catalog.sources[name]
        if name != "contacts" and src.key in types:
            types[src.key] = self.key_type
        return types

    def frame(self, name: str, columns: list[str], ordered: bool = False) -> Any:
        """A source's `columns`, typed as segcli types them; with `ordered`, a file-order
        column ROW (file position in the sorted file list, then row within the file)."""
        if name not in self.read:
            self.read.append(name)
        if self.catalog.is_remote(name):
            return self._typed(name, remote_frame(self.spark, self.catalog.sources[name]), columns)
        if self.catalog.is_csv(name):
            return self._csv(name, columns, ordered)
        return self._parquet(name, columns, ordered)

    def _csv(self, name: str, columns: list[str], ordered: bool) -> Any:
        from pyspark.sql.types import StringType, StructField, StructType

        src = self.catalog.sources[name]
        files = self.catalog.files(name)
        reader = self.catalog.csv(name)
        types = self.types(name)
        frames = []
        by_header: dict[tuple[str, ...], list[Path]] = {}
        for f in files:
            by_header.setdefault(tuple(reader.headers[f]), []).append(f)
        for header, group in by_header.items():
            schema = StructType([StructField(c, StringType()) for c in header])
            # Quoted values may hold line breaks, so a file is read whole by one task
            # (multiLine); that also keeps a file's rows in order for dedupe's keep-first.
            df = self.spark.read.csv(
                [str(f.resolve()) for f in group],
                schema=schema,
                header=True,
                enforceSchema=True,
                sep=src.delimiter or ",",
                quote='"',
                escape='"',
                multiLine=True,
                encoding=src.encoding or "UTF-8",
                # An empty cell is null, a quoted empty one ("") the empty text, as Polars
                # reads them (Spark's default nullValue "" would make both null).
                nullValue=_NEVER,
                mode="FAILFAST",
            )
            frames.append(df)
        df = frames[0]
        for other in frames[1:]:
            df = df.unionByName(other, allowMissingColumns=True)
        items = []
        for c in columns:
            typ = types.get(c, "str")
            raw = q(c)
            e = raw
            if typ != "str":
                e = self.checked(name, c, typ, raw, parse_text_sql(raw, typ, self.catalog.timezone))
            items.append(f"{e} AS {q(c)}")
        if ordered:
            df = self._order(df, files, "monotonically_increasing_id()")
            items.append(q(ROW))
        return df.selectExpr(*items)

    def _order(self, df: Any, files: list[Path], pos: str) -> Any:
        """`df` with ROW: (the file's position in the sorted file list, the row's position
        in its file), ordered like the Polars engine's row index over the files in turn."""
        index = {str(f.resolve()): i for i, f in enumerate(files)}
        cases = []
        for uri in df.inputFiles():
            path = unquote(re.sub(r"^file:(//)?", "", uri))
            if path in index:
                cases.append(f"WHEN {s(uri)} THEN {index[path]}")
        if len(cases) != len(files):  # pragma: no cover - Spark lists the files it was given
            raise DataError(f"the spark engine read other files than {display_path(files[0])}")
        file = f"CASE input_file_name() {' '.join(cases)} END"
        return df.selectExpr("*", f"named_struct('file', {file}, 'row', {pos}) AS {q(ROW)}")

    def _parquet(self, name: str, columns: list[str], ordered: bool) -> Any:
        files = self.catalog.files(name)
        df = self.spark.read.parquet(*[str(f.resolve()) for f in files])
        if ordered:
            df = self._order(df, files, "_metadata.row_index")
        return self._typed(name, df, columns, ordered)

    def _typed(self, name: str, df: Any, columns: list[str], ordered: bool = False) -> Any:
        """`columns` of a typed source (Parquet files, a catalog table) in the types the
        catalog gives them; a naive timestamp read in the project timezone."""
        from pyspark.sql.types import TimestampNTZType

        types = self.types(name)
        raw_types = {f.name: f.dataType for f in df.schema.fields}
        items = []
        for c in columns:
            raw, typ = q(c), types.get(c, "str")
            spark_type = raw_types.get(c)
            have = _segcli_type(spark_type)
            e = raw
            if isinstance(spark_type, TimestampNTZType):
                e = self.checked(name, c, "datetime", raw, local_sql(raw, self.catalog.timezone))
            elif have != typ:
                e = self.checked(name, c, typ, raw, self._convert(name, c, raw, have, typ))
            items.append(f"{e} AS {q(c)}")
        if ordered:
            items.append(q(ROW))
        return df.selectExpr(*items)

    def _convert(self, name: str, column: str, raw: str, have: str, want: str) -> str:
        """A Parquet column's value in the type the catalog gives it (declared, or the
        contacts key's type for an event key), where both engines convert alike."""
        if have == "str" and want in ("int", "float", "bool", "date"):
            return parse_text_sql(raw, want, self.catalog.timezone)
        if have in ("int", "float") and want in ("int", "float"):
            return f"CAST({raw} AS {_SPARK_TYPES[want]})"
        if want == "str" and have in ("int", "bool", "date", "str"):
            return f"CAST({raw} AS STRING)"
        raise DataError(
            f"source '{name}': column '{column}' is {have} in its Parquet files; the spark engine "
            f"does not convert {have} to {want} (declare the column's own type, or use "
            "--engine polars)"
        )

    def read_locally(self, name: str) -> DataError | None:
        """The error the catalog's reader finds in a source (its columns), or None."""
        try:
            self.catalog.frame(name).collect()
        except DataError as exc:
            return exc
        except pl.exceptions.PolarsError as exc:
            return DataError(f"source '{name}': cannot read: {short_error(exc)}")
        return None

    def locate(self, index: int) -> DataError:
        """The error for a failed check: the first bad value, found by the catalog's reader
        (file, line or row, value), or what Spark could not read when that reader can."""
        source, column, typ = self.checks[index]
        try:
            self.catalog.frame(source).select(column).collect()
        except DataError as exc:
            return exc
        except pl.exceptions.PolarsError as exc:
            return DataError(f"source '{source}': column '{column}': {short_error(exc)}")
        files = ", ".join(display_path(f) for f in self.catalog.files(source)[:3])
        return DataError(
            f"source '{source}' ({files}): column '{column}' holds a value the spark engine "
            f"cannot read as {typ} in the form the polars engine reads it; run with "
            "--engine polars, or write the value in ISO form"
        )


def remote_frame(spark: Any, src: Any) -> Any:
    """A source only Spark reads: its catalog table, or the Parquet files at its URI."""
    return spark.table(src.table) if src.table else spark.read.parquet(src.path)


def table_schema(spark: Any, src: Any) -> dict[str, pl.DataType]:
    """The columns of a catalog table or of the Parquet files at a URI (SPEC §3.1), as the
    catalog types a source's; a column of a type segcli has none for is left out (conditions
    on it are then unknown columns, reported with the spec's line)."""
    from segcli.engines.spark import from_spark, spark_message

    what = f"table {src.table}" if src.table else src.path
    try:
        fields = remote_frame(spark, src).schema.fields
    except Exception as exc:
        if from_spark(exc):
            raise DataError(f"source '{src.name}' ({what}): {spark_message(str(exc))}") from exc
        raise
    out: dict[str, pl.DataType] = {}
    for f in fields:
        typ = _segcli_type(f.dataType)
        if typ != "other":
            out[f.name] = DTYPES[typ]
    return out


def _segcli_type(spark_type: Any) -> str:
    """segcli's type name of a Spark data type."""
    from pyspark.sql import types as st

    if isinstance(spark_type, st.IntegralType):
        return "int"
    if isinstance(spark_type, st.FractionalType):
        return "float"
    if isinstance(spark_type, st.StringType):
        return "str"
    if isinstance(spark_type, st.BooleanType):
        return "bool"
    if isinstance(spark_type, st.DateType):
        return "date"
    if isinstance(spark_type, st.TimestampType | st.TimestampNTZType):
        return "datetime"
    return "other"


def polars_type(typ: str) -> pl.DataType:
    """The Polars dtype of a segcli type (for frames built from Spark's results)."""
    return DTYPES.get(typ, pl.String())
