"""`engine:` at the top of the spec (SPEC §3.1): where runs execute unless `--engine` says
otherwise; its mistakes are located spec errors; the run records the engine it used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_validate import DATA, diagnostics, segments

from segcli import api
from segcli.spec.model import EngineConf
from segcli.spec.schema import json_schema


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def _with_engine(value: str) -> str:
    return segments("  a: {where: {field: country, eq: DE}}\n").replace(
        "version: 1\n", f"version: 1\nengine: {value}\n"
    )


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("duckdb", EngineConf("duckdb")),
        ("{name: polars}", EngineConf("polars")),
        (
            '{name: spark, master: "local[2]", conf: {spark.sql.shuffle.partitions: 4, '
            "spark.ui.enabled: false}}",
            EngineConf(
                "spark",
                "local[2]",
                (("spark.sql.shuffle.partitions", "4"), ("spark.ui.enabled", "false")),
            ),
        ),
    ],
)
def test_engine_key_is_read(spec_dir: Path, value: str, want: EngineConf) -> None:
    path = spec_dir / "segments.yaml"
    path.write_text(_with_engine(value), encoding="utf-8")
    assert api.load(path).spec.engine == want


@pytest.mark.parametrize(
    ("value", "code", "at", "needle"),
    [
        ("duckbd", "S006", "duckbd", "unknown engine 'duckbd'"),
        ("{name: sparkk}", "S006", "sparkk", "unknown engine 'sparkk'"),
        ("{master: local}", "S005", "{", "engine needs 'name'"),
        ('{name: duckdb, master: "local[2]"}', "S006", '"local', "'master' is a Spark setting"),
        ("{name: spark, conf: [a]}", "S004", "[a]", "engine conf must be a mapping"),
        ("{name: spark, conf: {a: [1]}}", "S004", "[1]", "engine conf 'a' must be a string"),
        ("{name: spark, mastr: x}", "S003", "mastr", "unknown key 'mastr' in engine"),
    ],
)
def test_bad_engine_key_is_located(
    spec_dir: Path, value: str, code: str, at: str, needle: str
) -> None:
    """Each mistake is reported at the node that is wrong (`at`: its text in `value`)."""
    [d] = diagnostics(spec_dir, _with_engine(value))
    col = len("engine: ") + 1 + value.index(at)
    assert (d.code, d.line, d.col) == (code, 2, col), d
    assert needle in d.message, d.message


def test_unknown_engine_gets_a_hint(spec_dir: Path) -> None:
    [d] = diagnostics(spec_dir, _with_engine("duckbd"))
    assert "duckdb" in (d.help or "")


def test_the_spec_engine_runs_unless_the_command_line_says_otherwise(spec_dir: Path) -> None:
    path = spec_dir / "segments.yaml"
    path.write_text(_with_engine("duckdb"), encoding="utf-8")
    project = api.load(path)
    out = spec_dir / "out"
    first = api.run(project, as_of="2026-03-10", out_dir=out, state_dir=spec_dir / "st")
    assert first.engine == "duckdb"
    assert json.loads((out / "run.json").read_text())["engine"] == "duckdb"
    second = api.run(
        project, as_of="2026-03-11", out_dir=out, state_dir=spec_dir / "st", engine="polars"
    )
    assert second.engine == "polars"
    assert json.loads((out / "run.json").read_text())["engine"] == "polars"
    assert [s.size for s in first.segments] == [s.size for s in second.segments]


def test_json_schema_takes_a_path_or_a_table_for_a_source() -> None:
    """`table:` (SPEC §3.1) stands in for `path:`; a source with neither is invalid."""
    import jsonschema

    schema = json_schema()
    sources = {"contacts": {"path": "c.csv", "key": "id"}}
    spec = {"version": 1, "sources": sources}
    sources["email"] = {"table": "crm.email_events", "key": "cid"}
    jsonschema.validate(spec, schema)
    sources["email"] = {"key": "cid"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, schema)


def test_json_schema_knows_the_engine_key() -> None:
    engine = json_schema()["properties"]["engine"]["anyOf"]
    assert engine[0]["enum"] == ["polars", "duckdb", "spark"]
    assert set(engine[1]["properties"]) == {"name", "master", "conf"}
