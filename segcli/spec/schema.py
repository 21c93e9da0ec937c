"""The JSON Schema of segments.yaml (`segcli schema`), built from `segcli.spec.language`.

Every key, operator, aggregate and enum comes from the language tables the parser uses, so the
schema cannot drift from what `segcli validate` accepts. It is looser than the validator in one
way: it cannot know a file's columns or types.
"""

from __future__ import annotations

from typing import Any

from segcli.spec import language as lang


def _one_key(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: value},
        "required": [key],
        "additionalProperties": False,
    }


def _conditions() -> dict[str, dict[str, Any]]:
    cond = lang.CONDITION
    shapes: dict[str, dict[str, Any]] = {
        "all": _one_key("all", {"type": "array", "items": cond}),
        "any": _one_key("any", {"type": "array", "items": cond}),
        "not": _one_key("not", cond),
        "field": lang.ops_schema(
            {
                "field": lang.STRING,
                "ever": lang.EVER,
                **dict.fromkeys(lang.FIELD_OPTIONS, lang.SIGNED_DURATION),
            },
            ["field"],
            columns=True,
        ),
        "event": _one_key("event", lang.obj(lang.EVENT)),
        "segment": lang.obj(lang.SEGMENT_REF, maxProperties=2),
        "score": _one_key("score", lang.ops_schema({"model": lang.STRING}, ["model"])),
        "score_change": _one_key(
            "score_change",
            lang.ops_schema({"model": lang.STRING, "over": lang.DURATION}, ["model", "over"]),
        ),
        "bucket": _one_key("bucket", lang.obj(lang.BUCKET)),
        "grade": _one_key("grade", _grade()),
        "sequence": _one_key("sequence", lang.obj(lang.SEQUENCE)),
        "account": _one_key("account", lang.obj(lang.ACCOUNT)),
        "at_least": _one_key("at_least", lang.obj(lang.AT_LEAST)),
    }
    assert list(shapes) == list(lang.CONDITIONS), "a condition kind has no schema"
    return shapes


def _grade() -> dict[str, Any]:
    props = {"model": lang.STRING}
    props.update({op: lang.VALUE_SCHEMAS[lang.OPERATOR[op].value] for op in lang.GRADE_OPS})
    return {
        "type": "object",
        "properties": props,
        "required": ["model"],
        "minProperties": 2,
        "additionalProperties": False,
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a segcli spec file."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://segcli.dev/schema/segments.json",
        "title": "segcli segments.yaml",
        **lang.obj(lang.TOP_LEVEL),
        "$defs": {"condition": {"anyOf": list(_conditions().values())}},
    }
