"""The docs match the code: README commands, CLI reference, CI script."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from typer.main import get_command

from segcli.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def command_names() -> list[str]:
    group = get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_readme_has_exactly_two_fresh_machine_commands() -> None:
    cmds = quick_start_commands()
    assert len(cmds) >= 2
    install_demo, tests = cmds[0], cmds[1]
    assert "pip install -e ." in install_demo and "segcli run" in install_demo
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start_commands()[1] in ci


def test_every_command_is_in_the_readme_reference_and_has_help() -> None:
    reference = README.split("## Command line", 1)[1]
    group = get_command(app)
    for name in command_names():
        assert f"`segcli {name}" in reference, f"segcli {name} missing from README"
        cmd = group.commands[name]  # type: ignore[attr-defined]
        assert (cmd.help or "").strip(), f"segcli {name} has no help"


def test_readme_demo_command_runs(tmp_path: Path) -> None:
    """The demo part of the first quick-start command, on a copy of the repo's demo."""
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    shutil.copy(ROOT / "segments.yaml", tmp_path / "segments.yaml")
    demo = quick_start_commands()[0].split("&&")[-1].strip()
    args = demo.split()[1:]  # drop the .venv/bin/segcli path
    proc = subprocess.run(
        [sys.executable, "-m", "segcli", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "120", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    n = len(yaml.safe_load((ROOT / "segments.yaml").read_text(encoding="utf-8"))["segments"])
    assert f"{n} segments" in proc.stdout
    assert (tmp_path / "out" / "run.json").exists()


def test_diagnostic_example_in_readme_is_real(tmp_path: Path) -> None:
    """The README's error example is what segcli prints for that spec."""
    (tmp_path / "contacts.csv").write_text("contact_id,country,age\n1,US,30\n")
    (tmp_path / "segments.yaml").write_text(
        "version: 1\nsources:\n  contacts:\n    path: contacts.csv\n    key: contact_id\n"
        "segments:\n  alpha:\n    where: {field: contry, eq: US}\n  beta:\n"
        "    where: {field: age, gte: 18}\n    kind: dinamic\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "segcli", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"COLUMNS": "120", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    example = README.split("```\nsegments.yaml:8:20", 1)[1].split("```", 1)[0]
    assert proc.stderr.strip() == ("segments.yaml:8:20" + example).strip()


def test_readme_installs_segcli_from_its_repository() -> None:
    """segcli is not on PyPI: every `pip install` in the README installs from a checkout or
    a git URL, never by the bare name."""
    installs = re.findall(r"pip install[^\n`]*", README)
    assert installs
    for line in installs:
        assert not re.search(r"pip install (-q )?['\"]?segcli\b(?! @)", line), line
        assert " -e ." in line or "-e '.[dev]'" in line or "git+https://" in line, line
