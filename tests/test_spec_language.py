"""The language tables (segcli.spec.language) drive the parser, the JSON Schema and the docs.

Each test would fail if one of them drifted from the tables: an operator the parser does not
check by its kind, a key the schema or the parser lacks, an operator or aggregate the README
does not list.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from segcli import api
from segcli.errors import SpecError
from segcli.spec import language as lang
from segcli.spec import parse, parse_conditions, parse_scoring
from segcli.spec.schema import json_schema

REPO = Path(__file__).parent.parent
DATA = Path(__file__).parent / "projects" / "errors"
README = (REPO / "README.md").read_text(encoding="utf-8")

# A value of each kind, and one of the wrong shape.
GOOD_BAD: dict[str, tuple[str, str]] = {
    "scalar": ("x", "[x, y]"),
    "list": ("[x, y]", "x"),
    "ordered": ("5", "true"),
    "range": ("[1, 2]", "[1]"),
    "string": ("x", "5"),
    "regex": ('"^a"', '"(a"'),
    "bool": ("true", "x"),
    "duration": ("30d", "30 days"),
    "period": ("last_month", "last_fortnight"),
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def _load(project: Path, op: str, value: str) -> None:
    text = (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: contact_id}\n"
        f"segments:\n  a: {{where: {{field: country, {op}: {value}}}}}\n"
    )
    (project / "segments.yaml").write_text(text, encoding="utf-8")
    api.load(project / "segments.yaml", with_data=False)


@pytest.mark.parametrize("op", [o.name for o in lang.OPERATORS])
def test_the_parser_checks_each_operator_by_its_kind(project: Path, op: str) -> None:
    good, bad = GOOD_BAD[lang.OPERATOR[op].value]
    _load(project, op, good)
    with pytest.raises(SpecError) as info:
        _load(project, op, bad)
    assert [d.code for d in info.value.diagnostics] in (["S004"], ["S006"])


def test_every_value_kind_has_a_schema_and_an_example() -> None:
    kinds = set(lang.ValueKind.__args__)  # type: ignore[attr-defined]
    assert kinds == set(lang.VALUE_SCHEMAS) == set(GOOD_BAD)


def _props(schema: dict[str, Any]) -> set[str]:
    return set(schema["properties"])


def test_the_schema_and_the_parser_take_the_same_keys() -> None:
    s = json_schema()
    top = s["properties"]
    seg = top["segments"]["additionalProperties"]
    model = top["scoring"]["additionalProperties"]
    conds = {next(iter(c["required"])): c for c in s["$defs"]["condition"]["anyOf"]}
    event = conds["event"]["properties"]["event"]
    assert _props(s) == set(parse.TOP_KEYS)
    assert _props(top["sources"]["additionalProperties"]) == set(parse.SOURCE_KEYS)
    assert _props(seg) == set(parse.SEGMENT_KEYS)
    assert _props(model) == set(parse_scoring.MODEL_KEYS)
    assert _props(model["properties"]["rules"]["items"]) == set(parse_scoring.RULE_KEYS)
    assert _props(event) == set(parse_conditions.EVENT_KEYS)
    assert set(conds) == set(parse_conditions.COND_KEYS)
    leaf = {o.name for o in lang.OPERATORS} | set(lang.LEAF_SWITCHES)
    assert _props(conds["field"]) == leaf | {"field", "ever", *parse_conditions.FIELD_OPTIONS}
    assert _props(conds["segment"]) == {"segment", *lang.SEGMENT_HISTORY}
    member_for = conds["segment"]["properties"]["member_for"]
    assert _props(member_for) == set(lang.MEMBER_FOR_OPS)
    assert _props(conds["segment"]["properties"]["left"]) == set(lang.LEFT_OPS)
    for agg in lang.AGGREGATES:
        extra = {"column"} if agg.column else set()
        assert _props(event["properties"][agg.name]) == leaf | extra


def test_the_readme_lists_every_operator() -> None:
    para = README.split("Operators (several in one leaf are ANDed):", 1)[1].split("**Nulls.**")[0]
    listed = set(re.findall(r"`([a-z_]+)(?::[^`]*)?`", para)) - set(lang.PERIODS)
    assert listed == {o.name for o in lang.OPERATORS} | set(lang.LEAF_SWITCHES)


def test_the_readme_lists_every_aggregate_and_condition_kind() -> None:
    para = README.split("An event condition takes", 1)[1].split("\n\n")[0]
    words = set(re.findall(r"[a-z_]+", para))
    assert {a.name for a in lang.AGGREGATES} <= words
    table = README.split("| form | meaning |", 1)[1].split("\n\n")[0]
    first_cells = [row.split("|")[1] for row in table.splitlines()[2:]]
    kinds = {k for cell in first_cells for k in re.findall(r"`([a-z_]+):", cell)}
    assert kinds == set(lang.CONDITIONS)
