"""Start-up stays small (SPEC §6: the demo in under 0.5 s, start-up included): what a command
imports is checked here, in a fresh interpreter (docs/performance.md has the figures)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import typer.core

from segcli import entry, options

BASIC = Path(__file__).parent / "projects" / "basic"

# Runs `segcli ARGS` in this interpreter and prints the modules it loaded, as JSON.
PROBE = """
import json, sys
from segcli.cli import main
sys.argv = ["segcli", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
sys.__stdout__.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""


def loaded(args: list[str], cwd: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


# Modules a run without deliveries never needs: other commands' views, sending, the other
# engines and what only large or remote sources use.
NOT_FOR_A_RUN = [
    "pydantic",  # typer's option coercion (segcli/options.py)
    "pyarrow",  # large CSV sources' time cast, error paths
    "sqlglot",
    "duckdb",
    "pyspark",
    "fsspec",  # state and outputs on object storage: only for a URI
    "s3fs",
    "segcli.views.commands",
    "segcli.views.explain",
    "segcli.views.checks",
    "segcli.views.report",
    "segcli.outputs.actions",  # commands and webhooks: only when a delivery is due
    "segcli.outputs.webhook",
    "segcli.engines.duckdb",
    "segcli.engines.spark",
]


def among(mods: set[str], names: list[str]) -> list[str]:
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in mods)]


def test_a_run_imports_only_what_it_needs(tmp_path: Path) -> None:
    root = tmp_path / "basic"
    shutil.copytree(BASIC, root)
    mods = loaded(["run", "--as-of", "2026-11-20", "--keep-runs", "3", "--segment", ""], root)
    assert "segcli.state.kinds" in mods  # the probe did run the command
    assert (root / "out").is_dir()
    assert among(mods, NOT_FOR_A_RUN) == []


def test_the_check_sees_a_lazy_import_when_it_happens(tmp_path: Path) -> None:
    # `segcli explain` does need its view: the probe would notice an eager import.
    root = tmp_path / "basic"
    shutil.copytree(BASIC, root)
    segment = next(iter(api_segments(root)))
    mods = loaded(["explain", segment], root)
    assert among(mods, NOT_FOR_A_RUN) == ["segcli.views.explain"]


def api_segments(root: Path) -> list[str]:
    from segcli import api

    return list(api.load(root / "segments.yaml", with_data=False).spec.segments)


def _descriptor(command: str, option: str) -> Any:
    import typer.main

    from segcli.cli import app

    group = typer.main.get_command(app)
    cmd = group.commands[command]  # type: ignore[attr-defined]
    return next(p for p in cmd.params if p.name == option)


@pytest.mark.parametrize(
    ("command", "option", "values"),
    [
        ("run", "as_of", ["2026-11-20", "", " x "]),
        ("run", "keep_runs", ["12", "-3", "007", "0", "+5", " 4 ", "1_000", "abc", "9" * 30]),
        ("run", "config", ["segments.yaml", "", "sub/dir/s.yaml", Path("segments.yaml")]),
        ("run", "segment", [(), ("a", "b,c")]),
    ],
)
def test_plain_values_coerce_as_typers_adapter_does(
    command: str, option: str, values: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "segments.yaml").write_text("version: 1\n")
    param = _descriptor(command, option)
    ours = options._Coercion(param.type_descriptor, typer.core.build_runtime_param)
    theirs = typer.core.build_runtime_param(param.type_descriptor)
    for value in [None, *values]:
        try:
            want: Any = theirs.coerce(value, param=param, ctx=None)
        except Exception as exc:  # the adapter's error, word for word
            with pytest.raises(type(exc)) as got:
                ours.coerce(value, param=param, ctx=None)
            assert str(got.value) == str(exc)
            continue
        got_value = ours.coerce(value, param=param, ctx=None)
        assert got_value == want and type(got_value) is type(want), value


def test_what_start_up_made_is_set_aside_from_the_garbage_collector() -> None:
    # entry.main imports segcli with the collector off, then freezes what the imports made,
    # so later collections do not walk it again.
    probe = (
        "import gc, sys\n"
        "from segcli import entry\n"
        "sys.argv = ['segcli', '--version']\n"
        "try:\n    entry.main()\nexcept SystemExit:\n    pass\n"
        "print('FROZEN', gc.get_freeze_count(), gc.isenabled(), gc.get_threshold()[0])\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    frozen, enabled, young = proc.stdout.split("FROZEN ")[1].split()
    assert int(frozen) > 20_000  # Polars, typer and segcli's modules (~80,000)
    assert enabled == "True"
    # and collects young objects less often than Python's default (700)
    assert int(young) == entry.YOUNG_OBJECTS > 700


def test_a_time_literal_is_built_once_per_instant() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from segcli.engines import polars as engine

    at = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    same = at.astimezone(timezone(timedelta(hours=2)))  # the same instant, another offset
    assert engine._instant(at) is engine._instant(at)
    values = pl.select(engine._instant(at).alias("a"), engine._instant(same).alias("b"))
    assert values.row(0) == (at, at)


def test_small_sources_run_in_memory_with_the_same_results(
    basic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segcli import api
    from segcli.engines import polars as engine

    engines: list[str] = []
    collect_all = pl.collect_all

    def spy(*args: Any, **kwargs: Any) -> Any:
        if "optimizations" in kwargs:  # the plan's passes over the events
            engines.append(kwargs.get("engine", "auto"))
        return collect_all(*args, **kwargs)

    monkeypatch.setattr(pl, "collect_all", spy)
    project = api.load(basic / "segments.yaml")
    small, _ = api.compute(project, as_of="2026-11-20")
    monkeypatch.setattr(engine, "SMALL_BYTES", 0)
    large, _ = api.compute(project, as_of="2026-11-20")
    assert engines == ["in-memory", "streaming"]
    assert small.memberships().equals(large.memberships())
    assert small.scores().equals(large.scores())
