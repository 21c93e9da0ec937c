"""segcli's IR as sqlglot expression trees, for six SQL dialects.

`Translator(dialect, ...).expr(ir)` turns one IR expression into a sqlglot expression. Portable
forms are used where every dialect agrees (COALESCE, CASE, comparisons, window functions);
where dialects differ in meaning (time zones, hashing, regular expressions, LEAST on nulls)
each dialect gets its own tree, so the SQL keeps the IR's exact meaning. A semantic a dialect
cannot express is a spec error naming the dialect (`unsupported`), never a different answer.

Conventions of the generated SQL: timestamps are instants (TIMESTAMP WITH TIME ZONE, or
Spark's and BigQuery's TIMESTAMP); the session time zone must be UTC on Spark and Snowflake
(docs/engines.md). Every column is referred to through `ident`, a name safe in every dialect.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlglot import exp

from segcli.errors import Diagnostic, SpecError
from segcli.planning import ir

DIALECTS = ("duckdb", "spark", "snowflake", "bigquery", "postgres", "trino")
_SAFE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPES = {"int": "BIGINT", "float": "DOUBLE", "str": "VARCHAR", "bool": "BOOLEAN", "date": "DATE"}


def unsupported(dialect: str, what: str, file: str = "") -> SpecError:
    """The spec error for a semantic that `dialect` cannot express exactly (exit 2)."""
    return SpecError(
        [
            Diagnostic(
                "E901",
                f"the {dialect} dialect cannot express {what} with segcli's exact meaning",
                file,
                help="run this spec on another engine or dialect (docs/engines.md)",
            )
        ]
    )


def ident(name: str) -> str:
    """A column name safe in every dialect: `name` itself when it is a plain identifier,
    else its characters outside [A-Za-z0-9_] replaced and a short hash appended (unique)."""
    if _SAFE.match(name) and not name.startswith("_TABLE_"):
        return name
    tag = hashlib.sha1(name.encode()).hexdigest()[:6]
    return "c_" + re.sub(r"[^A-Za-z0-9_]", "_", name) + "_" + tag


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference to `ident(name)`."""
    return exp.column(ident(name), table=table, quoted=True)


@functools.cache
def _built(name: str, dialect: str | None) -> exp.DataType:
    return exp.DataType.build(name, dialect=dialect)


def dtype(name: str, dialect: str | None = None) -> exp.DataType:
    """A data type by name: parsed once, then copied (sqlglot parses type names from text,
    which was a third of the DuckDB engine's time on the demo)."""
    return _built(name, dialect).copy()


def sql_type(typ: str, dialect: str) -> exp.DataType:
    """segcli's type name (int, float, str, bool, date, datetime) as a dialect's data type."""
    if typ == "datetime":
        return dtype("TIMESTAMPTZ")
    return dtype(_TYPES.get(typ, "VARCHAR"))


def fn(name: str, *args: exp.Expr) -> exp.Anonymous:
    """A dialect's own function, written as named (for the forms whose meaning differs)."""
    return exp.Anonymous(this=name, expressions=list(args))


