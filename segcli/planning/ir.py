"""segcli's own small expression IR: what a segment, score or aggregate computes, with no
engine in it.

Every node is a frozen dataclass, so expressions compare and hash by value (identical
aggregates are planned once) and print as segcli's own text (`render`). An engine turns the
nodes into its own expressions (`segcli.engines.polars` into Polars; SQL engines via sqlglot).

Null rule: comparisons, string tests and membership are unknown (null) on a null input, as in
SQL and Polars; the compiler wraps each positive leaf in `FillNull(..., Lit(False))`, so every
condition is true or false (SPEC §2.1). Time literals are timezone-aware UTC instants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TypeAlias

LitValue: TypeAlias = str | int | float | bool | date | datetime | None


@dataclass(frozen=True)
class Col:
    """A column: of the per-contact frame, or of a source's rows inside an aggregate."""

    name: str


@dataclass(frozen=True)
class Lit:
    """A scalar literal (datetimes are UTC instants)."""

    value: LitValue


@dataclass(frozen=True)
class Const:
    """The same boolean for every row (an empty `all` / `any`): a column, not a scalar."""

    value: bool


@dataclass(frozen=True)
class Not:
    item: Expr


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class IsNull:
    item: Expr


@dataclass(frozen=True)
class FillNull:
    item: Expr
    value: Expr


@dataclass(frozen=True)
class IfElse:
    """`then` where `cond` holds, else `otherwise` (None: null)."""

    cond: Expr
    then: Expr
    otherwise: Expr | None = None


CMP_OPS = ("eq", "gt", "ge", "lt", "le")


@dataclass(frozen=True)
class Cmp:
    """left OP right, OP one of eq, gt, ge, lt, le."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class IsIn:
    """The value (as text when `as_text`) is one of `values`."""

    item: Expr
    values: tuple[LitValue, ...]
    as_text: bool = False


STR_OPS = ("eq", "in", "contains", "starts_with", "ends_with", "matches")


@dataclass(frozen=True)
class StrTest:
    """A text test on the value cast to text; `ignore_case` lower-cases both sides (for
    `matches`, the regex is made case-insensitive instead)."""

    op: str
    item: Expr
    value: str | tuple[str, ...]
    ignore_case: bool = False


@dataclass(frozen=True)
class Cast:
    """Cast to `to`: one of int, float, str."""

    item: Expr
    to: str


@dataclass(frozen=True)
class Arith:
    """left OP right, OP one of add, sub, mul, div."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Horizontal:
    """Across columns of one row: `sum` (nulls count as nothing), `min` or `max`."""

    fn: str
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Clip:
    item: Expr
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class LocalMidnight:
    """A date as the UTC instant of its midnight in `tz` (null for a midnight DST skips)."""

    item: Expr
    tz: str


@dataclass(frozen=True)
class LocalDate:
    """The calendar date of a UTC instant in `tz`."""

    item: Expr
    tz: str


@dataclass(frozen=True)
class Shift:
    """A UTC instant moved by a signed duration (SPEC §2.6 `offset`): `seconds` exactly, or
    `months` calendar months on the local date-time in `tz`, the day clamped to the month's
    end; a local time a spring DST change skips is read with the offset before the change
    and a repeated one keeps the instant's fold (`segcli.spec.timeutil.shift`)."""

    item: Expr
    seconds: int = 0
    months: int = 0
    tz: str = "UTC"


@dataclass(frozen=True)
class DecayWeight:
    """0.5 ** (age / half_life) of a UTC instant at `as_of`; 1.0 where the instant is null."""

    item: Expr
    as_of: datetime
    half_life_s: int


@dataclass(frozen=True)
class Bucket:
    """A stable bucket in [0, 10000): sha256("salt:key"), first 8 bytes, mod 10000."""

    item: Expr
    salt: str


@dataclass(frozen=True)
class InList:
    """The contact key is listed in the list file `path` (loaded when the plan executes)."""

    item: Expr
    path: str


@dataclass(frozen=True)
class InPrevious:
    """The contact key was in `segment`'s rule-made set at the last committed run (the keys
    are given to the engine when the plan executes)."""

    item: Expr
    segment: str


@dataclass(frozen=True)
class HeldBefore:
    """The contact key has a value of per-contact column `column` stored at a committed run
    that passes `test` (an expression over `Col(column)`): property history, SPEC §2.6. The
    stored values are given to the engine when the plan executes."""

    item: Expr
    column: str
    test: Expr


@dataclass(frozen=True)
class Top:
    """`matches` kept only for the highest `n` (or `percent` of the matches, rounded up) by
    `value`, nulls last, ties by the contact key ascending."""

    matches: Expr
    value: Expr
    key: Expr
    n: int | None = None
    percent: float | None = None


@dataclass(frozen=True)
class PeerSum:
    """The sum of `item` over every contact with the same `by` value (a window over the
    per-contact frame; contacts whose `by` is null form one group, as in Polars and SQL, so
    callers decide null groups themselves)."""

    item: Expr
    by: Expr


Expr: TypeAlias = (
    Col
    | Lit
    | Const
    | Not
    | And
    | Or
    | IsNull
    | FillNull
    | IfElse
    | Cmp
    | IsIn
    | StrTest
    | Cast
    | Arith
    | Horizontal
    | Clip
    | LocalMidnight
    | LocalDate
    | Shift
    | DecayWeight
    | Bucket
    | InList
    | InPrevious
    | HeldBefore
    | Top
    | PeerSum
)


