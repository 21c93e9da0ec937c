"""Shared test helpers: write a small project (spec + CSV/Parquet files) and compute it."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from segcli import api

# `import reference` works whether or not tests/ becomes a package one day.
sys.path.insert(0, str(Path(__file__).parent))

Rows = list[dict[str, Any]]


@dataclass
class Table:
    """Rows to write as Parquet with an explicit Polars schema (CSV needs no schema)."""

    rows: Rows
    schema: dict[str, pl.DataType]


FileContent = Rows | Table | str | bytes


def csv_text(value: Any) -> str:
    """How a Python value is written in a CSV cell (None is an empty cell)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_rows_csv(path: Path, rows: Rows, columns: list[str] | None = None) -> None:
    cols = columns or list(dict.fromkeys(c for r in rows for c in r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            w.writerow([csv_text(r.get(c)) for c in cols])


def write_file(path: Path, content: FileContent) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, Table):
        if path.suffix == ".parquet":
            pl.DataFrame(content.rows, schema=content.schema, orient="row").write_parquet(path)
        else:
            write_rows_csv(path, content.rows, list(content.schema))
    elif path.suffix == ".parquet":
        pl.DataFrame(content).write_parquet(path)
    else:
        write_rows_csv(path, content)


def write_project(root: Path, spec: str | dict[str, Any], files: dict[str, FileContent]) -> Path:
    """Write `segments.yaml` (text, or a dict dumped as YAML) and data files under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False)
    cfg = root / "segments.yaml"
    cfg.write_text(text, encoding="utf-8")
    for rel, content in files.items():
        write_file(root / rel, content)
    return cfg


@dataclass
class Computed:
    """A run's results as plain Python: segment -> member keys, model -> key -> score."""

    members: dict[str, set[Any]]
    rules: dict[str, set[Any]]
    scores: dict[str, dict[Any, float]]


def compute(
    project: api.Project,
    as_of: str | datetime,
    segments: list[str] | None = None,
    engine: str = "polars",
) -> Computed:
    """Evaluate through the library facade and turn the frame into sets and dicts."""
    ev, _ = api.compute(project, as_of, segments, engine=engine)
    keys = ev.contact_keys().to_list()

    def true_keys(flags: Any) -> set[Any]:
        return {k for k, v in zip(keys, flags.to_list(), strict=True) if v}

    members = {n: true_keys(ev.member(n)) for n in ev.segments}
    rules = {n: true_keys(ev.matches(n)) for n in ev.segments}
    scores = {
        model: dict(zip(keys, ev.score(model).to_list(), strict=True))
        for model in project.spec.scoring
    }
    return Computed(members, rules, scores)


ProjectMaker = Callable[..., api.Project]


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectMaker:
    """make_project(spec, files) -> a loaded Project in a fresh directory."""
    counter = iter(range(1_000_000))

    def make(spec: str | dict[str, Any], files: dict[str, FileContent]) -> api.Project:
        cfg = write_project(tmp_path / f"p{next(counter)}", spec, files)
        return api.load(cfg)

    return make


@pytest.fixture(scope="session")
def project_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Path]]:
    """A fresh directory per call (session-scoped, so hypothesis tests can use it)."""
    yield lambda: tmp_path_factory.mktemp("proj")


@pytest.fixture
def basic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of tests/projects/basic, and the working directory set to it."""
    import shutil

    root = tmp_path / "basic"
    shutil.copytree(Path(__file__).parent / "projects" / "basic", root)
    monkeypatch.chdir(root)
    return root


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session for the whole test run (tests/test_engines_spark.py): two
    worker threads, two shuffle partitions, no web UI, no logs."""
    from segcli.engines import spark as spark_engine

    conf = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}
    session = spark_engine.session("local[2]", conf)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_connect() -> Iterator[str]:
    """A Spark Connect server for the whole test run (tests/spark_connect_server.py: local
    mode, on 127.0.0.1, a fresh port and token) and its `sc://localhost` URL (PySpark sends a
    token without TLS to localhost only); the token is in
    $SPARK_CONNECT_AUTHENTICATE_TOKEN, where PySpark's client reads it."""
    import os
    import socket
    import subprocess
    import uuid

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = uuid.uuid4().hex
    env = {**os.environ, "SPARK_CONNECT_AUTHENTICATE_TOKEN": token}
    server = Path(__file__).parent / "spark_connect_server.py"
    proc = subprocess.Popen(
        [sys.executable, str(server), str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # `ready` once it serves, or nothing if it died
        assert line.strip() == "ready", f"the Spark Connect server did not start: {line!r}"
        previous = os.environ.get("SPARK_CONNECT_AUTHENTICATE_TOKEN")
        os.environ["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = token
        try:
            yield f"sc://localhost:{port}"  # a token without TLS: localhost only
        finally:
            if previous is None:
                os.environ.pop("SPARK_CONNECT_AUTHENTICATE_TOKEN", None)
            else:
                os.environ["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = previous
    finally:
        _stop(proc)


# The environment every S3 test runs in: moto's server on loopback as the endpoint, fixed
# test credentials, and no lookup of the cloud's instance metadata (a link-local address).
def s3_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "segcli-test",
        "AWS_SECRET_ACCESS_KEY": "segcli-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """An S3 stand-in for the whole test run: moto's server on 127.0.0.1 at a free port
    (`python -m moto.server`), in a process of its own. Yields its endpoint URL; tests put
    `s3_env(endpoint)` into the environment (the `s3` fixture does) and make their own
    bucket."""
    import socket
    import subprocess
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert proc.poll() is None, "moto's S3 server did not start"
                assert time.monotonic() < deadline, "moto's S3 server did not answer in 60 s"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket on the S3 stand-in, with the environment set to reach it;
    yields `s3://BUCKET`."""
    import uuid

    import s3fs

    for name, value in s3_env(s3_server).items():
        monkeypatch.setenv(name, value)
    bucket = f"segcli-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(bucket)
    return f"s3://{bucket}"


def _stop(proc: Any) -> None:
    """End a server process the tests started (a polite stop, then a kill)."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