def lit(value: ir.LitValue, dialect: str) -> exp.Expr:
    """A literal: floats as DOUBLE (not DECIMAL), instants as TIMESTAMPTZ in UTC."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        text = repr(value)
        if text in ("nan", "inf", "-inf"):
            words = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
            return exp.cast(exp.Literal.string(words[text]), sql_type("float", dialect), copy=False)
        return exp.cast(exp.Literal.number(text), sql_type("float", dialect), copy=False)
    if isinstance(value, datetime):
        text = value.isoformat(sep=" ")
        return exp.cast(exp.Literal.string(text), sql_type("datetime", dialect), copy=False)
    if isinstance(value, date):
        return exp.cast(
            exp.Literal.string(value.isoformat()), sql_type("date", dialect), copy=False
        )
    return exp.Literal.string(value)


def paren(e: exp.Expr) -> exp.Expr:
    return exp.Paren(this=e)


def text(e: exp.Expr, dialect: str) -> exp.Expr:
    return exp.cast(e, sql_type("str", dialect), copy=False)


def double(e: exp.Expr, dialect: str) -> exp.Expr:
    return exp.cast(e, sql_type("float", dialect), copy=False)


# ---------------------------------------------------------------- per-dialect forms


def local_to_utc(naive: exp.Expr, tz: str, dialect: str) -> exp.Expr:
    """A local date-time (or date) in `tz` as its UTC instant."""
    z = exp.Literal.string(tz)
    if dialect == "duckdb":
        return fn("timezone", z, exp.cast(naive, dtype("TIMESTAMP"), copy=False))
    if dialect == "postgres":
        return exp.AtTimeZone(this=exp.cast(naive, dtype("TIMESTAMP"), copy=False), zone=z)
    if dialect == "spark":
        return fn("to_utc_timestamp", exp.cast(naive, dtype("TIMESTAMP"), copy=False), z)
    if dialect == "snowflake":
        utc = fn(
            "CONVERT_TIMEZONE",
            z,
            exp.Literal.string("UTC"),
            exp.cast(naive, dtype("TIMESTAMPNTZ"), copy=False),
        )
        return fn("TO_TIMESTAMP_TZ", fn("CONCAT", fn("TO_VARCHAR", utc), exp.Literal.string("Z")))
    if dialect == "bigquery":
        return fn("TIMESTAMP", fn("DATETIME", naive), z)
    return fn("with_timezone", exp.cast(naive, dtype("TIMESTAMP"), copy=False), z)  # trino


def utc_to_local(instant: exp.Expr, tz: str, dialect: str) -> exp.Expr:
    """A UTC instant as the local date-time in `tz` (no time zone)."""
    z = exp.Literal.string(tz)
    if dialect == "duckdb":
        return fn("timezone", z, instant)
    if dialect == "postgres":
        return exp.AtTimeZone(this=instant, zone=z)
    if dialect == "spark":
        return fn("from_utc_timestamp", instant, z)
    if dialect == "snowflake":
        return exp.cast(fn("CONVERT_TIMEZONE", z, instant), dtype("TIMESTAMPNTZ"), copy=False)
    if dialect == "bigquery":
        return fn("DATETIME", instant, z)
    return exp.cast(fn("at_timezone", instant, z), dtype("TIMESTAMP"), copy=False)  # trino


def local_midnight(value: exp.Expr, tz: str, dialect: str) -> exp.Expr:
    """A local date-time (or a date: its midnight) in `tz` as a UTC instant, as the Polars
    engine reads it: the earlier instant when the wall-clock time occurs twice (DST ends),
    null when it does not occur (DST gap). Both are checked by converting back."""
    naive = (
        fn("DATETIME", value)
        if dialect == "bigquery"
        else exp.cast(value, dtype("TIMESTAMP"), copy=False)
    )
    at = local_to_utc(value, tz, dialect)
    hour = exp.Interval(this=exp.Literal.string("1"), unit=exp.var("HOUR"))
    early = exp.Sub(this=at, expression=hour)
    return (
        exp.Case()
        .when(exp.EQ(this=utc_to_local(early, tz, dialect), expression=naive), early)
        .when(exp.EQ(this=utc_to_local(at, tz, dialect), expression=naive), at)
    )


def interval(amount: int, unit: str) -> exp.Interval:
    """INTERVAL 'n' UNIT (n >= 0)."""
    return exp.Interval(this=exp.Literal.string(str(amount)), unit=exp.var(unit))


def plus(e: exp.Expr, amount: int, unit: str) -> exp.Expr:
    """e + `amount` UNITs (negative: minus)."""
    cls = exp.Sub if amount < 0 else exp.Add
    return paren(cls(this=e, expression=interval(abs(amount), unit)))


def _candidates(naive: exp.Expr, tz: str, dialect: str) -> tuple[exp.Expr, ...]:
    """A local date-time read with the offset in effect 6 h before and 6 h after it, as UTC
    instants, and whether each reads back as the same local date-time (both do for a time
    that occurs twice, `early` being the first occurrence; neither for a DST gap)."""
    early = plus(local_to_utc(plus(naive, -6, "HOUR"), tz, dialect), 6, "HOUR")
    late = plus(local_to_utc(plus(naive, 6, "HOUR"), tz, dialect), -6, "HOUR")
    as_naive = fn("DATETIME", naive) if dialect == "bigquery" else exp.cast(naive, "TIMESTAMP")

    def reads_back(x: exp.Expr) -> exp.Expr:
        same = exp.EQ(this=utc_to_local(x, tz, dialect), expression=as_naive)
        return exp.Coalesce(this=same, expressions=[exp.false()])

    return early, late, reads_back(early), reads_back(late)


def shift_months(t: exp.Expr, months: int, tz: str, dialect: str) -> exp.Expr:
    """An instant moved by calendar months on the local date-time in `tz`, clamped to the
    month's end; read back as zoneinfo does (timeutil.shift): a repeated local time keeps
    the instant's fold, one in a DST gap takes the offset before the change."""
    local = utc_to_local(t, tz, dialect)
    early, late, ok_early, ok_late = _candidates(local, tz, dialect)
    later_fold = exp.and_(
        ok_early, ok_late, exp.NEQ(this=early, expression=late), exp.EQ(this=t, expression=late)
    )
    moved = plus(local, months, "MONTH")
    early, late, ok_early, ok_late = _candidates(moved, tz, dialect)
    both = exp.Case().when(later_fold, late).else_(early)
    return (
        exp.Case()
        .when(exp.and_(ok_early, ok_late), both)
        .when(ok_early, early)
        .when(ok_late, late)
        .when(later_fold, late)
        .else_(early)
    )


