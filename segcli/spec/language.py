"""The spec language, declared once: operators, aggregates, condition kinds and every section's
keys with the shape of their values.

The parser takes its key lists and operator kinds from here, `schema.py` builds the JSON Schema
from the same tables, and a test checks the README's operator list against `OPERATORS`. To add
an operator or an aggregate, add a row here, then its meaning in `segcli/planning/compile.py` and in
the reference evaluator (`tests/reference.py`); see CONTRIBUTING.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# ---------------------------------------------------------------- value shapes (JSON Schema)

ValueKind = Literal[
    "scalar", "list", "ordered", "range", "string", "regex", "bool", "duration", "period"
]
PERIODS = (
    "today",
    "yesterday",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_year",
    "this_fiscal_quarter",
    "last_fiscal_quarter",
    "this_fiscal_year",
    "last_fiscal_year",
)
DURATION: dict[str, Any] = {
    "type": "string",
    "pattern": r"^\d+(h|d|w|mo|y)$",
    "description": "e.g. 30d, 12h, 2w; calendar steps 6mo, 1y",
}
SCALAR: dict[str, Any] = {"type": ["string", "number", "boolean"]}
ORDERED: dict[str, Any] = {
    "anyOf": [
        {"type": "number"},
        {"type": "string", "pattern": r"^-\d+(h|d|w|mo|y)$", "description": "relative: -30d, -6mo"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "date"},
        {"type": "string"},
    ]
}
STRING: dict[str, Any] = {"type": "string"}
BOOL: dict[str, Any] = {"type": "boolean"}
NUMBER: dict[str, Any] = {"type": "number"}
STR_OR_LIST: dict[str, Any] = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
}
CONDITION: dict[str, Any] = {"$ref": "#/$defs/condition"}
VALUE_SCHEMAS: dict[str, dict[str, Any]] = {
    "scalar": SCALAR,
    "list": {"type": "array", "items": SCALAR},
    "ordered": ORDERED,
    "range": {"type": "array", "items": ORDERED, "minItems": 2, "maxItems": 2},
    "string": STRING,
    "regex": STRING,
    "bool": BOOL,
    "duration": DURATION,
    "period": {"enum": list(PERIODS)},
}

# ---------------------------------------------------------------- operators


@dataclass(frozen=True)
class Operator:
    """An operator of a leaf: its name, the kind of its value, and its null behaviour.

    `complement_of` names the positive operator a negative one is the exact complement of
    (so it matches null); `is_null` is the one operator that tells null apart.
    """

    name: str
    value: ValueKind
    doc: str
    complement_of: str | None = None
    # Its value may name a column instead of a literal: `{column: C, offset: D}` (SPEC §2.6).
    column_operand: bool = False

    @property
    def polarity(self) -> Literal["positive", "negative", "null"]:
        if self.name == "is_null":
            return "null"
        return "negative" if self.complement_of else "positive"


# In this order in help texts ("all: eq, in, gt, ...").
OPERATORS: tuple[Operator, ...] = (
    Operator("eq", "scalar", "equals the value", column_operand=True),
    Operator("in", "list", "equals one of the values"),
    Operator(
        "gt",
        "ordered",
        "greater than a number, date/datetime or relative time (-30d)",
        column_operand=True,
    ),
    Operator("gte", "ordered", "greater than or equal", column_operand=True),
    Operator("lt", "ordered", "less than", column_operand=True),
    Operator("lte", "ordered", "less than or equal", column_operand=True),
    Operator("between", "range", "`[low, high]`, both inclusive", column_operand=True),
    Operator("contains", "string", "the text contains the string"),
    Operator("starts_with", "string", "the text starts with the string"),
    Operator("ends_with", "string", "the text ends with the string"),
    Operator("matches", "regex", "regular expression, searched (not anchored)"),
    Operator("within", "duration", "`as_of - d <= value <= as_of`"),
    Operator("older_than", "duration", "`value < as_of - d`"),
    Operator("during", "period", "a calendar period in the project timezone"),
    Operator("ne", "scalar", "not equal (matches null)", complement_of="eq", column_operand=True),
    Operator("not_in", "list", "none of the values (matches null)", complement_of="in"),
    Operator("not_contains", "string", "does not contain (matches null)", complement_of="contains"),
    Operator("is_null", "bool", "`true`: the value is null; `false`: it is not"),
)
OPERATOR: dict[str, Operator] = {op.name: op for op in OPERATORS}
# Switches of a leaf, beside its operators.
LEAF_SWITCHES = ("ignore_case", "include_missing")
# Options of a `field:` leaf beside its operators and switches (SPEC §2.6).
FIELD_OPTIONS = ("offset",)
SIGNED_DURATION: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[-+]?\d+(h|d|w|mo|y)$",
    "description": "a signed duration added to a time: 14d, -2h, 1mo",
}
# `{column: C, offset: D}`: an operator's value naming a column (SPEC §2.6).
COLUMN_OPERAND: dict[str, Any] = {
    "type": "object",
    "properties": {"column": STRING, "offset": SIGNED_DURATION},
    "required": ["column"],
    "additionalProperties": False,
}

# ---------------------------------------------------------------- aggregates of event conditions


@dataclass(frozen=True)
class Aggregate:
    """An event condition's test: `column` says it needs `column:` (numeric when `numeric`);
    `result` is what its operators compare ('number' or 'time')."""

    name: str
    doc: str
    column: bool = False
    numeric: bool = False
    result: Literal["number", "time"] = "number"


AGGREGATES: tuple[Aggregate, ...] = (
    Aggregate("count", "number of matching rows (default test: `count: {gte: 1}`)"),
    Aggregate("sum", "sum of a numeric column (0 without rows)", column=True, numeric=True),
    Aggregate("avg", "average of a numeric column", column=True, numeric=True),
    Aggregate("min", "smallest value of a numeric column", column=True, numeric=True),
    Aggregate("max", "largest value of a numeric column", column=True, numeric=True),
    Aggregate("distinct", "number of distinct non-null values of a column", column=True),
    Aggregate("active_days", "number of calendar days with a matching row"),
    Aggregate("last", "time of the latest matching row", result="time"),
    Aggregate("first", "time of the earliest matching row", result="time"),
)
AGGREGATE: dict[str, Aggregate] = {a.name: a for a in AGGREGATES}

# ---------------------------------------------------------------- condition kinds

CONDITIONS: dict[str, str] = {
    "all": "every condition holds (empty list: true)",
    "any": "at least one holds (empty list: false)",
    "not": "the condition does not hold",
    "field": "a contacts column (or SOURCE.COL of a relation: one source) + operators",
    "event": "an aggregate over a contact's rows of relation: many sources",
    "segment": "the contact is a member of segment NAME in this run (or, with ever, "
    "member_for or left, its history in the state's committed runs)",
    "score": "the contact's current score in a model + operators",
    "score_change": "score now minus score `over` ago + operators",
    "bucket": "a stable pseudo-random share of contacts",
    "grade": "the grade the contact's score earns in a model with grades + eq/ne/in/not_in",
    "sequence": "rows of 2+ steps in time order (max_gap, within/during, same, then_not)",
    "account": "how many other contacts of the same account match a condition",
    "at_least": "at least n of the conditions hold (n: 0 is true)",
}

# ---------------------------------------------------------------- the keys of each section


@dataclass(frozen=True)
class Key:
    """A key of a spec mapping and the JSON Schema of its value."""

    name: str
    schema: dict[str, Any]
    required: bool = False


def operand_schema(op: Operator, columns: bool) -> dict[str, Any]:
    """The schema of an operator's value; with `columns`, a column operand where it may be one."""
    if not (columns and op.column_operand):
        return VALUE_SCHEMAS[op.value]
    if op.value == "range":
        item = {"anyOf": [*ORDERED["anyOf"], COLUMN_OPERAND]}
        return {"type": "array", "items": item, "minItems": 2, "maxItems": 2}
    return {"anyOf": [VALUE_SCHEMAS[op.value], COLUMN_OPERAND]}


