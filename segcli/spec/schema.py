"""A JSON Schema of segments.yaml, generated from the validator's own declarations.

The key lists, operators, kinds, periods and aggregate names come from `segcli.spec.validate` and
`segcli.spec.model`, so the schema cannot drift from what `segcli validate` accepts. The schema is
looser than the validator in one way: it cannot know a file's columns or types.
"""

from __future__ import annotations

from typing import Any

from segcli.spec import model as m
from segcli.spec import validate as v
from segcli.spec.timeutil import PERIODS

DURATION = {"type": "string", "pattern": r"^\d+[hdw]$", "description": "e.g. 30d, 12h, 2w"}
SCALAR = {"type": ["string", "number", "boolean"]}
ORDERED = {
    "anyOf": [
        {"type": "number"},
        {"type": "string", "pattern": r"^-\d+[hdw]$", "description": "relative: -30d"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "date"},
        {"type": "string"},
    ]
}


def _op_schema(op: str) -> dict[str, Any]:
    if op in ("eq", "ne"):
        return SCALAR
    if op in ("in", "not_in"):
        return {"type": "array", "items": SCALAR}
    if op in ("gt", "gte", "lt", "lte"):
        return ORDERED
    if op == "between":
        return {"type": "array", "items": ORDERED, "minItems": 2, "maxItems": 2}
    if op in m.STRING_OPS:
        return {"type": "string"}
    if op == "is_null":
        return {"type": "boolean"}
    if op in ("within", "older_than"):
        return DURATION
    if op == "during":
        return {"enum": list(PERIODS)}
    raise AssertionError(op)  # pragma: no cover