def epoch_us(t: exp.Expr, dialect: str) -> exp.Expr:
    """Microseconds since the epoch of an instant, as an integer."""
    if dialect == "duckdb":
        return fn("epoch_us", t)
    if dialect in ("spark", "bigquery"):
        return fn("unix_micros" if dialect == "spark" else "UNIX_MICROS", t)
    if dialect == "snowflake":
        return fn("DATE_PART", exp.var("epoch_microsecond"), t)
    if dialect == "postgres":
        seconds = exp.Extract(this=exp.var("EPOCH"), expression=t)
        return exp.cast(
            exp.Mul(this=seconds, expression=exp.Literal.number(1000000)),
            dtype("BIGINT"),
            copy=False,
        )
    us = exp.Mul(this=fn("to_unixtime", t), expression=exp.Literal.number(1000000))
    return exp.cast(fn("round", us), dtype("BIGINT"), copy=False)  # trino


def sha256_hex(s: exp.Expr, dialect: str) -> exp.Expr:
    """The lower-case hex SHA-256 of a text's UTF-8 bytes."""
    if dialect == "duckdb":
        return fn("sha256", s)
    if dialect in ("spark", "snowflake"):
        return fn("sha2" if dialect == "spark" else "SHA2", s, exp.Literal.number(256))
    if dialect == "bigquery":
        return fn("TO_HEX", fn("SHA256", s))
    if dialect == "postgres":
        raw = fn("sha256", fn("convert_to", s, exp.Literal.string("UTF8")))
        return fn("encode", raw, exp.Literal.string("hex"))
    return fn("lower", fn("to_hex", fn("sha256", fn("to_utf8", s))))  # trino


def hex32(h: exp.Expr, dialect: str) -> exp.Expr:
    """Eight hex digits as a non-negative integer."""
    if dialect == "duckdb":
        return exp.cast(fn("concat", exp.Literal.string("0x"), h), dtype("BIGINT"), copy=False)
    if dialect == "spark":
        return exp.cast(
            fn("conv", h, exp.Literal.number(16), exp.Literal.number(10)),
            dtype("BIGINT"),
            copy=False,
        )
    if dialect == "snowflake":
        return fn("TO_NUMBER", h, exp.Literal.string("XXXXXXXX"))
    if dialect == "bigquery":
        return exp.cast(fn("CONCAT", exp.Literal.string("0x"), h), dtype("INT64"), copy=False)
    if dialect == "postgres":
        padded = fn(
            "concat",
            exp.Literal.string("x"),
            fn("lpad", h, exp.Literal.number(16), exp.Literal.string("0")),
        )
        bits = exp.Cast(this=padded, to=dtype("BIT(64)", "postgres"))
        return exp.cast(bits, dtype("BIGINT"), copy=False)
    return fn("from_base", h, exp.Literal.number(16))  # trino


