"""The state's history as engine inputs (SPEC §2.6; the IR side is segcli.planning.history).

The api layer reads the state and hands each engine a `Histories`: per segment a small frame
joined to the contacts on the key (so history parts are per-contact columns like any other),
and per `ever` column the values stored at committed runs. Both engines use these helpers,
so they cannot disagree on what the state said.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from segcli.planning.history import SEGMENT_PARTS, hist_col
from segcli.planning.planner import Plan

UTC_DT = pl.Datetime("us", "UTC")
HIST_KEY = "__hist_key"  # the key column of a stored-values frame
_PART_TYPES: dict[str, pl.DataType] = {
    "member": pl.Boolean(),
    "joined": UTC_DT,
    "ever": pl.Boolean(),
    "left": UTC_DT,
}


@dataclass
class Histories:
    """`segments[X]`: key (named like the contacts key) and the parts member, joined, ever,
    left; `fields[C]`: HIST_KEY and C, one row per value stored for a contact."""

    segments: dict[str, pl.DataFrame] = field(default_factory=dict)
    fields: dict[str, pl.DataFrame] = field(default_factory=dict)


def with_segment_history(
    contacts: pl.DataFrame, plan: Plan, histories: Histories | None
) -> pl.DataFrame:
    """The contacts with every `hist_col(X, part)` the plan reads (null where the state has
    nothing for a contact)."""
    key = plan.key
    out = contacts
    for name in plan.history_segments:
        frame = (histories.segments if histories else {}).get(name)
        cols = {p: hist_col(name, p) for p in SEGMENT_PARTS}
        if frame is None or frame.height == 0:
            out = out.with_columns(
                pl.lit(None, dtype=_PART_TYPES[p]).alias(c) for p, c in cols.items()
            )
            continue
        part = frame.select(
            pl.col(key).cast(contacts[key].dtype, strict=False),
            *(pl.col(p).cast(_PART_TYPES[p]).alias(c) for p, c in cols.items()),
        ).filter(pl.col(key).is_not_null())
        out = out.join(part, on=key, how="left", maintain_order="left")
    return out


def stored_values(
    plan: Plan, histories: Histories | None, key_dtype: pl.DataType
) -> dict[str, pl.DataFrame]:
    """Each `ever` column's stored values, the key cast to the contacts key's type."""
    out: dict[str, pl.DataFrame] = {}
    for c in plan.history_fields:
        frame = (histories.fields if histories else {}).get(c)
        if frame is not None and frame.height:
            out[c] = frame.with_columns(pl.col(HIST_KEY).cast(key_dtype, strict=False))
    return out
