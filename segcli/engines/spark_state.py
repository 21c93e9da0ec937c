"""A run's kinds, state and outputs on Spark, without collecting members onto the driver.

The per-contact result of the plan stays a Spark DataFrame (persisted on the executors).
For each segment, the kind's transition (`segcli.state.kinds.transition`, same meaning, tested
against it) runs on Spark: the previous snapshot is read by Spark from the state directory,
the new snapshot, the member file and the change file are Spark DataFrames, and each is
written by one Spark task as one Parquet file (`SparkFrame.write`). The state and output
layout is therefore the same on every engine, so a state made by one engine carries on with
another, and every view reads it the same way. The driver sees counts only, plus the change
rows of segments with `on_enter` / `on_leave` actions, which it delivers itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from segcli import storage
from segcli.engines import sql
from segcli.fs import EngineFrame
from segcli.planning import ir
from segcli.planning.compile import grade_expr
from segcli.planning.history import now_col
from segcli.planning.planner import Plan, base_col, rule_col, segment_col
from segcli.planning.scoring import score_col
from segcli.spec import model as m
from segcli.storage import Loc

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instant(at: datetime) -> Any:
    """A Spark timestamp literal for an aware instant, exact to the microsecond."""
    from pyspark.sql import functions as F

    return F.expr(f"timestamp_micros({(at - _EPOCH) // timedelta(microseconds=1)}L)")


def spark_writes(work: Any) -> None:
    """`work()`, a Spark write; a Spark failure is an OSError saying what Spark said (the
    caller names the file: a WriteError)."""
    try:
        work()
    except Exception as exc:
        from segcli.engines.spark import from_spark, spark_message

        if from_spark(exc):
            raise OSError(f"Spark could not write it: {spark_message(str(exc))}") from exc
        raise


class SparkFrame:
    """A Spark DataFrame that segcli writes (one Parquet file, rows sorted by the columns
    `order`) and never collects."""

    def __init__(self, df: Any, *order: str) -> None:
        self.df = df
        self.order = order

    def write(self, path: Loc) -> None:
        """Write the rows as one Parquet file at `path` (a local path or a URI Spark
        writes to): one Spark task writes a folder beside it, whose single part file is
        then moved to `path`."""
        folder = path.with_name(f".{path.name}.spark-{os.getpid()}")
        try:
            out = self.df.coalesce(1).sortWithinPartitions(*(column(c) for c in self.order))
            spark_writes(lambda: out.write.mode("overwrite").parquet(str(folder)))
            parts = storage.children(folder, "part-*.parquet")
            if len(parts) != 1:  # pragma: no cover - coalesce(1) writes one part
                raise OSError(f"Spark wrote {len(parts)} part files into {folder}, not one")
            storage.replace(parts[0], path)
        finally:
            storage.rmtree(folder)


def column(name: str) -> Any:
    """A column by its exact name (a dot in it is not a struct field)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def read_snapshot(spark: Any, path: Loc, key: str, key_type: str) -> Any:
    """A committed snapshot of the state read by Spark, its key in the contacts key's type."""
    return keyed(spark.read.parquet(str(path)), key, key_type)


def keyed(df: Any, key: str, key_type: str) -> Any:
    """`df` with its key in the contacts key's type."""
    return df.withColumn(key, column(key).cast("bigint" if key_type == "int" else "string"))


def _union(frames: list[Any]) -> Any:
    """The rows of several frames with the same columns, one after another."""
    out = frames[0]
    for more in frames[1:]:
        out = out.unionByName(more)
    return out


def _full_join(rows: Any, others: list[Any], key: str, types: dict[str, str]) -> Any:
    """`rows` fully joined on (seg, key) with the union of `others` (whose other columns are
    `types`); with no others, those columns as nulls."""
    from pyspark.sql import functions as F

    if others:
        return rows.join(_union(others), on=["seg", key], how="full")
    return rows.select("*", *(F.lit(None).cast(t).alias(c) for c, t in types.items()))


def _pick(values: list[str], seg: Any) -> Any:
    """Per row, the text `values[seg]` (one value per segment index)."""
    from pyspark.sql import functions as F

    return F.element_at(F.array(*[F.lit(v) for v in values]), seg + 1)