def _ops(extra: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {op: _op_schema(op) for op in m.ALL_OPS}
    props.update({s: {"type": "boolean"} for s in v.LEAF_SWITCHES})
    props.update(extra or {})
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def _one_key(
    key: str, value: dict[str, Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    props = {key: value, **(extra or {})}
    return {"type": "object", "properties": props, "required": [key], "additionalProperties": False}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a segcli spec file."""
    cond = {"$ref": "#/$defs/condition"}
    aggs = {
        k: _ops({"column": {"type": "string"}}, ["column"]) if k in m.AGG_WITH_COLUMN else _ops()
        for k in m.AGG_KINDS
    }
    str_or_list = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    event: dict[str, Any] = {
        "type": "object",
        "properties": {
            "source": str_or_list,
            "type": str_or_list,
            "where": {"type": "object", "additionalProperties": _ops()},
            "within": DURATION,
            "during": {"enum": list(PERIODS)},
            **aggs,
        },
        "required": ["source"],
        "additionalProperties": False,
    }
    assert set(event["properties"]) == set(v.EVENT_KEYS)
    field_leaf = _ops({"field": {"type": "string"}}, ["field"])
    conditions = {
        "all": _one_key("all", {"type": "array", "items": cond}),
        "any": _one_key("any", {"type": "array", "items": cond}),
        "not": _one_key("not", cond),
        "field": field_leaf,
        "event": _one_key("event", event),
        "segment": _one_key("segment", {"type": "string"}),
        "score": _one_key("score", _ops({"model": {"type": "string"}}, ["model"])),
        "score_change": _one_key(
            "score_change",
            _ops({"model": {"type": "string"}, "over": DURATION}, ["model", "over"]),
        ),
        "bucket": _one_key(
            "bucket",
            {
                "type": "object",
                "properties": {
                    "percent": {"type": "number", "minimum": 0, "maximum": 100},
                    "salt": {"type": ["string", "number"]},
                },
                "required": ["percent", "salt"],
                "additionalProperties": False,
            },
        ),
    }
    assert set(conditions) == set(v.COND_KEYS)
    source: dict[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "key": {"type": "string"},
            "time": {"type": "string"},
            "type": {"type": "string"},
            "relation": {"enum": ["one", "many"]},
            "dedupe": str_or_list,
            "columns": {"type": "object", "additionalProperties": {"enum": list(v.COLUMN_TYPES)}},
        },
        "required": ["path", "key"],
        "additionalProperties": False,
    }
    assert set(source["properties"]) == set(v.SOURCE_KEYS)
    top_by = {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "field": {"type": "string"},
            "score": {"type": "string"},
            "score_change": {
                "type": "object",
                "properties": {"model": {"type": "string"}, "over": DURATION},
                "required": ["model", "over"],
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    }
    segment: dict[str, Any] = {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "kind": {"enum": list(v.KINDS)},
            "where": cond,
            "exclude": cond,
            "top": {
                "type": "object",
                "properties": {
                    "n": {"type": "integer", "minimum": 1},
                    "percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                    "by": top_by,
                },
                "required": ["by"],
                "additionalProperties": False,
            },
            "tags": {"type": "array", "items": {"type": "string"}},
            "expect": {
                "type": "object",
                "properties": {
                    "min_size": {"type": "integer", "minimum": 0},
                    "max_size": {"type": "integer", "minimum": 0},
                    "max_change": {
                        "anyOf": [
                            {"type": "integer", "minimum": 0},
                            {"type": "string", "pattern": r"^\d+(\.\d+)?%$"},
                        ]
                    },
                },
                "additionalProperties": False,
            },
            "from_file": {"type": "string"},
            "include_file": {"type": "string"},
            "exclude_file": {"type": "string"},
        },
        "additionalProperties": False,
    }
    assert set(segment["properties"]) == set(v.SEGMENT_KEYS)
    points = {"type": "number"}
    ready = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d+(\.\d+)?%$"}]}
    rule: dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "stage": {"type": "string"},
            "ready": ready,
            "points": points,
            "each": {"type": "boolean"},
            "max": {"type": "number"},
            "when": cond,
        },
        "required": ["name", "when"],
        "additionalProperties": False,
    }
    assert set(rule["properties"]) == set(v.RULE_KEYS)
    model: dict[str, Any] = {
        "type": "object",
        "properties": {
            "sales_ready": {"type": "number"},
            "rules": {"type": "array", "items": rule},
            "rules_file": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "when": cond,
                    "each": {"type": "boolean"},
                    "max": {"type": "number"},
                },
                "required": ["path", "when"],
                "additionalProperties": False,
            },
            "decay": {
                "type": "object",
                "properties": {"half_life": DURATION},
                "required": ["half_life"],
                "additionalProperties": False,
            },
            "min": {"type": "number"},
            "max": {"type": "number"},
        },
        "additionalProperties": False,
    }
    assert set(model["properties"]) == set(v.MODEL_KEYS)
    check = {
        "type": "object",
        "properties": {"source": {"type": "string"}, **{k: {} for k in v.CHECK_KINDS}},
        "required": ["source"],
        "minProperties": 2,
        "maxProperties": 2,
        "additionalProperties": False,
    }
    top: dict[str, Any] = {
        "type": "object",
        "properties": {
            "version": {"const": 1},
            "timezone": {"type": "string", "description": "IANA name, e.g. Europe/Berlin"},
            "sources": {
                "type": "object",
                "properties": {"contacts": source},
                "required": ["contacts"],
                "additionalProperties": source,
            },
            "segments": {"type": "object", "additionalProperties": segment},
            "scoring": {"type": "object", "additionalProperties": model},
            "checks": {"type": "array", "items": check},
            "state": {
                "type": "object",
                "properties": {"keep_runs": {"type": "integer", "minimum": 1}},
                "additionalProperties": False,
            },
        },
        "required": ["sources"],
        "additionalProperties": False,
    }
    assert set(top["properties"]) == set(v.TOP_KEYS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://segcli.dev/schema/segments.json",
        "title": "segcli segments.yaml",
        **top,
        "$defs": {"condition": {"anyOf": list(conditions.values())}},
    }
