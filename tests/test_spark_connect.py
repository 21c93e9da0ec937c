"""The spark engine through Spark Connect (`--spark-master sc://HOST:PORT`).

A Spark Connect server runs on this machine's loopback for the whole test run (the
`spark_connect` fixture of conftest.py: Spark's Connect plugin in local mode, in its own
process), and segcli reaches it as a remote client would: the hand-written cases and the
scored spec against the reference evaluator, and two runs of the demo that write, file by
file, what the Polars engine writes, with the members never collected onto the client
(tests/connect_cases.py). A refused token is exit 2 naming where the token goes; an
unreachable server's exit 2 is in tests/faults/test_engine.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_spark_state import _demo

from segcli.engines import spark as spark_engine
from segcli.errors import UsageError


@pytest.mark.spark
def test_cases_through_spark_connect(spark_connect: str) -> None:
    """tests/connect_cases.py, in a pytest process of its own (PySpark allows no Spark
    Connect session beside this process's local one), against this run's server: the hand
    cases, the scored spec and two demo runs, file by file against the Polars engine."""
    env = {**os.environ, "SEGCLI_TEST_CONNECT_URL": spark_connect}
    tests = Path(__file__).parent
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(tests / "connect_cases.py")],
        cwd=tests.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout, done.stdout[-2000:]


def test_connect_urls_name_their_server() -> None:
    """`sc://HOST[:PORT][/;params]`: Spark Connect's port 15002 unless one is given."""
    assert spark_engine.connect_address("sc://spark.example:443/;token=x") == ("spark.example", 443)
    assert spark_engine.connect_address("sc://localhost") == ("localhost", 15002)
    assert spark_engine.connect_address("sc://[::1]:15010") == ("::1", 15010)
    with pytest.raises(UsageError, match="names no host"):
        spark_engine.connect_address("sc://:15002")


@pytest.mark.spark
def test_a_refused_token_is_exit_2_saying_where_the_token_goes(
    tmp_path: Path, spark_connect: str
) -> None:
    """The server refuses the client's token: `segcli run` exits 2 and says how to give one
    (in its own process, so no half-made session stays behind in this one)."""
    root = tmp_path / "demo"
    _demo(root)
    env = {**os.environ, "SPARK_CONNECT_AUTHENTICATE_TOKEN": "not-the-token"}
    args = ["run", "--as-of", "2026-11-20", "--engine", "spark", "--spark-master", spark_connect]
    done = subprocess.run(
        [sys.executable, "-c", "from segcli.entry import main; main()", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert "SPARK_CONNECT_AUTHENTICATE_TOKEN" in done.stderr
    assert not (root / "out").exists() and not (root / ".segcli" / "manifest.json").exists()


@pytest.mark.spark
def test_connect_beside_a_local_session_is_exit_2_saying_why(
    spark: Any, spark_connect: str
) -> None:
    """PySpark keeps a Spark Connect session out of a process that runs a local one (a
    notebook's, here the suite's): a usage error that says so, not a hint about servers."""
    with pytest.raises(UsageError, match="already runs a local Spark session"):
        spark_engine.session(spark_connect)