class Batch:
    """Rows of every segment in one long table (column `seg`: the segment's index), written
    by Spark in one job as one Parquet file per segment (`write_all`), which `Slice.write`
    then moves to where the run wants it."""

    def __init__(self, df: Any, key: str, folder: Loc) -> None:
        self.df, self.key, self.folder = df, key, folder

    def write_all(self) -> None:
        """One job: rows hashed by segment (so each segment's rows are in one task), sorted
        by key within it, written into `folder/seg=N/`."""
        out = self.df.repartition("seg").sortWithinPartitions("seg", column(self.key))
        spark_writes(
            lambda: out.write.mode("overwrite").partitionBy("seg").parquet(str(self.folder))
        )

    def part(self, seg: int) -> Loc | None:
        """Segment `seg`'s one file, or None when it has no rows."""
        parts = storage.children(self.folder / f"seg={seg}", "part-*.parquet")
        if len(parts) > 1:  # pragma: no cover - one task holds each segment's rows
            raise OSError(f"Spark wrote {len(parts)} files for one segment into {self.folder}")
        return parts[0] if parts else None

    def empty(self, path: Loc) -> None:
        """A Parquet file with the batch's columns (less `seg`) and no rows."""
        import pyarrow.parquet as pq
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = to_arrow_schema(self.df.drop("seg").schema, timezone="UTC")
        with storage.sink(path) as into:
            pq.write_table(schema.empty_table(), into)


class Slice:
    """One segment's rows of a Batch: written by moving the file Spark wrote."""

    def __init__(self, batch: Batch, seg: int) -> None:
        self.batch, self.seg = batch, seg

    def write(self, path: Loc) -> None:
        found = self.batch.part(self.seg)
        if found is None:
            self.batch.empty(path)
        else:  # a rename on one file system; the state may be on another (a copy)
            storage.move(found, path)


@dataclass
class Transitions:
    """Every segment's transition of a run, computed on Spark (the meaning of
    segcli.state.kinds.transition): per segment, its snapshot, member file and changes (as
    Slices, written by Spark) and the counts the run's summary reports."""

    names: list[str]
    snapshots: Batch
    members: Batch
    changes: Batch
    counts: dict[str, tuple[int, int, int]]  # members, entered, left
    summaries: Batch | None = None  # snapshots that carry a history summary
    summarised: frozenset[str] = frozenset()

    def snapshot(self, name: str) -> Slice:
        if name in self.summarised:
            assert self.summaries is not None
            return Slice(self.summaries, self.names.index(name))
        return Slice(self.snapshots, self.names.index(name))

    def member_file(self, name: str) -> Slice:
        return Slice(self.members, self.names.index(name))

    def change_file(self, name: str) -> Slice:
        return Slice(self.changes, self.names.index(name))

    def write(self) -> None:
        """Spark writes every segment's snapshot, members and changes: three jobs."""
        for batch in (self.snapshots, self.members, self.changes, self.summaries):
            if batch is not None:
                batch.write_all()

    def changes_of(self, names: list[str]) -> dict[str, pl.DataFrame]:
        """The changes of segments `names` on the driver (those it delivers itself)."""
        from pyspark.sql import functions as F

        from segcli.engines.spark import to_arrow

        if not names:
            return {}
        wanted = [self.names.index(n) for n in names]
        rows = self.changes.df.filter(F.col("seg").isin(wanted))
        frame = pl.from_arrow(to_arrow(rows))
        assert isinstance(frame, pl.DataFrame)
        key = self.changes.key
        return {
            n: frame.filter(pl.col("seg") == i).drop("seg").sort(key)
            for n, i in zip(names, wanted, strict=True)
        }


