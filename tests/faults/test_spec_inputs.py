"""Fault injection, spec inputs: hostile names, YAML features and bombs, odd paths and files.

For each: `segcli validate` exits 2 (spec or usage) or 3 (data), says what is wrong, prints no
traceback, and changes nothing in the project folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.faults.common import assert_clean, assert_untouched, invoke, tree

DATA = Path(__file__).parent.parent / "projects" / "errors"
HEAD = """\
version: 1
sources:
  contacts: {path: contacts.csv, key: contact_id}
  email: {path: email.csv, key: contact_id, time: occurred_at, type: event_type}
"""
DE = "{where: {field: country, eq: DE}}"


def _bomb() -> str:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


CASES = {
    "dotdot_name": (HEAD + f"segments:\n  ../../escaped: {DE}\n", 2, "S016"),
    "slash_name": (HEAD + f"segments:\n  a/b: {DE}\n", 2, "'a/b' is not an identifier"),
    "nul_name": (HEAD + f'segments:\n  "a\\0b": {DE}\n', 2, "S016"),
    "long_name": (HEAD + f"segments:\n  {'y' * 300}: {DE}\n", 2, "300 characters long"),
    "empty_name": (HEAD + f"segments:\n  '': {DE}\n", 2, "'' is not an identifier"),
    "plus_source": (
        HEAD + "  email+web: {path: email.csv, key: contact_id}\n",
        2,
        "source name 'email+web' is not an identifier",
    ),
    "unknown_tag": (HEAD + "segments:\n  a: {where: !foo {field: country}}\n", 2, "S017"),
    "python_tag": (
        HEAD + "segments:\n  a: !!python/object:os.system {where: {field: age}}\n",
        2,
        "unsupported YAML tag",
    ),
    "impossible_date": (
        HEAD + "segments:\n  a: {where: {field: age, gt: 2026-02-30}}\n",
        2,
        "bad date '2026-02-30'",
    ),
    "nested_not": (
        HEAD + "segments:\n  a: {where: " + "{not: " * 500 + "{segment: a}" + "}" * 500 + "}\n",
        2,
        "more than 64 levels deep",
    ),
    "long_duration": (
        HEAD + "segments:\n  a: {where: {event: {source: email, within: 99999999999d}}}\n",
        2,
        "is too long",
    ),
    "alias_bomb": (_bomb(), 2, "aliases expand to"),
    # a mapping or a list where an ordered value belongs was shown as the parser's own
    # YNode(...) objects; it is described in words
    "mapping_for_gt": (
        HEAD + "segments:\n  a: {where: {field: age, gt: {x: 1}}}\n",
        2,
        "gt takes a number, a date or a relative time, got a mapping",
    ),
    "list_in_between": (
        HEAD + "segments:\n  a: {where: {field: age, between: [[1], 2]}}\n",
        2,
        "between takes a number, a date or a relative time, got a list",
    ),
    "missing_list": (
        HEAD + f"segments:\n  a: {DE[:-1]}, exclude_file: gone.csv}}\n",
        3,
        "exclude_file gone.csv not found",
    ),
    "cycles": (
        HEAD + "segments:\n  a: {where: {segment: b}}\n  b: {where: {segment: a}}\n"
        "  c: {where: {segment: c}}\n",
        2,
        "Found 2 errors",
    ),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_spec_is_a_clean_error(project: Path, case: str) -> None:
    text, code, needle = CASES[case]
    (project / "segments.yaml").write_text(text, encoding="utf-8")
    before = tree(project)
    result = invoke(["validate"], project)
    assert_clean(result, code, needle)
    assert "YNode" not in result.output
    assert_untouched(before, project)


def test_merge_keys_validate(project: Path) -> None:
    text = HEAD + f"segments:\n  a: &t {DE}\n  b:\n    <<: *t\n    description: copy\n"
    (project / "segments.yaml").write_text(text, encoding="utf-8")
    assert_clean(invoke(["validate"], project), 0)


def test_a_spec_path_that_is_a_directory(project: Path) -> None:
    (project / "specs").mkdir()
    assert_clean(invoke(["validate", "-c", "specs"], project), 2, "is a directory")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("where", ["spec", "list", "rules"])
def test_a_fifo_is_refused_not_read(project: Path, where: str) -> None:
    os.mkfifo(project / "pipe")
    text = HEAD + f"segments:\n  a: {DE}\n"
    if where == "list":
        text = HEAD + f"segments:\n  a: {DE[:-1]}, include_file: pipe}}\n"
    if where == "rules":
        text += "scoring:\n  m:\n    rules_file: {path: pipe, when: {field: country, eq: x}}\n"
    (project / "segments.yaml").write_text(text, encoding="utf-8")
    args = ["validate", "-c", "pipe"] if where == "spec" else ["validate"]
    code = 3 if where == "list" else 2
    assert_clean(invoke(args, project), code, "pipe", "not a regular file")


def test_names_that_yaml_1_1_reads_as_booleans_or_numbers_stay_names(project: Path) -> None:
    """`off:`, `yes:` and `0x10:` are names as written: YAML 1.1 would make the first two
    booleans and the last 16, and a segment named `off` ran, silently, as `False`."""
    segs = f"segments:\n  off: {DE}\n  yes: {DE}\n  s0x10: {{where: {{segment: 'off'}}}}\n"
    (project / "segments.yaml").write_text(HEAD + segs, encoding="utf-8")
    assert_clean(invoke(["run", "--as-of", "2026-03-10"], project), 0)
    written = sorted(p.name for p in (project / "out" / "segments").glob("*.parquet"))
    assert written == ["off.parquet", "s0x10.parquet", "yes.parquet"]
