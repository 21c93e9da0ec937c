"""Cases run through a Spark Connect server, in a pytest process of their own.

PySpark refuses a Spark Connect session in a process that already runs a local Spark session
(SESSION_ALREADY_EXIST), and the rest of the suite shares one local session; so
tests/test_spark_connect.py runs this file in a child pytest, against the server of its
`spark_connect` fixture: the URL in $SEGCLI_TEST_CONNECT_URL, the token in
$SPARK_CONNECT_AUTHENTICATE_TOKEN. Not collected by the suite itself (not named test_*).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import write_project
from reference import Reference
from test_engines_duckdb import Computed, _by_order, _frames, _same
from test_engines_spark import SCORED
from test_reference import (
    HAND_AS_OF,
    HAND_CONTACTS,
    HAND_EMAIL,
    HAND_SEGMENTS,
    HAND_SOURCES,
    assert_matches,
)
from test_spark_state import _demo

from segcli import api
from segcli.engines import spark as spark_engine


@pytest.fixture(scope="session")
def spark_connect() -> str:
    return os.environ["SEGCLI_TEST_CONNECT_URL"]


def _computed(project: api.Project, url: str) -> Any:
    ev, _ = api.compute(project, HAND_AS_OF, engine="spark", spark_master=url)
    keys = ev.contact_keys().to_list()

    def true_keys(flags: Any) -> set[Any]:
        return {k for k, v in zip(keys, flags.to_list(), strict=True) if v}

    return Computed(
        {n: true_keys(ev.member(n)) for n in ev.segments},
        {n: true_keys(ev.matches(n)) for n in ev.segments},
        {m: dict(zip(keys, ev.score(m).to_list(), strict=True)) for m in project.spec.scoring},
    )


def test_hand_cases_and_scores_on_spark_connect(tmp_path: Path, spark_connect: str) -> None:
    """Every hand-written condition, and decay, clamps, `top` and `bucket`, computed on a
    Spark Connect server, are what the reference evaluator says."""
    files = {"contacts.csv": HAND_CONTACTS, "email.csv": HAND_EMAIL}
    segs = "\n".join(f"  s{i}: {{where: {c}}}" for i, (c, _) in enumerate(HAND_SEGMENTS))
    cfg = write_project(tmp_path / "hand", HAND_SOURCES + "segments:\n" + segs + "\n", files)
    got = _computed(api.load(cfg), spark_connect)
    for i, (cond, expected) in enumerate(HAND_SEGMENTS):
        assert got.members[f"s{i}"] == expected, cond
    project = api.load(write_project(tmp_path / "scored", HAND_SOURCES + SCORED, files))
    ref = Reference(project.spec, HAND_CONTACTS, {"email": HAND_EMAIL}, HAND_AS_OF).evaluate()
    assert_matches(_computed(project, spark_connect), ref)


def test_demo_runs_on_spark_connect_write_what_polars_writes(
    tmp_path: Path, spark_connect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs of the demo through Spark Connect: members, changes, scores and state
    snapshots equal the Polars engine's file by file; the client collected only the changes
    it delivers and the `ever: true` columns' current values, never the members."""
    collected: list[list[str]] = []
    real = spark_engine.to_arrow

    def to_arrow(df: Any) -> Any:
        assert type(df).__module__.startswith("pyspark.sql.connect")  # not a local session
        table = real(df)
        collected.append(table.column_names)
        return table

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a run must not collect the per-contact result")

    found = {}
    for engine in ("polars", "spark"):
        root = tmp_path / engine
        project = _demo(root)
        frames = {}
        with monkeypatch.context() as patch:
            if engine == "spark":
                patch.setattr(spark_engine, "to_arrow", to_arrow)
                patch.setattr(spark_engine, "execute", forbidden)
            for at in ("2026-11-13", "2026-11-20"):
                result = api.run(
                    project, as_of=at, engine=engine, actions=False, spark_master=spark_connect
                )
                frames.update({f"{at}/{k}": v for k, v in _frames(root / "out").items()})
        manifest = json.loads((root / ".segcli" / "manifest.json").read_text())
        order = [r["run_id"] for r in manifest["runs"]]
        frames.update(_by_order(_frames(root / ".segcli"), order))
        found[engine] = (frames, result)
    (want, polars_run), (got, spark_run) = found["polars"], found["spark"]
    assert sorted(want) == sorted(got)
    assert any(k.startswith("runs/1/") for k in want)  # the second run's snapshots too
    for name in want:
        _same(want[name], got[name], name)
    assert [s.summary() for s in spark_run.segments] == [s.summary() for s in polars_run.segments]
    key = project.spec.contacts.key
    assert collected
    assert all("change" in c or (len(c) == 2 and c[0] == key) for c in collected), collected
    assert spark_run.memberships is None and spark_run.scores is None