def ops_schema(
    extra: dict[str, Any] | None = None,
    required: list[str] | None = None,
    *,
    columns: bool = False,
) -> dict[str, Any]:
    """A leaf's mapping: every operator and switch, plus `extra` keys; with `columns`, operator
    values may be column operands (field leaves and `where:` rows)."""
    props: dict[str, Any] = {op.name: operand_schema(op, columns) for op in OPERATORS}
    props.update({s: BOOL for s in LEAF_SWITCHES})
    props.update(extra or {})
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def obj(keys: tuple[Key, ...], **extra: Any) -> dict[str, Any]:
    """The JSON Schema of a mapping with exactly `keys`."""
    out: dict[str, Any] = {"type": "object", "properties": {k.name: k.schema for k in keys}}
    required = [k.name for k in keys if k.required]
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    out.update(extra)
    return out


def names(keys: tuple[Key, ...]) -> tuple[str, ...]:
    return tuple(k.name for k in keys)


COLUMN_TYPES = ("str", "int", "float", "bool", "date", "datetime")
KINDS = ("dynamic", "semi_dynamic", "static")
CHECK_KINDS = ("unique", "not_null", "fresh", "orphans", "accepted", "rows")
LIST_FILES = ("from_file", "include_file", "exclude_file")

SOURCE = (
    Key("path", STRING),  # one of path and table
    # an event source read from the Spark catalog (engine spark only; SPEC §3.1)
    Key("table", {**STRING, "description": "engine spark: a catalog table, instead of path"}),
    Key("key", STRING, True),
    Key("time", STRING),
    Key("type", STRING),
    Key("relation", {"enum": ["one", "many"]}),
    Key("dedupe", STR_OR_LIST),
    Key("columns", {"type": "object", "additionalProperties": {"enum": list(COLUMN_TYPES)}}),
    Key("delimiter", {"type": "string", "minLength": 1, "maxLength": 1}),  # CSV only
    Key("encoding", {"type": "string"}),  # CSV only: a Python codec name
    # contacts only: the column naming each contact's account (SPEC §2.7)
    Key("account", {**STRING, "description": "contacts only: the account (company) column"}),
)
PATH_OR_TABLE = [{"required": ["path"]}, {"required": ["table"]}]  # a source's rows: one of

