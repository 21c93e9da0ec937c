"""The three engines on one representative subset of the semantic suite.

Each case runs on polars, duckdb and spark (Spark in local mode, one session for the whole test
run: the `spark` fixture of conftest.py): the reference evaluator's hand cases, scores, `top`
and `bucket` against the reference (memberships exactly, scores within 1e-9), a few hypothesis
cases on Spark, and whole runs of the demo over several as_of dates (members, changes, scores
and state snapshots file by file). Spark reads the files itself, so its CSV and Parquet reading
is compared value by value with the catalog's. `pytest -m "not spark"` skips the Spark part.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import Computed, Table, write_project
from hypothesis import given
from reference import Reference
from test_engines_duckdb import ROOT, compute
from test_reference import (
    HAND_AS_OF,
    HAND_CONTACTS,
    HAND_EMAIL,
    HAND_SEGMENTS,
    HAND_SOURCES,
    SETTINGS,
    Case,
    assert_matches,
    cases,
)
from typer.testing import CliRunner

from segcli import api
from segcli.cli import app
from segcli.engines import spark as spark_engine
from segcli.errors import DataError, SpecError, UsageError

SPARK = pytest.param("spark", marks=pytest.mark.spark)
ENGINES = ["polars", "duckdb", SPARK]
FEW = SETTINGS.__class__(SETTINGS, max_examples=10, deadline=None)


@pytest.fixture(scope="module", params=ENGINES)
def hand(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Computed:
    if request.param == "spark":
        request.getfixturevalue("spark")
    segs = "\n".join(f"  s{i}: {{where: {c}}}" for i, (c, _) in enumerate(HAND_SEGMENTS))
    root = tmp_path_factory.mktemp(f"hand_{request.param}")
    cfg = write_project(
        root,
        HAND_SOURCES + "segments:\n" + segs + "\n",
        {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL},
    )
    return compute(api.load(cfg), HAND_AS_OF, request.param)


@pytest.mark.parametrize("index", range(len(HAND_SEGMENTS)))
def test_hand_written_condition(hand: Computed, index: int) -> None:
    cond, expected = HAND_SEGMENTS[index]
    assert hand.members[f"s{index}"] == expected, cond


SCORED = """
scoring:
  plain:
    sales_ready: 50
    rules:
      - {name: clicks, points: 5, each: true, max: 12, when: {event: {source: email, type: click}}}
      - {name: adult, ready: 20%, when: {field: age, gte: 25}}
      - {name: silent, points: -8, max: 6, when: {event: {source: email, count: {eq: 0}}}}
    min: -5
  decayed:
    decay: {half_life: 7d}
    rules:
      - {name: each, points: 8, each: true, when: {event: {source: email, type: click}}}
      - {name: once, points: 4, when: {event: {source: email, type: open}}}
      - {name: field, points: 1, when: {field: country, is_null: false}}
    max: 11
segments:
  engaged: {where: {score: {model: plain, gte: 10}}}
  grew: {where: {score_change: {model: decayed, over: 3d, gt: 0}}}
  oldest_two: {where: {all: []}, top: {n: 2, by: {field: age}}}
  half_by_score: {where: {all: []}, top: {percent: 50, by: {score: decayed}}}
  not_engaged: {where: {not: {segment: engaged}}, exclude: {field: country, eq: US}}
  holdout: {where: {bucket: {percent: 50, salt: spring}}}
  holdout_b: {where: {bucket: {percent: 37.5, salt: "other salt"}}}
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_scores_top_and_bucket_match_reference(
    engine: str, make_project: Any, request: pytest.FixtureRequest
) -> None:
    """Decay, each+max, clamps, score_change, top n / percent, bucket: engine = reference."""
    if engine == "spark":
        request.getfixturevalue("spark")
    files = {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL}
    project = make_project(HAND_SOURCES + SCORED, files)
    ref = Reference(project.spec, HAND_CONTACTS, {"email": HAND_EMAIL}, HAND_AS_OF).evaluate()
    assert_matches(compute(project, HAND_AS_OF, engine), ref)


