"""The Spark engine: the plan's SQL (segcli.engines.sql_query, Spark dialect) run by PySpark.

Where it runs is the `master`: `--spark-master`, else $SEGCLI_SPARK_MASTER, else `local[2]`
(in-process, N worker threads); `spark://host:7077` is a standalone cluster; an `sc://` URL
connects through Spark Connect (`SparkSession.builder.remote`, e.g. Databricks). Spark reads
the sources itself, by path or glob (segcli.engines.spark_read: typed as the catalog types
them), and runs every filter, aggregate, join and per-contact expression. Contacts' keys are
checked (present, unique) on Spark; only when a check fails is the file read again locally
to say where. List files and the state's history inputs are sent from the driver (the
latter as Arrow); in a run, the previous sets of
semi_dynamic and static segments are read by Spark from the state's snapshot files.

A run (`evaluate`) keeps the per-contact result on Spark, and segcli.engines.spark_state
computes the kinds and writes the snapshots and outputs from there, so members never reach
the driver. `execute` brings the result back as Arrow (compute, preview, the tests): the
same Evaluation frame as the Polars engine.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlglot import exp

from segcli.engines.catalog import Catalog
from segcli.engines.contacts import load_contacts, read_list
from segcli.engines.duckdb import unknown_list_keys
from segcli.engines.history import Histories, stored_values, with_segment_history
from segcli.engines.polars import Evaluation, type_name
from segcli.engines.spark_read import MARK, Reader, q
from segcli.engines.sql import ident, unsupported
from segcli.engines.sql_compile import contacts_relation
from segcli.engines.sql_query import Inputs, build_query, held_in, result_columns
from segcli.errors import DataError, SpecError, UsageError
from segcli.fs import problem_of
from segcli.planning.history import SEGMENT_PARTS, hist_col
from segcli.planning.planner import Plan
from segcli.storage import Loc

ENV_MASTER = "SEGCLI_SPARK_MASTER"
CONNECT_TIMEOUT = 10.0  # seconds to wait for a Spark Connect server to accept a connection
DEFAULT_MASTER = "local[2]"
# What segcli's SQL means only with: instants in UTC, lenient casts (TRY_CAST, the readers'
# checks make a bad value an error), naive Parquet timestamps kept naive (read in the
# project timezone), and column names compared exactly, as the spec writes them.
SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    "spark.sql.caseSensitive": "true",
    # Timestamps written as Parquet's microsecond instants (not INT96), as Polars writes them.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
# For a session segcli starts itself: no web UI, no progress bars on the terminal.
LOCAL_SETTINGS = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}


def master_of(given: str | None = None, configured: str | None = None) -> str:
    """Where Spark runs: `given` (--spark-master), else $SEGCLI_SPARK_MASTER, else
    `configured` (the spec's `engine: {master}`), else local[2]."""
    return given or os.environ.get(ENV_MASTER) or configured or DEFAULT_MASTER


def session(master: str | None = None, conf: dict[str, str] | None = None) -> Any:
    """A SparkSession on `master` with segcli's settings (an active one is reused);
    UsageError naming the extra when PySpark is missing, or Java when Spark cannot start."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise UsageError("the spark engine needs PySpark: pip install 'segcli[spark]'") from exc
    url = master_of(master)
    if url.startswith("sc://"):
        # Spark Connect (Databricks, a Spark Connect server): the server owns the session.
        # PySpark retries an unreachable server for minutes: say so at once instead.
        _check_reachable(url)
        builder = SparkSession.builder.remote(url)
    else:
        builder = SparkSession.builder.master(url).appName("segcli")
        for k, v in LOCAL_SETTINGS.items():
            builder = builder.config(k, v)
    for k, v in {**SETTINGS, **(conf or {})}.items():
        builder = builder.config(k, v)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Py4J / gRPC failures have no common base class
        text = str(exc).strip()
        first = spark_message(text) if text else type(exc).__name__
        if not url.startswith("sc://"):
            hint = "a local master needs Java 17: apt-get install openjdk-17-jre-headless"
        elif "SESSION_ALREADY_EXIST" in text:
            hint = "this process already runs a local Spark session, which PySpark keeps apart"
        elif "UNAUTHENTICATED" in text:
            hint = (
                "the server wants a token: give it in the URL (sc://HOST:PORT/;token=…) or "
                "in $SPARK_CONNECT_AUTHENTICATE_TOKEN"
            )
        else:
            hint = "is it a Spark Connect server of Spark 4?"
        raise UsageError(f"the spark engine cannot start Spark on {url}: {first} ({hint})") from exc
    for k, v in SETTINGS.items():  # an active session keeps its settings: set segcli's
        spark.conf.set(k, v)
    if not url.startswith("sc://"):
        # A failed check (a value that does not parse) is reported by segcli in one line;
        # Spark would log each failed task's stack trace first.
        spark.sparkContext.setLogLevel("FATAL")
    return spark


def connect_address(url: str) -> tuple[str, int]:
    """The host and port of a Spark Connect URL (`sc://HOST[:PORT][/;param=value…]`; the
    port defaults to Spark Connect's 15002); UsageError when it names no host."""
    found = re.fullmatch(r"sc://(\[[^\]]+\]|[^:/;\[\]]+)(?::(\d+))?(?:/.*)?", url)
    if not found:
        raise UsageError(f"the Spark Connect URL {url} names no host: write sc://HOST:PORT")
    return found.group(1).strip("[]"), int(found.group(2) or 15002)


def _check_reachable(url: str) -> None:
    """UsageError when nothing accepts connections at the Spark Connect URL's address."""
    host, port = connect_address(url)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise UsageError(
            f"the spark engine cannot reach the Spark Connect server at {host}:{port} "
            f"({problem_of(exc)}): is it running, and is {url} its address?"
        ) from exc


def to_arrow(df: Any) -> Any:
    """A Spark DataFrame's rows as one Arrow table (classic PySpark or Spark Connect)."""
    return df.toArrow()


def _failed(reader: Reader, exc: Exception) -> DataError:
    """A Spark failure as segcli's error: a reader's check, or a CSV row Spark found
    malformed, located by the catalog's reader (file, line, value); else Spark's message."""
    text = str(exc)
    found = re.search(re.escape(MARK) + r"(\d+)", text)
    if found:
        return reader.locate(int(found.group(1)))
    if "MALFORMED_RECORD" in text or "Malformed records" in text:
        for name in reader.read:
            if reader.catalog.is_csv(name):
                located = reader.read_locally(name)
                if located is not None:
                    return located
    return DataError(f"evaluating the plan on Spark failed: {spark_message(text)}")


def from_spark(exc: BaseException) -> bool:
    """Whether an exception is Spark's (PySpark, or a JVM error through Py4J): the ones
    segcli turns into its own errors, since they have no common base class."""
    return type(exc).__module__.startswith(("pyspark", "py4j", "grpc"))


def spark_message(text: str) -> str:
    """The line of a Spark/Py4J error that says what failed (not the Py4J call); a Spark
    Connect (gRPC) error's details."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    grpc = re.search(r'details = "(.+?)"', text)  # a Spark Connect (gRPC) failure
    if grpc:
        return grpc.group(1)
    for ln in lines:
        if re.match(r"^(\S+Exception: )?\[[A-Z_.]+\]", ln):
            return re.sub(r"^\S+Exception: ", "", ln)
    for ln in lines:
        if "Exception: " in ln and not ln.startswith("at "):
            return ln.split("Exception: ", 1)[1]
    return lines[0] if lines else "unknown error"


def _keys(spark: Any, items: list[Any], typ: str, view: str) -> None:
    """Keys sent from the driver as a one-column view `k`."""
    from pyspark.sql import types as st

    spark_type = st.LongType() if typ == "int" else st.StringType()
    schema = st.StructType([st.StructField("k", spark_type)])
    spark.createDataFrame([(k,) for k in items], schema).createOrReplaceTempView(view)


def _check_contacts(spark: Any, reader: Reader, plan: Plan, contacts: Any) -> None:
    """Contacts' keys present and unique, relation-one keys unique: counted on Spark; when
    one is not, the local reader says where (file, line, value)."""
    assert plan.spec is not None
    spec = plan.spec
    counts = [
        f"(SELECT count(*) = count({q(plan.key)}) AND count(*) = count(DISTINCT "
        f"{q(plan.key)}) AND count(*) > 0 FROM __contacts_raw)"
    ]
    for name, src in spec.sources.items():
        if name != "contacts" and src.relation == "one":
            rel = reader.frame(name, [src.key])
            rel.createOrReplaceTempView(f"__one_{ident(name)}")
            counts.append(
                f"(SELECT count({q(src.key)}) = count(DISTINCT {q(src.key)}) "
                f"FROM __one_{ident(name)})"
            )
    contacts.createOrReplaceTempView("__contacts_raw")
    ok = spark.sql("SELECT " + " AND ".join(counts) + " AS ok").collect()[0][0]
    if not ok:
        load_contacts(spec, reader.catalog, set(plan.contact_columns))  # raises, located
        raise DataError("contacts: a key is empty or repeated (the spark engine's check)")


@dataclass
class SparkEvaluation:
    """A plan evaluated on Spark and kept there: `result` is the per-contact DataFrame (key,
    the rule / base / member column of each segment, scores), persisted on the executors
    and never collected (segcli.engines.spark_state writes a run from it)."""

    spark: Any
    result: Any
    plan: Plan
    key_type: str
    reader: Reader
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def segments(self) -> list[str]:
        """The evaluated segments, in dependency order."""
        return self.plan.order

    def guarded(self, work: Any) -> Any:
        """`work()`, with a Spark failure turned into segcli's located error."""
        return _guarded(self.reader, work)

    def send(self, frame: pl.DataFrame | None) -> Any:
        """`frame` as a Spark DataFrame (sent from the driver), or None when it has no rows."""
        if frame is None or frame.height == 0:
            return None
        return send(self.spark, frame)

    def release(self) -> None:
        """Free what the run kept on the executors."""
        self.spark.catalog.clearCache()


Previous = Mapping[str, "pl.Series | Loc | None"]


def execute(
    plan: Plan,
    catalog: Catalog,
    previous: Previous | None = None,
    master: str | None = None,
    conf: dict[str, str] | None = None,
    histories: Histories | None = None,
) -> Evaluation:
    """Run a plan on Spark and bring the per-contact result to the driver: the same
    Evaluation as segcli.engines.polars.execute (for compute, preview and the tests; a run
    keeps it on Spark: `evaluate`). `conf`: Spark settings (the spec's `engine: {conf}`),
    for a session segcli starts."""
    ev = evaluate(plan, catalog, previous, master, conf, histories, keep=False)
    table = ev.guarded(lambda: to_arrow(ev.result))
    key_dtype = catalog.schema("contacts")[plan.key]
    return Evaluation.of_rows(table, plan, key_dtype, ev.warnings, ev.seconds)


def _guarded(reader: Reader, work: Any) -> Any:
    """`work()`, with a Spark failure turned into segcli's located error."""
    try:
        return work()
    except (DataError, SpecError):
        raise
    except Exception as exc:
        if from_spark(exc):
            raise _failed(reader, exc) from exc
        raise


def evaluate(
    plan: Plan,
    catalog: Catalog,
    previous: Previous | None = None,
    master: str | None = None,
    conf: dict[str, str] | None = None,
    histories: Histories | None = None,
    keep: bool = True,
) -> SparkEvaluation:
    """Run a plan on Spark, keeping the per-contact result there. With `keep`, the result
    is persisted and computed now (so a bad value fails here, located); else it is the
    lazy DataFrame. `previous`: each segment's previous rule-made set, as keys or as the
    committed snapshot file (which Spark reads itself)."""
    t0 = time.perf_counter()
    assert plan.spec is not None
    spec = plan.spec
    key = plan.key
    spark = session(master, conf)
    contact_types = {c: type_name(t) for c, t in catalog.schema("contacts").items()}
    key_type = contact_types[key]
    key_dtype = catalog.schema("contacts")[key]
    reader = Reader(spark, catalog, key_type)
    dedupe = {r.name for r in plan.sources if r.dedupe}
    views: dict[tuple[str, tuple[str, ...]], str] = {}

    def source(name: str, columns: list[str]) -> exp.Select:
        cols = tuple(columns)
        if (name, cols) not in views:
            view = f"__src_{len(views)}"
            reader.frame(name, columns, name in dedupe).createOrReplaceTempView(view)
            views[name, cols] = view
        return exp.select("*").from_(exp.to_table(views[name, cols]))

    def in_list(item: exp.Expr, path: str) -> exp.Expr:
        return exp.In(this=item, query=exp.select("k").from_(lists[path]).subquery())

    prev: dict[str, str] = {}

    def in_previous(item: exp.Expr, segment: str) -> exp.Expr:
        if segment not in prev:
            return exp.false()
        return exp.In(this=item, query=exp.select("k").from_(prev[segment]).subquery())

    stored: dict[str, str] = {}

    warnings: list[str] = []
    lists: dict[str, str] = {}

    def build() -> Any:
        relation = contacts_relation(spec, plan, source, key_type, {}, "spark")
        own = [
            c
            for c in plan.contact_columns
            if "." not in c or c.split(".", 1)[0] not in spec.sources
        ]
        _check_contacts(spark, reader, plan, reader.frame("contacts", [key, *own]))
        spark.sql(relation.sql("spark")).createOrReplaceTempView("__contacts_own")
        joined = _segment_history(spark, plan, histories, key_dtype, "__contacts_own")
        spark.sql(joined).createOrReplaceTempView("__contacts")
        for i, (column, values) in enumerate(stored_values(plan, histories, key_dtype).items()):
            stored[column] = f"__stored_{i}"
            named = values.rename({column: ident(column)})
            send(spark, named).createOrReplaceTempView(stored[column])
        for i, rel in enumerate(plan.lists):
            keys = read_list(spec, rel, key_dtype)
            lists[rel] = f"__list_{i}"
            _keys(spark, keys.to_list(), key_type, lists[rel])
            found = spark.sql(
                f"SELECT DISTINCT l.k FROM {lists[rel]} l JOIN __contacts c "
                f"ON l.k = c.{q(ident(key))}"
            )
            known = pl.Series([r[0] for r in found.collect()], dtype=key_dtype)
            warnings.extend(unknown_list_keys(rel, keys, known))
        for i, (name, item) in enumerate((previous or {}).items()):
            if item is None:
                continue
            prev[name] = f"__prev_{i}"
            if not isinstance(item, pl.Series):
                from segcli.engines.spark_state import read_snapshot

                rows = read_snapshot(spark, item, key, key_type).filter("base")
                rows.selectExpr(f"{q(key)} AS k").createOrReplaceTempView(prev[name])
            else:
                _keys(spark, item.cast(key_dtype).to_list(), key_type, prev[name])
        inputs = Inputs(
            source,
            lambda name: name in dedupe,
            exp.select("*").from_("__contacts"),
            key_type,
            {r.name: key_type for r in plan.sources},
            in_list,
            in_previous,
            held_in(stored),
        )
        try:
            query = build_query(plan, "spark", inputs, result_columns(plan), spec.file)
        except NotImplementedError as exc:  # a construct whose SQL is not written yet
            what = str(exc).removeprefix("no SQL for ") + " (its SQL is not written yet)"
            raise unsupported("spark", what, spec.file) from exc
        result = spark.sql(query.sql("spark"))
        if keep:
            # Computed now and kept on the executors, with its lineage cut: every frame a
            # run derives from it then has a plan of a few nodes (a derived frame of the
            # whole query is analysed again each time; with two dozen segments, that alone
            # took minutes on the demo).
            result = result.localCheckpoint(eager=True)
        return result

    result = _guarded(reader, build)
    seconds = time.perf_counter() - t0
    return SparkEvaluation(spark, result, plan, key_type, reader, warnings, seconds)


def send(spark: Any, frame: pl.DataFrame) -> Any:
    """The rows of a driver-side frame (the state's history inputs) as a Spark DataFrame,
    sent as Arrow: with a cluster or a Spark Connect server, nothing needs a path both
    sides can see."""
    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    if table.num_rows == 0:  # Spark Connect infers no schema from no rows: give it
        from pyspark.sql.pandas.types import from_arrow_schema

        return spark.createDataFrame([], from_arrow_schema(table.schema))
    return spark.createDataFrame(table)


def _segment_history(
    spark: Any,
    plan: Plan,
    histories: Histories | None,
    key_dtype: pl.DataType,
    contacts: str,
) -> str:
    """The SQL of the contacts with every `hist_col(X, part)` the plan reads: the parts
    of every contact the state's history names (segcli.engines.history.with_segment_history,
    sent from the driver), left-joined on the key; null for the other contacts."""
    if not plan.history_segments:
        return f"SELECT * FROM {contacts}"
    frames = histories.segments if histories else {}
    key = pl.col(plan.key).cast(key_dtype, strict=False)
    named = [frames[n].select(key) for n in plan.history_segments if n in frames]
    keys = pl.concat([pl.DataFrame(schema={plan.key: key_dtype}), *named]).drop_nulls().unique()
    parts = with_segment_history(keys, plan, histories)
    send(spark, parts.rename({plan.key: "k"})).createOrReplaceTempView("__history")
    items = ", ".join(
        f"h.{q(hist_col(n, p))} AS {q(ident(hist_col(n, p)))}"
        for n in plan.history_segments
        for p in SEGMENT_PARTS
    )
    on = f"c.{q(ident(plan.key))} = h.k"
    return f"SELECT c.*, {items} FROM {contacts} c LEFT JOIN __history h ON {on}"
