"""The shape of each data check's argument (the validator's side of `checks:`)."""

from __future__ import annotations

from typing import Any

from segcli.spec.timeutil import parse_duration


def arg_problem(kind: str, arg: Any) -> str | None:
    """Why a check's argument is malformed (None when it is fine). Used by the validator."""

    def cols(v: Any) -> bool:
        return (isinstance(v, str) and v != "") or (
            isinstance(v, list) and bool(v) and all(isinstance(c, str) for c in v)
        )

    if kind in ("unique", "not_null"):
        return None if cols(arg) else f"{kind} takes a column name or a list of column names"
    if kind == "fresh":
        ok = isinstance(arg, dict) and set(arg) == {"within"} and isinstance(arg["within"], str)
        if not ok or parse_duration(str(arg["within"])) is None:
            return "fresh takes {within: <duration>}, e.g. {within: 2d}"
        return None
    if kind == "orphans":
        ok = isinstance(arg, dict) and set(arg) == {"max"} and isinstance(arg["max"], int)
        return None if ok else "orphans takes {max: <count>}, e.g. {max: 0}"
    if kind == "accepted":
        ok = (
            isinstance(arg, dict)
            and set(arg) == {"column", "in"}
            and isinstance(arg["column"], str)
            and isinstance(arg["in"], list)
        )
        return None if ok else "accepted takes {column: <name>, in: [values]}"
    if kind == "rows":
        ok = (
            isinstance(arg, dict)
            and bool(arg)
            and set(arg) <= {"min", "max"}
            and all(isinstance(v, int) and not isinstance(v, bool) for v in arg.values())
        )
        return None if ok else "rows takes {min: <count>, max: <count>} (either or both)"
    return f"unknown check {kind!r}"  # pragma: no cover
