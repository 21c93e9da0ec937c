"""Hostile or unusual spec inputs (issue 14): names, YAML features, limits and list files.

Each case went wrong before: a crash (exit 70), a hang, a file written outside `--out`, or a
silent success. Here each is a located diagnostic, a usage error or a data error.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from segcli import api
from segcli.errors import DataError, Diagnostic, SpecError, UsageError
from segcli.spec import graph
from segcli.spec import model as m
from segcli.spec.diagnostics import render

DATA = Path(__file__).parent / "projects" / "errors"
HEAD = """\
version: 1
sources:
  contacts: {path: contacts.csv, key: contact_id}
  email: {path: email.csv, key: contact_id, time: occurred_at, type: event_type}
"""
DE = "{where: {field: country, eq: DE}}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def write(project: Path, text: str) -> Path:
    path = project / "segments.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def diagnostics(project: Path, text: str) -> list[Diagnostic]:
    with pytest.raises(SpecError) as info:
        api.load(write(project, text))
    return info.value.diagnostics


def one(project: Path, text: str) -> Diagnostic:
    diags = diagnostics(project, text)
    assert len(diags) == 1, render(diags)
    return diags[0]


# ---------------------------------------------------------------- names are identifiers


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../escaped", "'../../escaped' is not an identifier"),
        ("a/b", "'a/b' is not an identifier"),
        ('"a\\0b"', "'a\\x00b' is not an identifier"),
        ("''", "'' is not an identifier"),
        ("-x", "'-x' is not an identifier"),
        ("x" * 101, "is 101 characters long (at most 100)"),
    ],
)
def test_a_segment_name_must_be_an_identifier(project: Path, name: str, shown: str) -> None:
    d = one(project, HEAD + f"segments:\n  {name}: {DE}\n")
    assert (d.code, d.line, d.col) == ("S016", 6, 3)
    assert d.message.startswith("segment name ") and shown in d.message


def test_a_source_named_with_a_plus_is_refused(project: Path) -> None:
    text = HEAD + "  email+web: {path: email.csv, key: contact_id}\nsegments: {}\n"
    d = one(project, text)
    assert (d.code, d.line, d.message) == (
        "S016",
        5,
        "source name 'email+web' is not an identifier",
    )


def test_a_model_name_must_be_an_identifier(project: Path) -> None:
    text = HEAD + "scoring:\n  eng/x:\n    rules: [{name: r, points: 1, when: " + DE[8:-1] + "}]\n"
    d = one(project, text)
    assert (d.code, d.message) == ("S016", "scoring model name 'eng/x' is not an identifier")


def test_names_with_dots_dashes_and_100_characters_are_fine(project: Path) -> None:
    long = "x" * 100
    spec = api.load(write(project, HEAD + f"segments:\n  v1.2-b_c: {DE}\n  {long}: {DE}\n")).spec
    assert list(spec.segments) == ["v1.2-b_c", long]


# ---------------------------------------------------------------- YAML features and limits


def test_merge_keys_copy_a_template_and_written_keys_win(project: Path) -> None:
    text = HEAD + (
        "segments:\n"
        "  base: &t {where: {field: country, eq: DE}, description: from template}\n"
        "  copy:\n    <<: *t\n    description: mine\n"
        "  both:\n    <<: [{description: first}, {description: second, kind: static}]\n"
        "    where: {field: country, eq: US}\n"
    )
    spec = api.load(write(project, text)).spec
    assert spec.segments["copy"].where == spec.segments["base"].where
    assert spec.segments["copy"].description == "mine"
    assert spec.segments["both"].description == "first"
    assert spec.segments["both"].kind == "static"


def test_a_merged_template_is_validated_where_it_is_used(project: Path) -> None:
    text = HEAD + "segments:\n  a: &t {where: {field: countyr, eq: DE}}\n  b:\n    <<: *t\n"
    diags = diagnostics(project, text)
    assert {(d.code, d.line, d.path) for d in diags} == {
        ("S009", 6, "segments.a.where.field"),
        ("S009", 6, "segments.b.where.field"),
    }


@pytest.mark.parametrize("tag", ["!python/object", "!foo", "!!binary", "!!set"])
def test_unknown_tags_are_located_errors(project: Path, tag: str) -> None:
    diags = diagnostics(project, HEAD + f"segments:\n  a: {{where: {tag} {{field: country}}}}\n")
    d = diags[0]
    assert (d.code, d.line, d.col) == ("S017", 6, 14)
    assert d.message.startswith("unsupported YAML tag")


def test_a_standard_tag_is_fine(project: Path) -> None:
    spec = api.load(
        write(project, HEAD + "segments:\n  a: {where: {field: age, eq: !!int '34'}}\n")
    )
    assert spec.spec.segments["a"].where is not None


def test_an_impossible_unquoted_date_is_one_located_error(project: Path) -> None:
    d = one(project, HEAD + "segments:\n  a: {where: {field: age, gt: 2026-02-30}}\n")
    assert (d.code, d.line, d.col) == ("S006", 6, 31)
    assert d.message == "bad date '2026-02-30': day is out of range for month"


@pytest.mark.parametrize("flow", [True, False])
def test_500_nested_nots_are_a_clear_error(project: Path, flow: bool) -> None:
    if flow:
        body = "  a: {where: " + "{not: " * 500 + "{field: country, eq: DE}" + "}" * 500 + "}\n"
    else:
        lines = ["  a:", "    where:"] + ["      " + "  " * i + "not:" for i in range(500)]
        body = "\n".join([*lines, "      " + "  " * 500 + "segment: b"]) + "\n"
    d = one(project, HEAD + "segments:\n" + body)
    assert d.code == "S017"
    assert d.message == "the file nests mappings and lists more than 64 levels deep"


def test_moderate_nesting_still_works(project: Path) -> None:
    body = "  a: {where: " + "{not: " * 40 + "{field: country, eq: DE}" + "}" * 40 + "}\n"
    assert api.load(write(project, HEAD + "segments:\n" + body)).spec.segments["a"].where


def test_an_alias_bomb_is_refused_quickly(project: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    d = one(project, "\n".join(lines) + "\n")
    assert time.perf_counter() - start < 0.5
    assert d.code == "S017"
    assert d.message == "the file's aliases expand to 490,329,064 values (at most 100,000)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("within: 99999999999d", "duration '99999999999d' for within is too long"),
        ("within: 366001d", "duration '366001d' for within is too long"),
        ("where: {occurred_at: {gt: -9999999w}}", "duration '9999999w' for gt is too long"),
    ],
)
def test_overflowing_durations_are_located_errors(project: Path, text: str, message: str) -> None:
    d = one(project, HEAD + f"segments:\n  a: {{where: {{event: {{source: email, {text}}}}}}}\n")
    assert (d.code, d.message, d.help) == ("S006", message, "at most 366000d (about 1000 years)")


def test_the_longest_duration_is_accepted(project: Path) -> None:
    text = HEAD + "segments:\n  a: {where: {event: {source: email, within: 366000d}}}\n"
    assert api.load(write(project, text)).spec.segments["a"].where is not None


def test_a_spec_path_that_is_a_directory_is_a_usage_error(project: Path) -> None:
    with pytest.raises(UsageError, match="is a directory, not a file"):
        api.load(project)


# ---------------------------------------------------------------- list and rules files


def test_missing_list_files_are_data_errors_naming_each(project: Path) -> None:
    text = HEAD + (
        "segments:\n"
        "  a: {where: {field: country, eq: DE}, include_file: lists/vip.csv,"
        " exclude_file: lists/dne.csv}\n"
        "  b: {kind: static, from_file: lists/show.csv}\n"
    )
    with pytest.raises(DataError) as info:
        api.load(write(project, text))
    assert info.value.message.splitlines() == [
        "segment 'a': include_file lists/vip.csv not found",
        "segment 'a': exclude_file lists/dne.csv not found",
        "segment 'b': from_file lists/show.csv not found",
    ]


def test_list_files_are_not_checked_without_data(project: Path) -> None:
    text = HEAD + f"segments:\n  a: {DE[:-1]}, include_file: lists/vip.csv}}\n"
    assert api.load(write(project, text), with_data=False).spec.segments["a"].include_file


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_list_file_is_refused_without_blocking(project: Path) -> None:
    os.mkfifo(project / "vip.csv")
    text = HEAD + f"segments:\n  a: {DE[:-1]}, include_file: vip.csv}}\n"
    with pytest.raises(DataError, match=r"include_file vip\.csv is not a regular file"):
        api.load(write(project, text))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_rules_file_is_refused_without_blocking(project: Path) -> None:
    os.mkfifo(project / "assets.csv")
    text = HEAD + (
        "scoring:\n  m:\n    rules_file: {path: assets.csv, when: {field: country, eq: x}}\n"
    )
    d = one(project, text)
    assert (d.code, d.line) == ("S006", 7)
    assert d.message == "rules_file assets.csv is not a regular file (a FIFO, socket or device)"


# ---------------------------------------------------------------- cycles


def test_every_reference_cycle_is_reported(project: Path) -> None:
    text = HEAD + (
        "segments:\n"
        "  a: {where: {any: [{segment: b}, {segment: c}]}}\n"
        "  b: {where: {segment: a}}\n"
        "  c: {where: {segment: a}}\n"
        "  d: {where: {segment: e}}\n"
        "  e: {where: {segment: d}}\n"
        "  f: {where: {segment: f}}\n"
    )
    diags = diagnostics(project, text)
    assert [(d.code, d.line, d.message.split(": ", 1)[1]) for d in diags] == [
        ("S011", 6, "a -> b -> a"),
        ("S011", 6, "a -> c -> a"),
        ("S011", 9, "d -> e -> d"),
        ("S011", 11, "f -> f"),
    ]


def test_a_long_chain_of_segment_references_validates(project: Path) -> None:
    """The graph walks keep their own stack: 1,500 segments in a chain pass Python's limit."""
    chain = "".join(f"  s{i}: {{where: {{segment: s{i + 1}}}}}\n" for i in range(1500))
    text = HEAD + "segments:\n" + chain + f"  s1500: {DE}\n"
    spec = api.load(write(project, text)).spec
    assert graph.order(spec.segments, ["s0"])[:2] == ["s1500", "s1499"]
    text = text.replace(f"  s1500: {DE}\n", "  s1500: {where: {segment: s0}}\n")
    [d] = diagnostics(project, text)
    assert d.message.endswith("s1499 -> s1500 -> s0")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("sales_ready: .inf", "sales_ready must be a finite number, got inf"),
        ("min: .nan", "min must be a finite number, got nan"),
    ],
)
def test_scores_take_finite_numbers(project: Path, yaml_text: str, message: str) -> None:
    rules = "rules: [{name: r, points: 1, when: {field: age, gt: 1}}]"
    d = one(project, HEAD + f"scoring:\n  m: {{{yaml_text}, {rules}}}\n")
    assert (d.code, d.message) == ("S006", message)


def test_a_date_literal_on_a_number_column_is_shown_as_written(project: Path) -> None:
    d = one(project, HEAD + "segments:\n  a: {where: {field: age, gt: 2026-01-31}}\n")
    assert (d.code, d.message) == (
        "S012",
        "gt: '2026-01-31' is a date/time, but column 'age' has type int",
    )


def test_a_source_name_with_a_dot_is_found_in_a_field(project: Path) -> None:
    (project / "crm.csv").write_text("contact_id,stage\n1,won\n", encoding="utf-8")
    text = HEAD + (
        "  crm.v2: {path: crm.csv, key: contact_id, relation: one}\n"
        "segments:\n  won: {where: {field: crm.v2.stage, eq: won}}\n"
        "  typo: {where: {field: crm.v3.stage, eq: won}}\n"
    )
    [d] = diagnostics(project, text)
    assert (d.code, d.message) == ("S008", "unknown source 'crm' in field 'crm.v3.stage'")
    spec = api.load(write(project, text.replace("crm.v3", "crm.v2"))).spec
    won = m.FieldCond("stage", "crm.v2", m.Test((m.Op("eq", "won"),)))
    assert spec.segments["won"].where == won
