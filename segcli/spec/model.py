"""The typed model of a spec: frozen dataclasses built by `validate`, used by later stages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, TypeAlias

from segcli.spec.language import AGGREGATES, OPERATORS

URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # a source path Spark reads, not segcli

# ---------------------------------------------------------------- time values


@dataclass(frozen=True)
class Duration:
    """A duration written `<int><unit>`: unit h, d or w is an exact length (`seconds`); unit mo
    or y is a calendar step of `months` months (`seconds` is then only its nominal length, for
    limits and messages: take calendar steps with `timeutil.before`)."""

    text: str
    seconds: int
    months: int = 0

    @property
    def is_calendar(self) -> bool:
        return self.months > 0


@dataclass(frozen=True)
class Relative:
    """A time relative to as_of, written `-30d`: as_of minus the duration."""

    duration: Duration


@dataclass(frozen=True)
class Period:
    """A calendar period name such as `last_month`, in the project timezone; fiscal ones
    carry the spec's `fiscal_year_start` (the month fiscal years start on)."""

    name: str
    fiscal_start: int = 1


@dataclass(frozen=True)
class Offset:
    """A signed duration (`14d`, `-2h`, `1mo`) added to a time: `offset:` of a field leaf or
    of a column operand (SPEC §2.6)."""

    duration: Duration
    negative: bool = False

    @property
    def text(self) -> str:
        return ("-" if self.negative else "") + self.duration.text


@dataclass(frozen=True)
class ColumnRef:
    """An operator's value naming a column instead of a literal: `{column: C, offset: D}`.

    In a `field:` leaf it is a column of the per-contact frame (`source` set for
    `SOURCE.COL` of a relation-one source); inside `where:` a column of the same row."""

    column: str
    source: str | None = None
    offset: Offset | None = None

    @property
    def name(self) -> str:
        """The column's name in its frame (`SOURCE.COL` for a relation-one source)."""
        return self.column if self.source is None else f"{self.source}.{self.column}"


Scalar: TypeAlias = str | int | float | bool | date | datetime | None
OpValue: TypeAlias = (
    Scalar | Relative | Duration | Period | ColumnRef | tuple[Scalar | Relative | ColumnRef, ...]
)

# ---------------------------------------------------------------- conditions

# Operator groups, derived from the language table (segcli.spec.language.OPERATORS).
POSITIVE_OPS = tuple(op.name for op in OPERATORS if op.polarity == "positive")
NEGATIVE_OPS = {op.name: op.complement_of for op in OPERATORS if op.complement_of}
STRING_OPS = tuple(op.name for op in OPERATORS if op.value in ("string", "regex"))
ORDER_OPS = tuple(op.name for op in OPERATORS if op.value in ("ordered", "range"))
TIME_OPS = tuple(op.name for op in OPERATORS if op.value in ("duration", "period"))
ALL_OPS = (*POSITIVE_OPS, *NEGATIVE_OPS, "is_null")
# Operators whose value may be a column operand `{column: C}` (SPEC §2.6).
COLUMN_OPS = tuple(op.name for op in OPERATORS if op.column_operand)


@dataclass(frozen=True)
class Op:
    """One operator of a leaf with its literal value."""

    name: str
    value: OpValue


@dataclass(frozen=True, repr=False)
class Test:
    """Operators applied to one value, with the null switches of a leaf."""

    ops: tuple[Op, ...]
    ignore_case: bool = False
    include_missing: bool | None = None
    offset: Offset | None = None  # `offset:` of a field leaf: shifts the value first

    def __repr__(self) -> str:
        # Segment fingerprints hash the definition's repr: a leaf without an offset keeps
        # the text it had before offsets existed, so upgrading announces no false edits.
        text = (
            f"Test(ops={self.ops!r}, ignore_case={self.ignore_case!r}, "
            f"include_missing={self.include_missing!r}"
        )
        return text + (f", offset={self.offset!r})" if self.offset is not None else ")")

    @property
    def column_refs(self) -> tuple[ColumnRef, ...]:
        """The column operands of the test's operators, in order."""
        out: list[ColumnRef] = []
        for op in self.ops:
            values = op.value if isinstance(op.value, tuple) else (op.value,)
            out += [v for v in values if isinstance(v, ColumnRef)]
        return tuple(out)


@dataclass(frozen=True)
class FieldCond:
    """`field: COL` (a contacts column) or `field: SOURCE.COL` (a relation-one source)."""

    column: str
    source: str | None
    test: Test
    line: int = field(default=0, compare=False, repr=False)
    # `ever: true` (SPEC §2.6 property history): the leaf held at a committed run or holds now.
    ever: bool = False


@dataclass(frozen=True)
class RowCond:
    """A per-row condition on an event source's column (inside `where:`)."""

    column: str
    test: Test