@pytest.mark.spark
def test_bucket_hash_identical_on_spark(make_project: Any, spark: Any) -> None:
    """Spark's bucket of many text and integer keys is segcli's sha256 bucket, bit for bit."""
    from segcli.planning.compile import bucket_of

    rows = [{"id": i, "name": f"n{i}"} for i in range(1, 401)]
    spec = """
version: 1
sources:
  contacts: {path: contacts.csv, key: id}
segments:
""" + "".join(
        f"  b{p}: {{where: {{bucket: {{percent: {p}, salt: s{p}}}}}}}\n" for p in (1, 33, 50, 99)
    )
    project = make_project(spec, {"contacts.csv": rows})
    got = compute(project, "2026-01-01", "spark")
    for p in (1, 33, 50, 99):
        want = {r["id"] for r in rows if bucket_of(f"s{p}", r["id"]) < p * 100}
        assert got.members[f"b{p}"] == want, p


@pytest.mark.spark
@FEW
@given(case=cases())
def test_random_segments_and_scores_on_spark(case: Case, project_dirs: Any, spark: Any) -> None:
    cfg = write_project(project_dirs(), case.yaml_text, case.files)
    got = compute(api.load(cfg), case.as_of, "spark")
    ref = Reference(case.spec, case.contacts, case.tables, case.as_of).evaluate()
    assert_matches(got, ref, repr(case))


# ---------------------------------------------------------------- state over several runs


