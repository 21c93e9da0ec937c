"""The harness itself can fail: a change outside segcli's files and a crash are both caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.common import assert_untouched, tree


def test_a_foreign_change_is_caught(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    before = tree(tmp_path)
    (tmp_path / "mine.txt").write_text("changed")
    with pytest.raises(AssertionError):
        assert_untouched(before, tmp_path)


def test_own_paths_are_ignored(tmp_path: Path) -> None:
    before = tree(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.parquet").write_bytes(b"1")
    assert_untouched(before, tmp_path, own=("out",))