@dataclass(frozen=True)
class Window:
    """An event time window: `within: 30d` or `during: last_month`."""

    within: Duration | None = None
    during: Period | None = None


AggKind = Literal["count", "sum", "avg", "min", "max", "distinct", "active_days", "last", "first"]
AGG_KINDS: tuple[str, ...] = tuple(a.name for a in AGGREGATES)
AGG_WITH_COLUMN = tuple(a.name for a in AGGREGATES if a.column)


@dataclass(frozen=True)
class Regularly:
    """`regularly:` (cadence, SPEC §2.6): at least `at_least` matching rows in at least
    `periods` of the last `of` periods of length `every` ending at as_of."""

    at_least: int
    every: Duration
    periods: int
    of: int


@dataclass(frozen=True)
class Per:
    """`per: COLUMN` (per-value grouping, SPEC §2.6): the selected rows are grouped by the
    column's non-null values; a value passes when its rows contain every `has` type and no
    `lacks` type, and the event's count is the number of values that pass."""

    column: str
    has: tuple[str, ...] = ()
    lacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventCond:
    """An aggregate over a contact's rows of one or more pooled relation-many sources."""

    sources: tuple[str, ...]
    types: tuple[str, ...] | None
    where: tuple[RowCond, ...]
    window: Window | None
    agg: str  # one of AGG_KINDS
    column: str | None
    test: Test
    line: int = field(default=0, compare=False, repr=False)
    regularly: Regularly | None = None  # cadence instead of a test (SPEC §2.6)
    per: Per | None = None  # per-value grouping: count counts values (SPEC §2.6)

    @property
    def has_default_count(self) -> bool:
        """The test is the default `count: {gte: 1}` (of rows, or of values with `per`)."""
        return (
            self.regularly is None
            and self.agg == "count"
            and self.test.ops == (Op("gte", 1),)
            and self.test.include_missing is None
        )

    @property
    def is_default_test(self) -> bool:
        """True for the default test over rows ("did at least once"): the test `each` rules
        count rows of and decay weighs by its latest row. A `per` condition counts values."""
        return self.has_default_count and self.per is None


@dataclass(frozen=True)
class AllCond:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyCond:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class NotCond:
    item: Condition


@dataclass(frozen=True)
class AtLeastCond:
    """`at_least: {n, of}`: at least `n` of `items` hold (SPEC §2.6; n 0 is always true)."""

    n: int
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class SegmentRef:
    """`segment: NAME`, with at most one history option (SPEC §2.6): `ever` (a member now or
    at a committed run), `member_for` (operators on the current stay's length, durations) or
    `left` (time operators on when the contact last left; not a member now)."""

    name: str
    line: int = field(default=0, compare=False, repr=False)
    ever: bool = False
    member_for: Test | None = None
    left: Test | None = None

    @property
    def history(self) -> str | None:
        """The history option this reference uses: ever, member_for, left or None."""
        if self.ever:
            return "ever"
        if self.member_for is not None:
            return "member_for"
        return "left" if self.left is not None else None


@dataclass(frozen=True)
class ScoreCond:
    model: str
    test: Test
    line: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class ScoreChangeCond:
    model: str
    over: Duration
    test: Test
    line: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class GradeCond:
    """`grade: {model: M, in: [A, B]}`: the grade model M's score earns (SPEC §2.8)."""

    model: str
    test: Test
    line: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class SeqStep:
    """One step of a sequence: rows of pooled relation-many sources, like an event condition
    without a test (SPEC §2.6)."""

    sources: tuple[str, ...]
    types: tuple[str, ...] | None
    where: tuple[RowCond, ...]


@dataclass(frozen=True)
class SequenceCond:
    """`sequence:` rows r1 ... rk of its steps at strictly increasing times (SPEC §2.6), each
    gap at most `max_gap`, all in `window`, all sharing the `same` columns' non-null values;
    with `then_not`, no row of that step in (tk, tk + wait] and tk + wait <= as_of."""

    steps: tuple[SeqStep, ...]
    max_gap: Duration | None = None
    window: Window | None = None
    same: tuple[str, ...] = ()
    then_not: SeqStep | None = None
    wait: Duration | None = None
    line: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class AccountCond:
    """`account:` (SPEC §2.7): how many contacts of the contact's account (the contacts column
    `column`, declared as `contacts.account`) satisfy `where`, not counting the contact itself
    when `others`; `test` is applied to that number. A null account has no peers."""

    where: Condition
    test: Test
    others: bool
    column: str
    line: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class BucketCond:
    """A stable pseudo-random share of contacts: sha256(salt:key) mod 10000 < percent*100."""

    percent: float
    salt: str


