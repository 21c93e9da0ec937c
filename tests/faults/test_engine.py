"""An engine failure while evaluating is a data error in one line, never Polars' plan dump."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.faults.common import assert_clean, assert_untouched, invoke, tree


def test_a_failing_collect_is_exit_3_without_the_plan(
    basic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collect = pl.LazyFrame.collect

    def fail(self: pl.LazyFrame, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("engine") != "streaming":  # reading contacts: let it pass
            return collect(self, *args, **kwargs)
        raise pl.exceptions.ComputeError(
            "conversion from `str` to `i64` failed in column 'x'\n\nResolved plan until failure:"
            "\n\n\t---> FAILED HERE RESOLVING 'sink' <---\nSELECT [col(\"a\")] FROM ..."
        )

    before = tree(basic)
    monkeypatch.setattr(pl.LazyFrame, "collect", fail)
    result = invoke(["run", "--as-of", "2026-11-20"], basic)
    assert_clean(result, 3, "evaluating the plan failed: conversion from `str` to `i64`")
    assert "Resolved plan" not in result.output
    assert "SELECT" not in result.output
    assert_untouched(before, basic, own=(".segcli", "out"))


def test_an_internal_error_is_one_line(basic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from segcli import api

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("first line\nResolved plan until failure:\nSELECT ...")

    monkeypatch.setattr(api, "make_plan", boom)
    result = invoke(["run", "--as-of", "2026-11-20"], basic)
    assert_clean(result, 4, "internal error: RuntimeError: first line (rerun with --debug")
    assert "Resolved plan" not in result.output
