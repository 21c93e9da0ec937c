"""Column and literal type checks used by the validator once source schemas are known."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from segcli import model as m


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


def op_problem(op: m.Op, cat: str, dtype_name: str) -> str | None:
    """Why operator `op` cannot apply to a column of category `cat` (None when it can)."""
    name, v = op.name, op.value
    if name == "is_null":
        return None
    if name in m.STRING_OPS:
        if cat != "string":
            return f"'{name}' needs a string column, this column is {dtype_name}"
        return None
    if name in m.TIME_OPS:
        if cat != "time":
            return f"'{name}' needs a date/datetime column, this column is {dtype_name}"
        return None
    values = v if isinstance(v, tuple) else (v,)
    if name in m.ORDER_OPS and cat not in ("number", "time"):
        return f"'{name}' compares numbers or times, this column is {dtype_name}"
    for x in values:
        lc = _literal_category(x)
        if cat == "time" and (lc == "time" or _is_iso(x)):
            continue
        if lc != cat:
            return f"{name}: {x!r} is a {lc} literal but the column is {dtype_name}"
    return None