def _read_both(project: api.Project, source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A source's columns as the catalog reads them and as Spark reads them."""
    from segcli.engines.polars import type_name
    from segcli.engines.spark_read import Reader

    cat = project.catalog
    key_type = type_name(cat.schema("contacts")[project.spec.contacts.key])
    want = cat.frame(source).collect()
    reader = Reader(spark_engine.session(), cat, key_type)
    got = pl.from_arrow(spark_engine.to_arrow(reader.frame(source, want.columns)))
    assert isinstance(got, pl.DataFrame)
    return want, got.cast(dict(want.schema))  # type: ignore[arg-type]


TRICKY = (
    "id,n,x,flag,day,at,note\n"
    "1, +5 ,1e3, TRUE ,2026-1-2,2026-03-29 01:30,plain\n"
    '2,,-.5,false,2026-01-02,2026-10-25T02:30:00,""\n'
    '3,007,inf,,,2026-10-25T02:30:00+01:00,"two\nlines, ""quoted"""\n'
    "4,-3,NaN,True,2026-12-31,2026-01-02,\n"
    "5,12,5.,FALSE,2026-02-03,2026-01-02T03:04:05.123456789Z, spaced \n"
    "6,0,1E-3,false,2026-02-03,2026-06-01T10:00:00+0530,x\n"
)


@pytest.mark.spark
def test_csv_values_read_by_spark_equal_the_catalogs(make_project: Any, spark: Any) -> None:
    """Signs, spaces, exponents, NaN/inf, one-digit months, naive times in the project
    timezone (the earlier instant of a repeated hour), offsets, empty and quoted-empty cells,
    quoted line breaks: Spark's values are the catalog's (types declared and inferred)."""
    spec = """
version: 1
timezone: Europe/Paris
sources:
  contacts:
    path: contacts.csv
    key: id
    columns: {n: int, x: float, flag: bool, day: date, at: datetime}
segments:
  all: {where: {all: []}}
"""
    project = make_project(spec, {"contacts.csv": TRICKY})
    want, got = _read_both(project, "contacts")
    assert got.equals(want, null_equal=True), (want, got)


@pytest.mark.spark
def test_parquet_and_glob_read_by_spark_equal_the_catalogs(tmp_path: Path, spark: Any) -> None:
    """Naive Parquet times read in the project timezone, aware ones as instants, a text event
    key taken as the contacts' integer key, a declared float over integers, a glob of parts
    whose CSV headers differ in order."""
    naive = [datetime(2026, 10, 25, 2, 30), datetime(2026, 1, 5, 8), None]
    events = Table(
        [
            {"cid": " 1", "at": naive[0], "v": 3, "when": datetime(2026, 1, 1, 12)},
            {"cid": "2", "at": naive[1], "v": None, "when": None},
            {"cid": None, "at": naive[2], "v": 7, "when": datetime(2026, 7, 1)},
        ],
        {
            "cid": pl.String,
            "at": pl.Datetime("us"),
            "v": pl.Int64,
            "when": pl.Datetime("us", "UTC"),
        },
    )
    spec = """
version: 1
timezone: Europe/Paris
sources:
  contacts: {path: "contacts/*.csv", key: id}
  events: {path: events.parquet, key: cid, time: at, columns: {v: float}}
segments:
  all: {where: {all: []}}
"""
    files = {
        "contacts/a.csv": "id,name,day\n1,ann,2026-01-02\n2,bob,\n",
        "contacts/b.csv": "day,id\n2026-03-04,3\n,4\n",
        "events.parquet": events,
    }
    project = api.load(write_project(tmp_path, spec, files))
    for source in ("contacts", "events"):
        want, got = _read_both(project, source)
        assert got.equals(want, null_equal=True), (source, want, got)


MANY = 10_001  # more rows than the sample read at load time (csv_sample.SAMPLE_ROWS)


@pytest.mark.spark
@pytest.mark.parametrize("case", ["value", "gap", "key", "duplicate", "short row"])
def test_bad_values_are_the_same_located_errors_on_spark(
    case: str, tmp_path: Path, spark: Any
) -> None:
    """A value that does not parse, a time the clocks skip, a key that is not an integer, a
    repeated contact key, a row with too few fields, each after the rows sampled at load
    time: the Spark engine stops with the Polars engine's message (file, line, value).
    (Spark checks a value where the result depends on it; docs/semantics.md.)"""
    good = {"value": "4", "gap": "2026-03-01 10:00"}.get(case, "x")
    last = {"value": "4.5", "gap": "2026-03-29 02:30"}.get(case, "y")
    rows = [f"{i},{good}" for i in range(1, MANY + 1)]
    rows.append(f"{1 if case == 'duplicate' else MANY + 1},{last}")
    if case == "short row":
        rows[-1] = str(MANY + 1)  # one field where the header has two
    contacts = "id,v\n" + "\n".join(rows) + "\n"
    ev = "cid,x\n" + "1,a\n" * MANY + ("2.5,b\n" if case == "key" else "")
    columns = {"value": "{v: int}", "gap": "{v: datetime}"}.get(case, "{}")
    spec = f"""
version: 1
timezone: Europe/Paris
sources:
  contacts: {{path: contacts.csv, key: id, columns: {columns}}}
  ev: {{path: ev.csv, key: cid}}
segments:
  known: {{where: {{field: v, is_null: false}}}}
  active: {{where: {{event: {{source: ev, count: {{gte: 1}}}}}}}}
"""
    project = api.load(write_project(tmp_path, spec, {"contacts.csv": contacts, "ev.csv": ev}))
    with pytest.raises(DataError) as polars_error:
        api.compute(project, "2026-11-20")
    with pytest.raises(DataError) as spark_error:
        api.compute(project, "2026-11-20", engine="spark")
    assert spark_error.value.message == polars_error.value.message
    assert f":{MANY + 2}" in spark_error.value.message


DEDUPE = """
version: 1
sources:
  contacts: {path: contacts.csv, key: id}
  ev: {path: "ev/*.csv", key: cid, time: at, dedupe: [eid]}
segments:
  big: {where: {event: {source: ev, sum: {column: amount, gte: 10}}}}
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_dedupe_keeps_the_first_row_in_file_order(
    engine: str, make_project: Any, request: pytest.FixtureRequest
) -> None:
    """Repeated event ids that differ: the row kept is the first of the first file."""
    if engine == "spark":
        request.getfixturevalue("spark")
    files = {
        "contacts.csv": "id\n1\n2\n",
        "ev/a.csv": "eid,cid,at,amount\ne1,1,2026-01-01,20\ne2,2,2026-01-01,1\n"
        "e2,2,2026-01-01,30\n",
        "ev/b.csv": "eid,cid,at,amount\ne1,1,2026-01-02,1\ne3,2,2026-01-02,2\n",
    }
    got = compute(make_project(DEDUPE, files), "2026-02-01", engine)
    assert got.members["big"] == {1}


# ---------------------------------------------------------------- wiring


@pytest.mark.spark
def test_a_node_without_spark_sql_is_a_spec_error_naming_spark(
    make_project: Any, monkeypatch: pytest.MonkeyPatch, spark: Any
) -> None:
    """A construct whose SQL is not written yet is E901 naming the engine, not a crash."""
    from segcli.engines.sql import Translator

    def missing(self: Translator, e: Any) -> Any:
        raise NotImplementedError(f"no SQL for {type(e).__name__}")

    monkeypatch.setattr(Translator, "_Bucket", missing)
    files = {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL}
    project = make_project(HAND_SOURCES + SCORED, files)
    with pytest.raises(SpecError) as err:
        api.compute(project, HAND_AS_OF, engine="spark")
    assert err.value.diagnostics[0].code == "E901"
    assert "spark" in err.value.diagnostics[0].message


@pytest.mark.spark
def test_cli_run_on_spark_prints_what_polars_prints(
    tmp_path: Path, spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`segcli run --engine spark --spark-master local[2] --dry-run --json`: the same
    segments and sizes as on the Polars engine."""
    cfg = write_project(
        tmp_path,
        HAND_SOURCES + SCORED,
        {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL},
    )
    at = ["--as-of", HAND_AS_OF.isoformat(), "--dry-run", "--json", "-c", str(cfg)]
    runner = CliRunner()
    spark_run = runner.invoke(app, ["run", *at, "--engine", "spark", "--spark-master", "local[2]"])
    polars_run = runner.invoke(app, ["run", *at])
    assert spark_run.exit_code == 0, spark_run.output
    got, want = json.loads(spark_run.stdout), json.loads(polars_run.stdout)
    assert [(s["name"], s["size"]) for s in got["segments"]] == [
        (s["name"], s["size"]) for s in want["segments"]
    ]


def test_missing_pyspark_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without PySpark: a usage error (exit 2) saying `pip install 'segcli[spark]'`."""
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(UsageError, match=r"pip install 'segcli\[spark\]'"):
        spark_engine.session()
    cfg = write_project(
        tmp_path, HAND_SOURCES + SCORED, {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL}
    )
    result = CliRunner().invoke(app, ["run", "-c", str(cfg), "--engine", "spark", "--dry-run"])
    assert result.exit_code == 2
    assert "segcli[spark]" in result.output


def test_master_from_option_then_environment_then_spec_then_local(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(spark_engine.ENV_MASTER, raising=False)
    assert spark_engine.master_of(None) == "local[2]"
    assert spark_engine.master_of(None, "spark://spec:7077") == "spark://spec:7077"
    monkeypatch.setenv(spark_engine.ENV_MASTER, "spark://h:7077")
    assert spark_engine.master_of(None, "spark://spec:7077") == "spark://h:7077"
    assert spark_engine.master_of("local[1]", "spark://spec:7077") == "local[1]"


def test_the_specs_engine_reaches_spark(make_project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`engine: {name: spark, master, conf}` runs on Spark with that master and conf
    (--spark-master and $SEGCLI_SPARK_MASTER win over the spec's master)."""
    seen: list[tuple[str | None, dict[str, str] | None]] = []

    class Stop(Exception):
        pass

    def session(master: str | None = None, conf: dict[str, str] | None = None) -> Any:
        seen.append((master, conf))
        raise Stop

    monkeypatch.setattr(spark_engine, "session", session)
    monkeypatch.delenv(spark_engine.ENV_MASTER, raising=False)
    spec = HAND_SOURCES.replace(
        "version: 1\n",
        'version: 1\nengine: {name: spark, master: "spark://spec:7077", conf: {a.b: "3"}}\n',
    )
    files = {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL}
    project = make_project(spec + SCORED, files)
    with pytest.raises(Stop):
        api.compute(project, HAND_AS_OF)
    with pytest.raises(Stop):
        api.compute(project, HAND_AS_OF, spark_master="local[1]")
    assert seen == [("spark://spec:7077", {"a.b": "3"}), ("local[1]", {"a.b": "3"})]


def test_unknown_engine_lists_spark(tmp_path: Path) -> None:
    project = api.load(ROOT / "segments.yaml")
    with pytest.raises(UsageError, match="polars, duckdb, spark"):
        api.compute(project, "2026-11-20", engine="spork")