def bucket(key: exp.Expr, salt: str, dialect: str) -> exp.Expr:
    """sha256("salt:key"), first 8 bytes big-endian, mod 10000 (segcli.planning.compile.bucket_of).

    The 64-bit value is hi·2^32 + lo, so its remainder is ((hi mod 10000)·7296 + lo) mod
    10000 (2^32 mod 10000 = 7296): two 32-bit halves, which every dialect reads exactly.
    """
    s = fn("concat", exp.Literal.string(f"{salt}:"), text(key, dialect))
    h = sha256_hex(s, dialect)
    hi = hex32(
        exp.Substring(this=h, start=exp.Literal.number(1), length=exp.Literal.number(8)), dialect
    )
    lo = hex32(
        exp.Substring(this=h, start=exp.Literal.number(9), length=exp.Literal.number(8)), dialect
    )
    ten_k = exp.Literal.number(10000)
    high = exp.Mul(
        this=paren(exp.Mod(this=hi, expression=ten_k)), expression=exp.Literal.number(7296)
    )
    return exp.Mod(this=paren(exp.Add(this=high, expression=lo)), expression=ten_k)


# Constructs a POSIX regex engine reads differently from segcli's (Perl-style) patterns.
_PERL_ONLY = re.compile(r"\\[dDwWsSbBAzZ]|\(\?[=!<:iP]")


def regex_search(s: exp.Expr, pattern: str, ignore_case: bool, dialect: str, file: str) -> exp.Expr:
    """Does `pattern` occur anywhere in `s` (searched, not anchored)."""
    if dialect in ("postgres", "snowflake") and _PERL_ONLY.search(pattern):
        raise unsupported(dialect, f"the regular expression {pattern!r} (Perl-style syntax)", file)
    p = exp.Literal.string(("(?i)" if ignore_case else "") + pattern)
    if dialect == "duckdb":
        return fn("regexp_matches", s, p)
    if dialect == "spark":
        return exp.RegexpLike(this=s, expression=p)
    if dialect == "bigquery":
        return fn("REGEXP_CONTAINS", s, p)
    if dialect == "trino":
        return fn("regexp_like", s, p)
    plain = exp.Literal.string(pattern)
    if dialect == "postgres":
        return (
            exp.RegexpILike(this=s, expression=plain)
            if ignore_case
            else exp.RegexpLike(this=s, expression=plain)
        )
    flags = exp.Literal.string("i" if ignore_case else "c")
    one = exp.Literal.number(1)
    found = fn("REGEXP_INSTR", s, plain, one, one, exp.Literal.number(0), flags)
    return exp.GT(this=found, expression=exp.Literal.number(0))


def least_greatest(items: list[exp.Expr], fn_name: str) -> exp.Expr:
    """LEAST/GREATEST ignoring nulls (null only when all are): dialects differ on nulls, so
    each argument is coalesced with the others first."""
    if len(items) == 1:
        return items[0]
    args = [exp.Coalesce(this=x, expressions=[y for y in items if y is not x]) for x in items]
    cls = exp.Least if fn_name == "min" else exp.Greatest
    return cls(this=args[0], expressions=args[1:])


# ---------------------------------------------------------------- the translator


