"""Files a command is asked to write (`check --junit`, `report --html`, `schema --out`):
a directory, a path under a file, or a full disk is exit 4 naming the path, no traceback,
and nothing else changes."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from tests.faults.common import assert_clean, assert_untouched, invoke, tree
from tests.faults.test_state import project

COMMANDS = {
    "check --junit": ["check", "--junit"],
    "report --html": ["report", "--html"],
    "schema --out": ["schema", "--out"],
}


@pytest.fixture
def ran(tmp_path: Path) -> Path:
    project(tmp_path)
    assert_clean(invoke(["run", "--as-of", "2026-03-01"], tmp_path), 0)
    return tmp_path


@pytest.mark.parametrize("command", list(COMMANDS))
def test_target_is_a_directory(ran: Path, command: str) -> None:
    (ran / "target").mkdir()
    (ran / "target" / "mine.txt").write_text("precious")
    before = tree(ran)
    res = invoke([*COMMANDS[command], "target"], ran)
    assert_clean(res, 4, "could not write target", "it is a directory")
    assert_untouched(before, ran)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_target_under_a_file(ran: Path, command: str) -> None:
    (ran / "afile").write_text("precious")
    before = tree(ran)
    res = invoke([*COMMANDS[command], "afile/x.out"], ran)
    assert_clean(res, 4, "afile")
    assert_untouched(before, ran)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_target_on_a_full_disk(ran: Path, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("segcli.fs.atomic_write_bytes", full)
    before = tree(ran)
    res = invoke([*COMMANDS[command], "x.out"], ran)
    assert_clean(res, 4, "no space left", "x.out")
    assert_untouched(before, ran)