def transitions(
    spark: Any,
    result: Any,
    names: list[str],
    key: str,
    key_type: str,
    previous: dict[str, Loc | None],
    as_of: datetime,
    refreshed: set[str],
    folder: Loc,
    summaries: dict[str, Any | None] | None = None,
) -> Transitions:
    """Every segment's new snapshot and this run's changes, on Spark, in one long table:
    the current rule / base / member flags of each (segment, contact) that is a member or in
    the base, fully joined with the previous members. `previous`: each segment's last
    committed snapshot file, or None on its first run; `refreshed`: the segments refreshed
    (`--refresh`); `folder`: where Spark writes the batches. `summaries`: the segments whose
    history a condition reads, each with its history as read, a Spark DataFrame (key, member,
    joined, ever, left; None when empty): their snapshots carry the summary on (`ever`,
    `left_at`: the meaning of segcli.state.history.with_summary)."""
    from pyspark.sql import functions as F

    at = instant(as_of)
    flags = [
        F.struct(
            F.lit(i).alias("seg"),
            column(rule_col(n)).alias("rule"),
            column(base_col(n)).alias("base"),
            column(segment_col(n)).alias("member"),
        )
        for i, n in enumerate(names)
    ]
    cur = (
        result.select(column(key), F.explode(F.array(*flags)).alias("f"))
        .select(column(key), "f.*")
        .filter(F.col("member") | F.col("base"))
        .withColumn("c", F.lit(True))
    )
    reads = [
        read_snapshot(spark, path, key, key_type)
        .filter(F.col("member"))
        .select(
            F.lit(i).alias("seg"),
            column(key),
            F.col("joined_at").alias("prev_joined"),
            F.col("source").alias("prev_source"),
            F.lit(True).alias("p"),
        )
        for i, n in enumerate(names)
        if (path := previous.get(n)) is not None
    ]
    prev_types = {"prev_joined": "timestamp", "prev_source": "string", "p": "boolean"}
    joined = _full_join(cur, reads, key, prev_types)
    if reads:  # a contact a previous snapshot names may be gone (`deleted`)
        known = result.select(column(key), F.lit(True).alias("exists"))
        joined = joined.join(known, on=key, how="left")
    else:
        joined = joined.withColumn("exists", F.lit(True))
    # A refresh of a segment whose last snapshot had rows says `refreshed`, else `matched`.
    rows = {n: _row_count(p) for n, p in previous.items() if p}
    reason_in = ["refreshed" if n in refreshed and rows.get(n) else "matched" for n in names]
    reason_out = ["refreshed" if n in refreshed else "unmatched" for n in names]
    c = F.coalesce(F.col("c"), F.lit(False))
    p = F.coalesce(F.col("p"), F.lit(False))
    member = F.coalesce(F.col("member"), F.lit(False))
    source = (
        F.when(F.col("rule") & F.col("base"), F.lit("rule"))
        .when(F.col("base"), F.lit("kept"))
        .otherwise(F.lit("manual"))
    )
    joined = joined.select(
        "seg",
        key,
        c.alias("c"),
        member.alias("member"),
        F.col("base"),
        F.when(member, F.coalesce(F.col("prev_joined"), at)).alias("joined_at"),
        F.when(c, source).alias("source"),
        F.when(c & member & ~p, F.lit("entered")).when(p & ~member, F.lit("left")).alias("change"),
        F.col("prev_source"),
        F.coalesce(F.col("exists"), F.lit(False)).alias("exists"),
    )
    entered = F.col("change") == "entered"
    reason = (
        F.when(entered & (F.col("source") == "manual"), F.lit("manual"))
        .when(entered, _pick(reason_in, F.col("seg")))
        .when(~F.col("exists"), F.lit("deleted"))
        .when(F.coalesce(F.col("base"), F.lit(False)), F.lit("manual"))
        .when(F.col("prev_source") == "manual", F.lit("manual"))
        .otherwise(_pick(reason_out, F.col("seg")))
    )
    joined = joined.withColumn("reason", reason).persist()
    ts = F.col("joined_at").cast("timestamp").alias("joined_at")
    summarised = [names.index(n) for n in summaries or {}]
    plain = joined.filter(~F.col("seg").isin(summarised)) if summarised else joined
    snapshots = plain.filter(F.col("c")).select("seg", key, ts, "source", "member", "base")
    members = joined.filter(F.col("c") & F.col("member")).select("seg", key, ts, "source")
    changes = joined.filter(F.col("change").isNotNull()).select(
        "seg", key, "change", "reason", at.alias("at")
    )
    totals = {
        r["seg"]: r
        for r in joined.groupBy("seg")
        .agg(
            F.count_if(F.col("c") & F.col("member")).alias("size"),
            F.count_if(F.col("change") == "entered").alias("entered"),
            F.count_if(F.col("change") == "left").alias("left"),
        )
        .collect()
    }
    counts = {}
    for i, n in enumerate(names):
        r = totals.get(i)
        counts[n] = (r["size"], r["entered"], r["left"]) if r else (0, 0, 0)
    summary = None
    if summarised:
        carried = _summary(spark, joined, names, key, key_type, summaries or {}, at)
        summary = Batch(carried, key, folder / "summaries")
    return Transitions(
        names,
        Batch(snapshots, key, folder / "snapshots"),
        Batch(members, key, folder / "segments"),
        Batch(changes, key, folder / "changes"),
        counts,
        summary,
        frozenset(summaries or {}),
    )