def children(e: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of a node."""
    out: list[Expr] = []
    for value in e.__dict__.values():
        if isinstance(value, tuple):
            out += [v for v in value if _is_expr(v)]
        elif _is_expr(value):
            out.append(value)
    return tuple(out)


def _is_expr(value: object) -> bool:
    return type(value).__module__ == __name__ and type(value).__name__ in _NODE_NAMES


def columns(e: Expr) -> set[str]:
    """Every column an expression reads."""
    if isinstance(e, Col):
        return {e.name}
    out: set[str] = set()
    for c in children(e):
        out |= columns(c)
    return out


def _lit_text(v: LitValue) -> str:
    if isinstance(v, datetime | date):
        return v.isoformat()
    return repr(v)


def render(e: Expr) -> str:
    """An expression as compact text, e.g. `(occurred_at >= 2026-10-21T00:00:00+00:00)`."""
    if isinstance(e, Col):
        return e.name
    if isinstance(e, Lit):
        return _lit_text(e.value)
    if isinstance(e, Const):
        return "TRUE" if e.value else "FALSE"
    if isinstance(e, Not):
        return f"NOT {render(e.item)}"
    if isinstance(e, And | Or):
        word = " AND " if isinstance(e, And) else " OR "
        return "(" + word.join(render(i) for i in e.items) + ")"
    if isinstance(e, IsNull):
        return f"{render(e.item)} IS NULL"
    if isinstance(e, FillNull):
        return f"coalesce({render(e.item)}, {render(e.value)})"
    if isinstance(e, IfElse):
        other = "NULL" if e.otherwise is None else render(e.otherwise)
        return f"if({render(e.cond)}, {render(e.then)}, {other})"
    if isinstance(e, Cmp | Arith):
        sym = {
            "eq": "=",
            "gt": ">",
            "ge": ">=",
            "lt": "<",
            "le": "<=",
            "add": "+",
            "sub": "-",
            "mul": "*",
            "div": "/",
        }
        return f"({render(e.left)} {sym[e.op]} {render(e.right)})"
    if isinstance(e, IsIn):
        vals = ", ".join(_lit_text(v) for v in e.values)
        return f"{render(e.item)}{'::text' if e.as_text else ''} IN ({vals})"
    if isinstance(e, StrTest):
        ic = " ignoring case" if e.ignore_case else ""
        return f"{render(e.item)} {e.op} {e.value!r}{ic}"
    if isinstance(e, Cast):
        return f"{render(e.item)}::{e.to}"
    if isinstance(e, Horizontal):
        return f"{e.fn}_of({', '.join(render(i) for i in e.items)})"
    if isinstance(e, Clip):
        return f"clip({render(e.item)}, {e.lower}, {e.upper})"
    if isinstance(e, LocalMidnight):
        return f"midnight({render(e.item)} in {e.tz})"
    if isinstance(e, LocalDate):
        return f"date({render(e.item)} in {e.tz})"
    if isinstance(e, Shift):
        by = f"{e.months:+d}mo in {e.tz}" if e.months else f"{e.seconds:+d}s"
        return f"shift({render(e.item)}, {by})"
    if isinstance(e, DecayWeight):
        return f"decay({render(e.item)}, half-life {e.half_life_s}s)"
    if isinstance(e, Bucket):
        return f"bucket({render(e.item)}, salt {e.salt!r})"
    if isinstance(e, InList):
        return f"{render(e.item)} listed in {e.path}"
    if isinstance(e, InPrevious):
        return f"{render(e.item)} in previous {e.segment}"
    if isinstance(e, HeldBefore):
        return f"{render(e.item)} held {render(e.test)} at a committed run"
    if isinstance(e, Top):
        cap = e.n if e.n is not None else f"{e.percent}%"
        return f"top({render(e.matches)}, {cap} by {render(e.value)})"
    if isinstance(e, PeerSum):
        return f"sum({render(e.item)}) over {render(e.by)}"
    raise NotImplementedError(type(e).__name__)  # pragma: no cover


_NODE_NAMES = {
    "Col",
    "Lit",
    "Const",
    "Not",
    "And",
    "Or",
    "IsNull",
    "FillNull",
    "IfElse",
    "Cmp",
    "IsIn",
    "StrTest",
    "Cast",
    "Arith",
    "Horizontal",
    "Clip",
    "LocalMidnight",
    "LocalDate",
    "Shift",
    "DecayWeight",
    "Bucket",
    "InList",
    "InPrevious",
    "HeldBefore",
    "Top",
    "PeerSum",
}


def transform(e: Expr, fn: Callable[[Expr], Expr | None]) -> Expr:
    """`e` with every node `fn` returns a replacement for replaced (children first; `fn`
    returns None to keep a node, rebuilt over its transformed children)."""
    changes: dict[str, object] = {}
    for name, value in e.__dict__.items():
        if isinstance(value, tuple) and any(_is_expr(v) for v in value):
            changes[name] = tuple(transform(v, fn) if _is_expr(v) else v for v in value)
        elif _is_expr(value):
            changes[name] = transform(value, fn)  # type: ignore[arg-type]
    rebuilt = replace(e, **changes) if changes else e  # type: ignore[arg-type]
    out = fn(rebuilt)
    return rebuilt if out is None else out