REGULARLY = (
    Key("at_least", {"type": "integer", "minimum": 1, "description": "rows per period (1)"}),
    Key("every", DURATION, True),
    Key("periods", {"type": "integer", "minimum": 1, "description": "periods needed (of)"}),
    Key("of", {"type": "integer", "minimum": 1, "maximum": 1000}, True),
)
EVENT = (
    Key("source", STR_OR_LIST, True),
    Key("type", STR_OR_LIST),
    Key("where", {"type": "object", "additionalProperties": ops_schema(columns=True)}),
    Key("within", DURATION),
    Key("during", VALUE_SCHEMAS["period"]),
    *(
        Key(a.name, ops_schema({"column": STRING}, ["column"]) if a.column else ops_schema())
        for a in AGGREGATES
    ),
    Key("regularly", obj(REGULARLY)),
    # Per-value grouping (SPEC §2.6): the test counts the values of `per` whose rows pass.
    Key("per", {**STRING, "description": "judge each value of this column on its own"}),
    Key("has", {**STR_OR_LIST, "description": "types each value's rows must contain (needs per)"}),
    Key("lacks", {**STR_OR_LIST, "description": "types they must not contain (needs per)"}),
)
SEQ_STEP = (
    Key("source", STR_OR_LIST, True),
    Key("type", STR_OR_LIST),
    Key("where", {"type": "object", "additionalProperties": ops_schema(columns=True)}),
)
THEN_NOT = (Key("step", obj(SEQ_STEP), True), Key("wait", DURATION, True))
SEQUENCE = (
    Key("steps", {"type": "array", "items": obj(SEQ_STEP), "minItems": 2}, True),
    Key("max_gap", DURATION),
    Key("within", DURATION),
    Key("during", VALUE_SCHEMAS["period"]),
    Key("same", STR_OR_LIST),
    Key("then_not", obj(THEN_NOT)),
)
ACCOUNT = (
    Key("where", CONDITION, True),
    Key("count", ops_schema(), False),
    Key("others", {**BOOL, "description": "default true: the contact itself is not counted"}),
)
# History options of `segment:` (SPEC §2.6), at most one per leaf; `ever` also on `field:`.
SEGMENT_HISTORY = ("ever", "member_for", "left")
MEMBER_FOR_OPS = ("gt", "gte", "lt", "lte", "eq", "between")  # on the stay's length
LEFT_OPS = ("within", "older_than", "during", "gt", "gte", "lt", "lte", "between")
EVER: dict[str, Any] = {"const": True, "description": "a member now or at a committed run"}
SEGMENT_REF = (
    Key("segment", STRING, True),
    Key("ever", EVER),
    Key(
        "member_for",
        {
            "type": "object",
            "properties": {
                op: {"type": "array", "items": DURATION, "minItems": 2, "maxItems": 2}
                if op == "between"
                else DURATION
                for op in MEMBER_FOR_OPS
            },
            "minProperties": 1,
            "additionalProperties": False,
            "description": "operators on the length of the current stay, e.g. {gte: 30d}",
        },
    ),
    Key(
        "left",
        {
            "type": "object",
            "properties": {op: VALUE_SCHEMAS[OPERATOR[op].value] for op in LEFT_OPS},
            "minProperties": 1,
            "additionalProperties": False,
            "description": "time operators on when the contact left, e.g. {within: 7d}",
        },
    ),
)
AT_LEAST = (
    Key("n", {"type": "integer", "minimum": 0, "description": "how many must hold"}, True),
    Key("of", {"type": "array", "items": CONDITION}, True),
)
BUCKET = (
    Key("percent", {"type": "number", "minimum": 0, "maximum": 100}, True),
    Key("salt", {"type": ["string", "number"]}, True),
)
SCORE_CHANGE_BY = (Key("model", STRING, True), Key("over", DURATION, True))
TOP_BY = (Key("field", STRING), Key("score", STRING), Key("score_change", obj(SCORE_CHANGE_BY)))
TOP = (
    Key("n", {"type": "integer", "minimum": 1}),
    Key("percent", {"type": "number", "exclusiveMinimum": 0, "maximum": 100}),
    Key("by", obj(TOP_BY, minProperties=1, maxProperties=1), True),
)
EXPECT = (
    Key("min_size", {"type": "integer", "minimum": 0}),
    Key("max_size", {"type": "integer", "minimum": 0}),
    Key(
        "max_change",
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\d+(\.\d+)?%$"},
            ]
        },
    ),
)
# Actions on entered/left contacts (SPEC §2.9); parsed by spec/actions.py.
EXPORT_FORMATS = ("csv", "jsonl", "parquet")
PLACEHOLDERS = ("segment", "change", "run_id", "date")
WEBHOOK_TEMPLATES = ("json", "slack")
TIMEOUT: dict[str, Any] = {
    "type": "string",
    "pattern": r"^\d+(\.\d+)?(ms|s|m|h)$",
    "description": "e.g. 30s, 500ms, 2m",
}
COLUMNS: dict[str, Any] = {"type": "array", "items": STRING}
ARGV: dict[str, Any] = {"type": "array", "items": STRING, "minItems": 1}
EXPORT = (
    Key("path", {"type": "string", "pattern": r"\.(csv|jsonl|parquet)$"}, True),
    Key("columns", COLUMNS),
)
COMMAND = (Key("argv", ARGV, True), Key("timeout", TIMEOUT), Key("columns", COLUMNS))
WEBHOOK = (
    Key("url", {"type": "string", "pattern": "^https?://"}, True),
    Key("batch", {"type": "integer", "minimum": 1}),
    Key("secret_env", STRING),
    Key("template", {"enum": list(WEBHOOK_TEMPLATES)}),
    Key("timeout", TIMEOUT),
    Key("columns", COLUMNS),
)
ACTION = (
    Key("export", obj(EXPORT)),
    Key("command", {"anyOf": [ARGV, obj(COMMAND)]}),
    Key("webhook", obj(WEBHOOK)),
)
ACTIONS: dict[str, Any] = {
    "type": "array",
    "items": {"anyOf": [obj((k,), required=[k.name]) for k in ACTION]},
}

