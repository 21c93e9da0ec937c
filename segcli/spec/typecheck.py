"""Column and literal type checks used by the validator once source schemas are known."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from segcli.spec import model as m


def category(dtype: pl.DataType | None) -> str:
    """'number', 'string', 'bool', 'time' or 'other' for a Polars dtype."""
    if dtype is None:
        return "other"
    if dtype.is_numeric():
        return "number"
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
        return "string"
    if dtype == pl.Boolean:
        return "bool"
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return "time"
    return "other"


def _literal_category(v: object) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, date | datetime | m.Relative):
        return "time"
    if isinstance(v, str):
        return "string"
    return "other"


def _is_iso(v: object) -> bool:
    if not isinstance(v, str):
        return False
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def type_name(dtype: pl.DataType | None) -> str:
    """A column type in the words of `columns:` declarations: int, float, str, bool, date..."""
    if dtype is None:
        return "unknown"
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
        return "str"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return str(dtype)


_LITERAL_WORDS = {
    "bool": "a boolean",
    "number": "a number",
    "time": "a date/time",
    "string": "a string",
    "other": "a value",
}


def op_problem(op: m.Op, cat: str, dtype_name: str, subject: str = "the column") -> str | None:
    """Why operator `op` cannot apply to `subject` of category `cat` (None when it can).

    `dtype_name` is the type as the user writes it (int, str, datetime...), so messages read
    like "'gt' compares numbers or times, but column 'title' has type str".
    """
    name, v = op.name, op.value
    if name == "is_null":
        return None
    has = f"but {subject} has type {dtype_name}"
    if name in m.STRING_OPS:
        if cat != "string":
            return f"'{name}' needs a string column, {has}"
        return None
    if name in m.TIME_OPS:
        if cat != "time":
            return f"'{name}' needs a date or datetime column, {has}"
        return None
    values = v if isinstance(v, tuple) else (v,)
    if name in m.ORDER_OPS and cat not in ("number", "time"):
        return f"'{name}' compares numbers or times, {has}"
    for x in values:
        lc = _literal_category(x)
        if cat == "time" and (lc == "time" or _is_iso(x)):
            continue
        if lc != cat:
            shown = repr(x.isoformat()) if isinstance(x, date) else repr(x)
            return f"{name}: {shown} is {_LITERAL_WORDS[lc]}, {has}"
    return None
