"""Sources only Spark reads (SPEC §3.1): `table:` (a Spark catalog table) and a `path:` URI.

On Spark, a table source and a `file://` URI give the memberships and scores the same rows
give from local files on Polars; the spec's errors (path and table, table or URI on
contacts, dedupe, a bad name, CSV at a URI, a missing table); another engine refuses them
with exit 2; `compile` names the table; run.json records them; data checks say they did not
run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import write_project
from test_engines_duckdb import compute
from test_reference import HAND_AS_OF, HAND_CONTACTS, HAND_EMAIL, HAND_SEGMENTS

from segcli import api
from segcli.errors import DataError, SpecError, UsageError

pytestmark = pytest.mark.spark

SEGMENTS = "segments:\n" + "\n".join(
    f"  s{i}: {{where: {c}}}" for i, (c, _) in enumerate(HAND_SEGMENTS) if "event" in c
)
SCORING = """
scoring:
  clicks:
    rules:
      - {name: click, points: 5, each: true, when: {event: {source: email, type: click}}}
"""


def _spec(email: str, engine: str = "engine: spark\n") -> str:
    return (
        f"version: 1\ntimezone: Europe/Berlin\n{engine}sources:\n"
        "  contacts: {path: contacts.csv, key: id}\n"
        f"  email: {{{email}, key: cid, time: at, type: kind}}\n" + SEGMENTS + "\n" + SCORING
    )


@pytest.fixture(scope="module")
def email_table(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The hand cases' email rows as a Spark table (a temporary view), typed as the
    catalog types the CSV file."""
    root = tmp_path_factory.mktemp("table_src")
    cfg = write_project(
        root, _spec("path: email.csv", ""), {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL}
    )
    rows = api.load(cfg).catalog.frame("email").collect()
    rows.write_parquet(root / "email.parquet")
    spark.read.parquet(str(root / "email.parquet")).createOrReplaceTempView("segcli_email_events")
    return "segcli_email_events"


@pytest.fixture(scope="module")
def email_uri(email_table: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same rows as Parquet files at a `file://` URI (a glob), as Spark reads s3://."""
    from segcli.engines import spark as spark_engine

    folder = tmp_path_factory.mktemp("uri_src")
    rows = spark_engine.session().table(email_table)
    rows.repartition(2).write.parquet(str(folder / "email"))
    return f"file://{folder}/email/*.parquet"


@pytest.mark.parametrize("kind", ["table", "uri"])
def test_a_source_only_spark_reads_gives_what_its_files_give(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Schema, members and scores as from the local file on Polars; a whole run writes the
    same member files; run.json records the input; another engine refuses it (exit 2)."""
    where = request.getfixturevalue(f"email_{kind}")
    given = f"table: {where}" if kind == "table" else f"path: '{where}'"
    files = {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL}
    by_file = api.load(write_project(tmp_path / "f", _spec("path: email.csv", ""), files))
    remote = api.load(write_project(tmp_path / "r", _spec(given), {"contacts.csv": HAND_CONTACTS}))
    assert remote.catalog.schema("email") == by_file.catalog.schema("email")
    want = compute(by_file, HAND_AS_OF, "polars")
    got = compute(remote, HAND_AS_OF, "spark")
    assert got.members == want.members and got.scores == want.scores
    assert any(want.members.values())  # the cases do select someone
    assert api.run(remote, as_of=HAND_AS_OF).engine == "spark"
    manifest = json.loads((tmp_path / "r" / "out" / "run.json").read_text())
    assert {"source": "email", kind: where} in manifest["inputs"]
    for name, keys in want.members.items():
        members = pl.read_parquet(tmp_path / "r" / "out" / "segments" / f"{name}.parquet")
        assert set(members["id"]) == keys, name
    for engine in ("polars", "duckdb"):
        with pytest.raises(UsageError, match=r", which only the spark engine reads"):
            api.compute(remote, HAND_AS_OF, engine=engine)


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("path: email.csv, table: t", "gives both 'path' and 'table'"),
        ("table: t, dedupe: [cid]", "'dedupe' keeps the first row in file order"),
        ("table: 'db.t; drop'", "use NAME, DB.NAME or CATALOG.DB.NAME"),
        ("path: 's3://bucket/email/*.csv'", "a URI must name Parquet files"),
        ("path: 's3://b/e/*.parquet', dedupe: [cid]", "'dedupe' is for local files"),
    ],
)
def test_table_spec_errors(email: str, message: str, tmp_path: Path) -> None:
    cfg = write_project(
        tmp_path, _spec(email), {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL}
    )
    with pytest.raises(SpecError) as err:
        api.load(cfg, with_data=False)
    (diag,) = err.value.diagnostics
    assert message in diag.message
    assert diag.line == 6  # the email source's line


@pytest.mark.parametrize(
    ("contacts", "message"),
    [
        ("{table: c, key: id}", "it needs 'path', not 'table'"),
        ("{path: 's3://b/c.parquet', key: id}", "its path must be a file"),
    ],
)
def test_contacts_are_read_by_segcli(contacts: str, message: str, tmp_path: Path) -> None:
    spec = _spec("path: email.csv").replace("{path: contacts.csv, key: id}", contacts)
    cfg = write_project(tmp_path, spec, {"email.csv": HAND_EMAIL})
    with pytest.raises(SpecError) as err:
        api.load(cfg, with_data=False)
    assert message in err.value.diagnostics[0].message


def test_a_missing_table_is_a_data_error_naming_it(tmp_path: Path, spark: Any) -> None:
    cfg = write_project(
        tmp_path, _spec("table: segcli_no_such_table"), {"contacts.csv": HAND_CONTACTS}
    )
    with pytest.raises(
        DataError, match=r"source .email. \(table segcli_no_such_table\): .*TABLE_OR_VIEW_NOT_FOUND"
    ):
        api.load(cfg)


def test_compile_names_the_table(email_table: str, tmp_path: Path) -> None:
    cfg = write_project(tmp_path, _spec(f"table: {email_table}"), {"contacts.csv": HAND_CONTACTS})
    project = api.load(cfg)
    for dialect in ("spark", "snowflake", "duckdb"):
        sql = api.compile_sql(project, dialect, HAND_AS_OF)
        assert email_table in sql.lower(), dialect


def test_a_data_check_on_a_table_fails_saying_it_was_not_checked(
    email_table: str, tmp_path: Path
) -> None:
    from segcli.views import commands

    spec = _spec(f"table: {email_table}") + "checks:\n  - {source: email, rows: {min: 1}}\n"
    project = api.load(write_project(tmp_path, spec, {"contacts.csv": HAND_CONTACTS}))
    (outcome,) = commands.check(project).outcomes
    assert not outcome.passed
    assert f"not checked: source 'email' is the table {email_table}" in outcome.detail
