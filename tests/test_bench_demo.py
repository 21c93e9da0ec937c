"""benchmarks/demo.py, the demo's timer, as a program: it runs the README's demo in its three
cases for each build and reports them; a failing run makes it exit 2. No timing is asserted
(the figures are in docs/performance.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.test_bench_small import load_bench

DEMO = Path(__file__).resolve().parents[1] / "benchmarks" / "demo.py"


@pytest.fixture(scope="module")
def demo() -> ModuleType:
    return load_bench(DEMO, "segcli_demo_bench")


def test_one_round_reports_every_case_of_the_demo(
    demo: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = tmp_path / "demo.json"
    segcli = f"{sys.executable} -m segcli"
    args = ["--runs", "1", "--segcli", segcli, "--workdir", str(tmp_path / "w")]
    code = demo.main([*args, "--result", str(result)])
    assert code == 0, capsys.readouterr().err
    got = json.loads(result.read_text())
    assert set(got["summary"]["segcli"]) == {"fresh", "second", "no actions"}
    runs = {r["case"]: r for r in got["runs"]}
    assert runs["fresh"]["exit_code"] == 0 and runs["second"]["exit_code"] == 0
    assert runs["no actions"]["exit_code"] == 5  # the new MQLs' deliveries left pending
    assert all(r["wall_s"] > 0 and r["cpu_s"] > 0 for r in got["runs"])
    out = capsys.readouterr().out
    assert "python3 = " in out and "fresh" in out and "no actions" in out
    # The fresh run's exit 0 says its deliveries (an export and the python3 command) were
    # sent: an undelivered one leaves the run at exit 5.


def test_a_failing_run_is_exit_2(
    demo: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "segcli-broken"
    broken.write_text("#!/bin/sh\necho 'no such segcli' >&2\nexit 3\n")
    broken.chmod(0o755)
    code = demo.main(["--runs", "1", "--segcli", str(broken), "--workdir", str(tmp_path / "w")])
    assert code == 2
    assert "exit 3" in capsys.readouterr().err
