"""References the parser finds and the resolver checks: names of segments, models and sources,
and columns with the operators applied to them.

Parsing records them without looking anything up; `resolve` checks each against the spec's
declared names and the sources' schemas, with the YAML node to point the diagnostic at.
"""

from __future__ import annotations

from dataclasses import dataclass

from segcli.spec import model as m
from segcli.spec.grades import GradeUse
from segcli.spec.load import YNode


@dataclass(frozen=True)
class SegmentUse:
    """`segment: NAME`."""

    node: YNode
    name: str


@dataclass(frozen=True)
class ModelUse:
    """`score: {model: M}`, `score_change`, `top.by.score`."""

    node: YNode
    name: str


@dataclass(frozen=True)
class FieldUse:
    """`field: COL` or `field: SOURCE.COL` (source None: contacts) and its test."""

    node: YNode
    shown: str
    source: str | None
    column: str
    test: m.Test | None
    offset_node: YNode | None = None  # the leaf's `offset:`, when it has one
    operand_nodes: tuple[YNode, ...] = ()  # its column operands' nodes (test.column_refs)


@dataclass(frozen=True)
class ColumnUse:
    """A column named without operators (`top.by.field`)."""

    node: YNode
    shown: str
    source: str
    column: str


@dataclass(frozen=True)
class RowFilter:
    """`where: {COL: {...}}` of an event condition."""

    node: YNode
    column: str
    test: m.Test
    operand_nodes: tuple[YNode, ...] = ()  # its column operands' nodes (test.column_refs)


@dataclass(frozen=True)
class EventUse:
    """An event condition's sources and what it needs of them."""

    source_node: YNode
    sources: tuple[str, ...]
    type_node: YNode | None
    window_node: YNode | None
    where: tuple[RowFilter, ...]
    agg: str
    column_node: YNode | None
    column: str | None
    # `per: COLUMN` (SPEC §2.6): the column each source must have, and the `has`/`lacks`
    # node when there is one (it needs each source's `type:` column).
    per_node: YNode | None = None
    per: str | None = None
    kinds_node: YNode | None = None


@dataclass(frozen=True)
class CheckUse:
    """The source of a data check."""

    node: YNode
    source: str


@dataclass(frozen=True)
class DecayUse:
    """A model with decay: its decaying rules need row times."""

    node: YNode
    rules: tuple[m.Rule, ...]


@dataclass(frozen=True)
class SequenceUse:
    """Sources whose rows a sequence orders by time: each must declare `time:`."""

    node: YNode
    sources: tuple[str, ...]


Reference = (
    SequenceUse
    | SegmentUse
    | ModelUse
    | FieldUse
    | ColumnUse
    | EventUse
    | CheckUse
    | DecayUse
    | GradeUse
)