@dataclass
class Translator:
    """IR → sqlglot for one dialect. `in_list(item, path)` and `in_previous(item, segment)`
    give the SQL of the list files and previous sets (they live outside the IR)."""

    dialect: str
    file: str = ""
    in_list: Callable[[exp.Expr, str], exp.Expr] | None = None
    in_previous: Callable[[exp.Expr, str], exp.Expr] | None = None
    held_before: Callable[[exp.Expr, str, exp.Expr], exp.Expr] | None = None
    rename: dict[str, str] = field(default_factory=dict)

    def expr(self, e: ir.Expr) -> exp.Expr:
        """One IR expression as a sqlglot expression."""
        method = getattr(self, "_" + type(e).__name__, None)
        if method is None:  # pragma: no cover - every node has a translation
            raise NotImplementedError(f"no SQL for {type(e).__name__}")
        out: exp.Expr = method(e)
        return out

    def _Col(self, e: ir.Col) -> exp.Expr:
        return col(self.rename.get(e.name, e.name))

    def _Lit(self, e: ir.Lit) -> exp.Expr:
        return lit(e.value, self.dialect)

    def _Const(self, e: ir.Const) -> exp.Expr:
        return exp.true() if e.value else exp.false()

    def _Not(self, e: ir.Not) -> exp.Expr:
        return exp.Not(this=paren(self.expr(e.item)))

    def _And(self, e: ir.And) -> exp.Expr:
        return (
            exp.and_(*(paren(self.expr(i)) for i in e.items), copy=False) if e.items else exp.true()
        )

    def _Or(self, e: ir.Or) -> exp.Expr:
        return (
            paren(exp.or_(*(paren(self.expr(i)) for i in e.items), copy=False))
            if e.items
            else exp.false()
        )

    def _IsNull(self, e: ir.IsNull) -> exp.Expr:
        return exp.Is(this=paren(self.expr(e.item)), expression=exp.null())

    def _FillNull(self, e: ir.FillNull) -> exp.Expr:
        return exp.Coalesce(this=self.expr(e.item), expressions=[self.expr(e.value)])

    def _IfElse(self, e: ir.IfElse) -> exp.Expr:
        case = exp.Case().when(self.expr(e.cond), self.expr(e.then))
        return case if e.otherwise is None else case.else_(self.expr(e.otherwise))

    def _Cmp(self, e: ir.Cmp) -> exp.Expr:
        cls = {"eq": exp.EQ, "gt": exp.GT, "ge": exp.GTE, "lt": exp.LT, "le": exp.LTE}[e.op]
        return cls(this=self.expr(e.left), expression=self.expr(e.right))

    def _IsIn(self, e: ir.IsIn) -> exp.Expr:
        v = self.expr(e.item)
        if e.as_text:
            v = text(v, self.dialect)
        if not e.values:
            return (
                exp.Case()
                .when(exp.Is(this=v, expression=exp.null()), exp.null())
                .else_(exp.false())
            )
        values: list[exp.Expr] = [lit(x if e.as_text else str(x), self.dialect) for x in e.values]
        return exp.In(this=v, expressions=values)

    def _StrTest(self, e: ir.StrTest) -> exp.Expr:
        s = text(self.expr(e.item), self.dialect)
        val: Any = e.value
        if e.ignore_case and e.op != "matches":
            s = exp.Lower(this=s)
            val = tuple(x.lower() for x in val) if isinstance(val, tuple) else val.lower()
        if e.op == "eq":
            return exp.EQ(this=s, expression=exp.Literal.string(val))
        if e.op == "in":
            return exp.In(this=s, expressions=[exp.Literal.string(x) for x in val])
        if e.op == "matches":
            return regex_search(s, str(val), e.ignore_case, self.dialect, self.file)
        if val == "":  # every text contains, starts and ends with "": true unless null
            return exp.EQ(this=s, expression=s)
        n = exp.Literal.number(len(val))
        v = exp.Literal.string(val)
        if e.op == "contains":
            found = exp.StrPosition(this=s, substr=v)
            return exp.GT(this=found, expression=exp.Literal.number(0))
        start = exp.Literal.number(1)
        if e.op == "starts_with":
            return exp.EQ(this=exp.Substring(this=s, start=start, length=n), expression=v)
        # ends_with: the last len(v) characters (Trino has no RIGHT; substr(s, -n) is it)
        if self.dialect == "trino":
            tail: exp.Expr = fn("substr", s, exp.Literal.number(-len(val)))
        else:
            tail = exp.Right(this=s, expression=n)
        return exp.EQ(this=tail, expression=v)

    def _Cast(self, e: ir.Cast) -> exp.Expr:
        return exp.cast(self.expr(e.item), sql_type(e.to, self.dialect), copy=False)

    def _Arith(self, e: ir.Arith) -> exp.Expr:
        a, b = paren(self.expr(e.left)), paren(self.expr(e.right))
        if e.op == "div":  # true division whatever the operand types
            return exp.Div(this=double(a, self.dialect), expression=double(b, self.dialect))
        cls = {"add": exp.Add, "sub": exp.Sub, "mul": exp.Mul}[e.op]
        return cls(this=a, expression=b)

    def _Horizontal(self, e: ir.Horizontal) -> exp.Expr:
        items = [self.expr(i) for i in e.items]
        if e.fn == "sum":
            zero = exp.Literal.number(0)
            terms = [exp.Coalesce(this=i, expressions=[zero]) for i in items]
            out: exp.Expr = terms[0]
            for t in terms[1:]:
                out = exp.Add(this=out, expression=t)
            return paren(out)
        return least_greatest(items, e.fn)

    def _Clip(self, e: ir.Clip) -> exp.Expr:
        v = self.expr(e.item)
        case = exp.Case()
        if e.lower is not None:
            lo = lit(float(e.lower), self.dialect)
            case = case.when(exp.LT(this=v, expression=lo), lo)
        if e.upper is not None:
            hi = lit(float(e.upper), self.dialect)
            case = case.when(exp.GT(this=v, expression=hi), hi)
        return case.else_(v) if case.args.get("ifs") else v

    def _LocalMidnight(self, e: ir.LocalMidnight) -> exp.Expr:
        return local_midnight(self.expr(e.item), e.tz, self.dialect)

    def _LocalDate(self, e: ir.LocalDate) -> exp.Expr:
        return exp.cast(
            utc_to_local(self.expr(e.item), e.tz, self.dialect), dtype("DATE"), copy=False
        )

    def _Shift(self, e: ir.Shift) -> exp.Expr:
        t = self.expr(e.item)
        if not e.months:
            return plus(t, e.seconds, "SECOND")
        return shift_months(t, e.months, e.tz, self.dialect)

    def _DecayWeight(self, e: ir.DecayWeight) -> exp.Expr:
        as_of_us = int(e.as_of.timestamp() * 1_000_000)
        age = exp.Sub(
            this=exp.Literal.number(as_of_us), expression=epoch_us(self.expr(e.item), self.dialect)
        )
        rate = -0.6931471805599453 / (e.half_life_s * 1e6)  # math.log(2), as the Polars engine
        weight = exp.Exp(
            this=exp.Mul(this=double(paren(age), self.dialect), expression=lit(rate, self.dialect))
        )
        return exp.Coalesce(this=weight, expressions=[lit(1.0, self.dialect)])

    def _Bucket(self, e: ir.Bucket) -> exp.Expr:
        return paren(bucket(self.expr(e.item), e.salt, self.dialect))

    def _InList(self, e: ir.InList) -> exp.Expr:
        assert self.in_list is not None, "list files need an in_list"
        return self.in_list(self.expr(e.item), e.path)

    def _InPrevious(self, e: ir.InPrevious) -> exp.Expr:
        if self.in_previous is None:
            return exp.false()
        return self.in_previous(self.expr(e.item), e.segment)

    def _PeerSum(self, e: ir.PeerSum) -> exp.Expr:
        """SUM(item) OVER (PARTITION BY by); nested windows are hoisted into earlier layers
        first (sql_query.hoist_peer_sums), as SQL cannot nest them."""
        return exp.Window(this=exp.Sum(this=self.expr(e.item)), partition_by=[self.expr(e.by)])

    def _HeldBefore(self, e: ir.HeldBefore) -> exp.Expr:
        if self.held_before is None:
            raise unsupported(self.dialect, "property history (ever: true) without a state")
        return self.held_before(self.expr(e.item), e.column, self.expr(e.test))

    def _Top(self, e: ir.Top) -> exp.Expr:
        """matches AND ROW_NUMBER() OVER (matches first, value desc nulls last, key) <= limit."""
        matches = self.expr(e.matches)
        first = exp.Case().when(matches, exp.Literal.number(0)).else_(exp.Literal.number(1))
        order = exp.Order(
            expressions=[
                exp.Ordered(this=first, desc=False, nulls_first=False),
                exp.Ordered(this=self.expr(e.value), desc=True, nulls_first=False),
                exp.Ordered(this=self.expr(e.key), desc=False, nulls_first=False),
            ]
        )
        rank = exp.Window(this=exp.RowNumber(), order=order)
        limit: exp.Expr
        if e.n is not None:
            limit = exp.Literal.number(e.n)
        else:
            assert e.percent is not None
            ones = (
                exp.Case()
                .when(self.expr(e.matches), exp.Literal.number(1))
                .else_(exp.Literal.number(0))
            )
            total = exp.Window(this=exp.Sum(this=ones))
            share = exp.Mul(
                this=double(total, self.dialect), expression=lit(e.percent / 100.0, self.dialect)
            )
            limit = exp.Ceil(this=share)
        return exp.and_(paren(matches), exp.LTE(this=rank, expression=limit), copy=False)