Condition: TypeAlias = (
    AllCond
    | AnyCond
    | NotCond
    | AtLeastCond
    | FieldCond
    | EventCond
    | SegmentRef
    | ScoreCond
    | ScoreChangeCond
    | BucketCond
    | GradeCond
    | SequenceCond
    | AccountCond
)

# ---------------------------------------------------------------- sources, segments, spec


@dataclass(frozen=True)
class Source:
    name: str
    path: str  # as written (relative to the spec file); may be a glob
    key: str
    time: str | None = None
    type: str | None = None
    relation: Literal["one", "many"] = "many"
    dedupe: tuple[str, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()  # declared column types
    line: int = field(default=0, compare=False, repr=False)
    delimiter: str | None = None  # CSV field separator (default ",")
    encoding: str | None = None  # CSV text encoding (default UTF-8)
    account: str | None = None  # contacts only: the column naming the account (SPEC §2.7)
    table: str | None = None  # a Spark catalog table instead of files (path is then "")

    @property
    def uri(self) -> str | None:
        """The path when it is a URI (`s3://…`, `hdfs://…`, `file://…`): read by Spark."""
        return self.path if URI.match(self.path) else None

    @property
    def remote(self) -> str | None:
        """What only the spark engine reads: the table, or the URI; None for local files."""
        return self.table or self.uri


@dataclass(frozen=True)
class TopBy:
    """What `top` ranks by: a contacts field, a score, or a score change."""

    field: str | None = None
    score: str | None = None
    change_model: str | None = None
    change_over: Duration | None = None


@dataclass(frozen=True)
class Top:
    by: TopBy
    n: int | None = None
    percent: float | None = None


@dataclass(frozen=True)
class Expect:
    min_size: int | None = None
    max_size: int | None = None
    max_change: str | None = None


# ---------------------------------------------------------------- actions (SPEC §2.9)


@dataclass(frozen=True)
class ExportAction:
    """A file of the changed contacts: the key, then `columns` (None: every contacts column)."""

    path: str
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CommandAction:
    """An argv (no shell) fed the changed contacts as JSON Lines on stdin."""

    argv: tuple[str, ...]
    timeout: float = 60.0
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class WebhookAction:
    """HTTP POSTs of JSON batches (or one Slack message with `template: slack`)."""

    url: str
    batch: int = 500
    secret_env: str | None = None
    template: Literal["json", "slack"] = "json"
    timeout: float = 10.0
    columns: tuple[str, ...] | None = None


Action: TypeAlias = ExportAction | CommandAction | WebhookAction


@dataclass(frozen=True)
class Segment:
    name: str
    kind: Literal["dynamic", "semi_dynamic", "static"] = "dynamic"
    description: str | None = None
    where: Condition | None = None
    exclude: Condition | None = None
    top: Top | None = None
    tags: tuple[str, ...] = ()
    expect: Expect | None = None
    from_file: str | None = None
    include_file: str | None = None
    exclude_file: str | None = None
    on_enter: tuple[Action, ...] = ()
    on_leave: tuple[Action, ...] = ()
    line: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class Rule:
    name: str
    points: float
    when: Condition
    stage: str | None = None
    each: bool = False
    max: float | None = None


@dataclass(frozen=True)
class ScoreModel:
    name: str
    rules: tuple[Rule, ...]
    sales_ready: float = 100.0
    half_life: Duration | None = None
    min: float | None = None
    max: float | None = None
    # (name, lowest score that earns it), highest first; a lower score earns `below`.
    grades: tuple[tuple[str, float], ...] = ()
    below: str = "F"

    def grade_of(self, score: float) -> str:
        """The grade a score earns: the first (highest) whose threshold it reaches."""
        for name, threshold in self.grades:
            if score >= threshold:
                return name
        return self.below

    @property
    def grade_names(self) -> tuple[str, ...]:
        """Every grade the model can give, highest first, `below` last."""
        return (*(g for g, _ in self.grades), self.below)


@dataclass(frozen=True)
class Check:
    source: str
    kind: str
    arg: object
    line: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class EngineConf:
    """`engine:` at the top of the spec (SPEC §3.1): where runs execute unless `--engine`
    says otherwise; `master` and `conf` are Spark's."""

    name: str
    master: str | None = None
    conf: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Spec:
    """A validated spec. `base_dir` is the spec file's folder; paths are relative to it."""

    file: str
    base_dir: str
    timezone: str
    sources: dict[str, Source]
    segments: dict[str, Segment]
    scoring: dict[str, ScoreModel]
    checks: tuple[Check, ...] = ()
    keep_runs: int | None = None
    fiscal_year_start: int = 1
    engine: EngineConf | None = None

    @property
    def contacts(self) -> Source:
        return self.sources["contacts"]
