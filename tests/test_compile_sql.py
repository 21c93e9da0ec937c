"""`segcli compile`: SQL for every dialect parses with sqlglot; the DuckDB SQL, run as is,
reproduces the Polars engine's memberships and scores; the bucket hash is bit-exact; a
semantic a dialect cannot express is a spec error naming it."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import sqlglot
from test_reference import HAND_AS_OF, HAND_CONTACTS, HAND_EMAIL, HAND_SEGMENTS, HAND_SOURCES
from typer.testing import CliRunner

from segcli import api
from segcli.cli import app
from segcli.engines.sql import DIALECTS, bucket
from segcli.errors import SpecError
from segcli.planning.compile import bucket_of

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-20"


@pytest.fixture(scope="module")
def demo() -> api.Project:
    return api.load(ROOT / "segments.yaml")


def run_duckdb(sql: str) -> pl.DataFrame:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def assert_same_as_polars(project: api.Project, sql: str, as_of: Any) -> None:
    got = run_duckdb(sql)
    ev, _ = api.compute(project, as_of)
    key = project.spec.contacts.key
    assert got[key].to_list() == ev.contact_keys().to_list()
    for name in project.spec.segments:
        assert got[name].to_list() == ev.member(name).to_list(), name
    for model in project.spec.scoring:
        for a, b in zip(got[model].to_list(), ev.score(model).to_list(), strict=True):
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), model


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_parses(demo: api.Project, dialect: str) -> None:
    sql = api.compile_sql(demo, dialect, AS_OF)
    tree = sqlglot.parse_one(sql, read=dialect)
    names = [s.alias_or_name for s in tree.selects]
    assert names == [demo.spec.contacts.key, *demo.spec.segments, *demo.spec.scoring]


def test_duckdb_sql_reproduces_the_demo(demo: api.Project) -> None:
    """Pooled sources, top n / percent, decay, bucket, lists, CSV and Parquet, dedupe."""
    assert_same_as_polars(demo, api.compile_sql(demo, "duckdb", AS_OF), AS_OF)


def test_duckdb_sql_reproduces_hand_cases(make_project: Any) -> None:
    """Null rule, include_missing, window boundaries, DST periods, zero-row contacts."""
    segs = "\n".join(f"  s{i}: {{where: {c}}}" for i, (c, _) in enumerate(HAND_SEGMENTS))
    spec = HAND_SOURCES + "segments:\n" + segs + "\n"
    project = make_project(spec, {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL})
    got = run_duckdb(api.compile_sql(project, "duckdb", HAND_AS_OF))
    for i, (cond, expected) in enumerate(HAND_SEGMENTS):
        assert set(got.filter(pl.col(f"s{i}"))["id"].to_list()) == expected, cond


def test_segment_option_keeps_only_wanted_columns(demo: api.Project) -> None:
    sql = api.compile_sql(demo, "duckdb", AS_OF, ["newsletter_treatment"])
    got = run_duckdb(sql)
    assert got.columns == [demo.spec.contacts.key, "newsletter_treatment", *demo.spec.scoring]
    ev, _ = api.compute(demo, AS_OF)
    assert got["newsletter_treatment"].to_list() == ev.member("newsletter_treatment").to_list()


def test_bucket_hash_is_bit_exact_in_duckdb() -> None:
    """sha256("salt:key"), first 8 bytes big-endian, mod 10000, for text and integer keys."""
    keys: list[Any] = ["a", "ü-ß", "contact 7", "", *range(0, 3000, 7), 2**62]
    con = duckdb.connect()
    for k in keys:
        value = (
            sqlglot.exp.Literal.string(k) if isinstance(k, str) else sqlglot.exp.Literal.number(k)
        )
        sql = sqlglot.exp.select(bucket(value, "spring-test", "duckdb")).sql("duckdb")
        row = con.execute(sql).fetchone()
        assert row is not None and row[0] == bucket_of("spring-test", str(k)), k


@pytest.mark.parametrize("dialect", ["postgres", "snowflake"])
def test_perl_regex_is_an_error_naming_the_dialect(make_project: Any, dialect: str) -> None:
    spec = HAND_SOURCES + "segments:\n  digits: {where: {field: email, matches: '\\d+@'}}\n"
    project = make_project(spec, {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL})
    with pytest.raises(SpecError) as info:
        api.compile_sql(project, dialect, HAND_AS_OF)
    assert f"the {dialect} dialect cannot express" in info.value.diagnostics[0].message
    sqlglot.parse_one(api.compile_sql(project, "trino", HAND_AS_OF), read="trino")


def test_cli_compile_prints_sql_and_exits_2_on_bad_dialect() -> None:
    env = {"COLUMNS": "100", "NO_COLOR": "1"}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        runner = CliRunner()
        ok = runner.invoke(app, ["compile", "--dialect", "duckdb", "--as-of", AS_OF], env=env)
        bad = runner.invoke(app, ["compile", "--dialect", "oracle"], env=env)
    finally:
        os.chdir(cwd)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("-- segcli compile: duckdb, as of 2026-11-19T23:00:00+00:00\n")
    assert bad.exit_code == 2
    assert "unknown dialect 'oracle'" in bad.output
