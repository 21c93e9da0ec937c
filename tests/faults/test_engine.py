"""An engine failure while evaluating is a data error in one line, never Polars' plan dump."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.faults.common import assert_clean, assert_untouched, invoke, tree


def test_a_failing_collect_is_exit_3_without_the_plan(
    basic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collect = pl.LazyFrame.collect

    def fail(self: pl.LazyFrame, *args: Any, **kwargs: Any) -> Any:
        if "optimizations" not in kwargs:  # reading contacts, not the plan: let it pass
            return collect(self, *args, **kwargs)
        raise pl.exceptions.ComputeError(
            "conversion from `str` to `i64` failed in column 'x'\n\nResolved plan until failure:"
            "\n\n\t---> FAILED HERE RESOLVING 'sink' <---\nSELECT [col(\"a\")] FROM ..."
        )

    before = tree(basic)
    monkeypatch.setattr(pl.LazyFrame, "collect", fail)
    result = invoke(["run", "--as-of", "2026-11-20"], basic)
    assert_clean(result, 3, "evaluating the plan failed: conversion from `str` to `i64`")
    assert "Resolved plan" not in result.output
    assert "SELECT" not in result.output
    assert_untouched(before, basic, own=(".segcli", "out"))


def test_a_failing_pass_over_the_events_is_exit_3_without_the_plan(
    basic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scans and sequence passes are collected together (pl.collect_all)."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise pl.exceptions.ComputeError(
            "conversion from `str` to `i64` failed in column 'x'\n\nResolved plan until failure:"
            "\n\n\t---> FAILED HERE RESOLVING 'sink' <---\nSELECT [col(\"a\")] FROM ..."
        )

    before = tree(basic)
    monkeypatch.setattr(pl, "collect_all", fail)
    result = invoke(["run", "--as-of", "2026-11-20"], basic)
    assert_clean(result, 3, "evaluating the plan failed: conversion from `str` to `i64`")
    assert "Resolved plan" not in result.output
    assert_untouched(before, basic, own=(".segcli", "out"))


def test_an_internal_error_is_one_line(basic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from segcli import api

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("first line\nResolved plan until failure:\nSELECT ...")

    monkeypatch.setattr(api, "make_plan", boom)
    result = invoke(["run", "--as-of", "2026-11-20"], basic)
    assert_clean(result, 4, "internal error: RuntimeError: first line (rerun with --debug")
    assert "Resolved plan" not in result.output


# ---------------------------------------------------------------- the spark engine's run


def _hand_project(
    root: Path, email: str = "{path: email.csv, key: cid, time: at, type: kind}"
) -> Path:
    from tests.conftest import write_project
    from tests.test_reference import HAND_CONTACTS, HAND_EMAIL

    spec = (
        "version: 1\ntimezone: Europe/Berlin\nsources:\n"
        "  contacts: {path: contacts.csv, key: id}\n"
        f"  email: {email}\n"
        "segments:\n  keep: {kind: semi_dynamic, where: {field: age, gte: 30}}\n"
    )
    write_project(root, spec, {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL})
    return root


def test_csv_outputs_on_spark_are_exit_2_before_anything_is_written(tmp_path: Path) -> None:
    root = _hand_project(tmp_path / "p")
    before = tree(root)
    result = invoke(["run", "--as-of", "2026-04-01", "--engine", "spark", "--format", "csv"], root)
    assert_clean(result, 2, "the spark engine writes its outputs as Parquet")
    assert_untouched(before, root)


@pytest.mark.spark
def test_a_corrupt_snapshot_on_spark_is_exit_4_naming_it(tmp_path: Path, spark: Any) -> None:
    root = _hand_project(tmp_path / "p")
    run = ["run", "--as-of", "2026-04-01", "--engine", "spark"]
    assert_clean(invoke(run, root), 0)
    (snapshot,) = (root / ".segcli" / "runs").rglob("keep.parquet")
    snapshot.write_bytes(b"not parquet")
    before = tree(root)
    assert_clean(invoke(run, root), 4, "keep.parquet is missing or corrupt")
    assert_untouched(before, root, own=(".segcli/.lock",))


@pytest.mark.spark
def test_a_failed_spark_write_is_exit_4_and_out_keeps_the_last_run(
    tmp_path: Path, spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyspark.sql import functions as F

    from segcli.engines import spark_state

    root = _hand_project(tmp_path / "p")
    run = ["run", "--as-of", "2026-04-01", "--engine", "spark"]
    assert_clean(invoke(run, root), 0)
    before = tree(root)
    write_all = spark_state.Batch.write_all

    def full_disk(self: spark_state.Batch) -> None:
        self.df = self.df.withColumn("boom", F.expr("raise_error('No space left on device')"))
        write_all(self)

    monkeypatch.setattr(spark_state.Batch, "write_all", full_disk)
    assert_clean(invoke(run, root), 4, "could not write", "No space left on device")
    assert_untouched(before, root, own=(".segcli/.lock",))


@pytest.mark.spark
def test_a_table_source_on_another_engine_is_exit_2_naming_it(tmp_path: Path, spark: Any) -> None:
    spark.range(1).selectExpr(
        "id AS cid", "current_timestamp() AS at", "'x' AS kind"
    ).createOrReplaceTempView("segcli_fault_events")
    root = _hand_project(
        tmp_path / "p", "{table: segcli_fault_events, key: cid, time: at, type: kind}"
    )
    before = tree(root)
    result = invoke(["run", "--as-of", "2026-04-01", "--engine", "polars"], root)
    assert_clean(result, 2, "source 'email' is the table segcli_fault_events", "only the spark")
    assert_untouched(before, root, own=(".segcli", "out"))


def test_an_unreachable_spark_connect_server_is_exit_2_at_once(basic: Path) -> None:
    """Nothing listens at the `sc://` address: exit 2 naming it, at once (PySpark's client
    retried for more than ten minutes), and nothing written."""
    import socket

    pytest.importorskip("pyspark")
    with socket.socket() as probe:  # a loopback port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    before = tree(basic)
    master = f"sc://127.0.0.1:{port}"
    result = invoke(
        ["run", "--as-of", "2026-11-20", "--engine", "spark", "--spark-master", master], basic
    )
    assert_clean(result, 2, f"cannot reach the Spark Connect server at 127.0.0.1:{port}")
    assert_untouched(before, basic, own=(".segcli", "out"))
