"""Cases run through a Spark Connect server, in a pytest process of their own.

PySpark refuses a Spark Connect session in a process that already runs a local Spark session
(SESSION_ALREADY_EXIST), and the rest of the suite shares one local session; so
tests/test_spark_connect.py runs this file in a child pytest, against the server of its
`spark_connect` fixture: the URL in $SEGCLI_TEST_CONNECT_URL, the token in
$SPARK_CONNECT_AUTHENTICATE_TOKEN. Not collected by the suite itself (not named test_*).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import write_project
from reference import Reference
from test_engines_duckdb import compute
from test_engines_spark import SCORED
from test_reference import (
    HAND_AS_OF,
    HAND_CONTACTS,
    HAND_EMAIL,
    HAND_SEGMENTS,
    HAND_SOURCES,
    assert_matches,
)
from test_spark_state import demo_runs

from segcli import api


@pytest.fixture(scope="session")
def spark_connect() -> str:
    return os.environ["SEGCLI_TEST_CONNECT_URL"]


def test_hand_cases_and_scores_on_spark_connect(tmp_path: Path, spark_connect: str) -> None:
    """Every hand-written condition, and decay, clamps, `top` and `bucket`, computed on a
    Spark Connect server, are what the reference evaluator says."""
    files = {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL}
    segs = "\n".join(f"  s{i}: {{where: {c}}}" for i, (c, _) in enumerate(HAND_SEGMENTS))
    cfg = write_project(tmp_path / "hand", HAND_SOURCES + "segments:\n" + segs + "\n", files)
    got = compute(api.load(cfg), HAND_AS_OF, "spark", spark_connect)
    for i, (cond, expected) in enumerate(HAND_SEGMENTS):
        assert got.members[f"s{i}"] == expected, cond
    project = api.load(write_project(tmp_path / "scored", HAND_SOURCES + SCORED, files))
    ref = Reference(project.spec, HAND_CONTACTS, {"email": HAND_EMAIL}, HAND_AS_OF).evaluate()
    assert_matches(compute(project, HAND_AS_OF, "spark", spark_connect), ref)


def test_demo_runs_on_spark_connect_write_what_polars_writes(
    tmp_path: Path, spark_connect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs of the demo through Spark Connect: members, changes, scores and state
    snapshots equal the Polars engine's file by file; the client collected only the changes
    it delivers, never the members nor any contact's stored value."""
    runs = demo_runs(tmp_path, monkeypatch, ["2026-11-13", "2026-11-20"], spark_connect)
    key = runs.project.spec.contacts.key
    assert runs.collected
    ok = all("change" in c and key in c for c in runs.collected)
    assert ok, runs.collected
    from pyspark import SparkContext

    assert SparkContext._active_spark_context is None  # no local Spark here: all on the server