def _summary(
    spark: Any,
    joined: Any,
    names: list[str],
    key: str,
    key_type: str,
    summaries: dict[str, Any | None],
    at: Any,
) -> Any:
    """The snapshots of the summarised segments: this run's rows fully joined with who was
    ever a member or left before (the history as read), `ever` and `left_at` carried on."""
    from pyspark.sql import functions as F

    wanted = [names.index(n) for n in summaries]
    pasts = [
        keyed(frame, key, key_type)
        .select(
            F.lit(names.index(n)).alias("seg"),
            column(key),
            F.coalesce(F.col("ever") | F.col("member"), F.lit(False)).alias("past_ever"),
            F.col("left").cast("timestamp").alias("past_left"),
            F.lit(True).alias("h"),
        )
        .filter(F.col("past_ever") | F.col("past_left").isNotNull())
        for n, frame in summaries.items()
        if frame is not None
    ]
    past_types = {"past_ever": "boolean", "past_left": "timestamp", "h": "boolean"}
    rows = _full_join(joined.filter(F.col("seg").isin(wanted)), pasts, key, past_types)
    c = F.coalesce(F.col("c"), F.lit(False))
    member = c & F.coalesce(F.col("member"), F.lit(False))
    return rows.filter(c | F.coalesce(F.col("h"), F.lit(False))).select(
        "seg",
        key,
        F.when(c, F.col("joined_at")).cast("timestamp").alias("joined_at"),
        F.when(c, F.col("source")).alias("source"),
        member.alias("member"),
        (c & F.coalesce(F.col("base"), F.lit(False))).alias("base"),
        (member | F.coalesce(F.col("past_ever"), F.lit(False))).alias("ever"),
        F.when(F.col("change") == "left", at).otherwise(F.col("past_left")).alias("left_at"),
    )


def _row_count(path: Loc) -> int:
    """The rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    with storage.source(path) as at:
        return int(pq.ParquetFile(at).metadata.num_rows)


def stored_next(
    spark: Any,
    result: Any,
    plan: Plan,
    key_type: str,
    stored: dict[str, tuple[pl.DataFrame, datetime]],
    at: datetime,
) -> tuple[dict[str, tuple[EngineFrame, str]], list[str]]:
    """The values each `ever: true` column stores after this run, computed and written by
    Spark (the meaning of segcli.state.history.Past.to_store; `stored`: its `stored`, per
    column the values stored so far and since when: the stored (key, value,
    first_at) rows plus this run's, each pair once with the first run that saw it; a
    column whose type changed restarts), and the notes on restarts. Only the types of the
    stored and current values are compared on the driver; no contact's value reaches it."""
    from pyspark.sql import functions as F

    from segcli.engines.spark import send

    key = plan.key
    out: dict[str, tuple[EngineFrame, str]] = {}
    notes: list[str] = []
    stamp = instant(at)
    for c in plan.history_fields:
        now = result.select(column(key), column(now_col(c)).alias("value"), stamp.alias("first_at"))
        old, since = stored.get(c, (None, at))
        rows = now
        if old is not None and old.height:
            if old["value"].dtype != _polars_type(now, "value"):
                notes.append(
                    f"column '{c}' changed type: its stored history (ever: true) "
                    "restarts with this run"
                )
                since = at
            else:
                value_type = now.schema["value"].dataType
                prior = keyed(send(spark, old), key, key_type).select(
                    column(key),
                    F.col("value").cast(value_type).alias("value"),
                    F.col("first_at").cast("timestamp").alias("first_at"),
                )
                rows = now.unionByName(prior)
        firsts = rows.groupBy(column(key), F.col("value")).agg(F.min("first_at").alias("first_at"))
        out[c] = (SparkFrame(firsts, key, "first_at"), since.isoformat())
    return out, notes


def _polars_type(df: Any, name: str) -> pl.DataType:
    """The Polars type of a Spark column, as its rows would come back (toArrow)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(df.select(column(name)).schema, timezone="UTC")
    frame = pl.from_arrow(schema.empty_table())
    assert isinstance(frame, pl.DataFrame)
    return frame.schema[name]


def scores(result: Any, plan: Plan, spec: m.Spec) -> SparkFrame:
    """key, then for each model M: M, M_pct and (with grades) M_grade: the meaning of
    segcli.api.scores_frame, computed on Spark."""
    from pyspark.sql import functions as F

    key = plan.key
    cols = [column(key)]
    for name, sm in spec.scoring.items():
        score = score_col(name, plan.as_of, plan.as_of)
        s = column(score).cast("double")
        cols += [s.alias(name), (s / F.lit(float(sm.sales_ready)) * 100).alias(f"{name}_pct")]
        if sm.grades:
            tr = sql.Translator("spark", rename={"score": score})
            grade = tr.expr(grade_expr(ir.Col("score"), sm)).sql("spark")
            cols.append(F.expr(grade).alias(f"{name}_grade"))
    return SparkFrame(result.select(*cols), key)