SEGMENT = (
    Key("description", STRING),
    Key("kind", {"enum": list(KINDS)}),
    Key("where", CONDITION),
    Key("exclude", CONDITION),
    Key("top", obj(TOP)),
    Key("tags", {"type": "array", "items": STRING}),
    Key("expect", obj(EXPECT)),
    *(Key(f, STRING) for f in LIST_FILES),
    Key("on_enter", ACTIONS),
    Key("on_leave", ACTIONS),
)
READY = {"anyOf": [NUMBER, {"type": "string", "pattern": r"^-?\d+(\.\d+)?%$"}]}
RULE = (
    Key("name", STRING, True),
    Key("stage", STRING),
    Key("ready", READY),
    Key("points", NUMBER),
    Key("each", BOOL),
    Key("max", NUMBER),
    Key("when", CONDITION, True),
)
RULES_FILE = (
    Key("path", STRING, True),
    Key("when", CONDITION, True),
    Key("each", BOOL),
    Key("max", NUMBER),
)
DECAY = (Key("half_life", DURATION, True),)
MODEL = (
    Key("sales_ready", NUMBER),
    Key("rules", {"type": "array", "items": obj(RULE)}),
    Key("rules_file", obj(RULES_FILE)),
    Key("decay", obj(DECAY)),
    Key("min", NUMBER),
    Key("max", NUMBER),
    Key(
        "grades",
        {
            "type": "object",
            "additionalProperties": NUMBER,
            "minProperties": 1,
            "description": "grade: lowest score that earns it, highest first",
        },
    ),
    Key("below", {**STRING, "description": "the grade of lower scores (default F)"}),
)
GRADE_OPS = ("eq", "ne", "in", "not_in")
CHECK = (Key("source", STRING, True), *(Key(k, {}) for k in CHECK_KINDS))
STATE = (Key("keep_runs", {"type": "integer", "minimum": 1}),)
ENGINES = ("polars", "duckdb", "spark")
ENGINE_NAME = {"enum": list(ENGINES), "description": "where a run executes (SPEC §3.1)"}
ENGINE = (
    Key("name", ENGINE_NAME, True),
    Key(
        "master", {**STRING, "description": "spark: local[N], spark://HOST:PORT or sc://HOST:PORT"}
    ),
    Key(
        "conf",
        {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
            "description": "spark: session settings, e.g. spark.sql.shuffle.partitions",
        },
    ),
)
TOP_LEVEL = (
    Key("version", {"const": 1}),
    Key("timezone", {"type": "string", "description": "IANA name, e.g. Europe/Berlin"}),
    Key("engine", {"anyOf": [ENGINE_NAME, obj(ENGINE)]}),
    Key(
        "fiscal_year_start",
        {
            "type": "integer",
            "minimum": 1,
            "maximum": 12,
            "description": "the month fiscal years start on (default 1)",
        },
    ),
    Key(
        "sources",
        {
            "type": "object",
            "properties": {"contacts": obj(SOURCE, anyOf=PATH_OR_TABLE)},
            "required": ["contacts"],
            "additionalProperties": obj(SOURCE, anyOf=PATH_OR_TABLE),
        },
        True,
    ),
    Key("segments", {"type": "object", "additionalProperties": obj(SEGMENT)}),
    Key("scoring", {"type": "object", "additionalProperties": obj(MODEL)}),
    Key("checks", {"type": "array", "items": obj(CHECK, minProperties=2, maxProperties=2)}),
    Key("state", obj(STATE)),
)
