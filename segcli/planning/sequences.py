"""Planning sequences (SPEC §2.6): each `sequence:` condition becomes one `SequencePlan`.

Shape of the work, as an engine runs it: one pass per source over the rows that match any
step (or the `then_not` step) of any sequence, with one boolean flag per step; then, per
sequence, its flagged rows pooled by time and the steps chained: a row of step i is reached
when a reached row of step i-1 with the same contact and `same` values lies strictly before
it (and at most `max_gap` before it); the latest such earlier row decides, since it has the
smallest gap. With `then_not`, a reached last-step row at tk also needs tk + wait <= as_of
and no `then_not` row in (tk, tk + wait]: the first such row strictly after tk decides.
Per contact, the value is the earliest time at which the sequence completed (null: never).

Rows with a null time cannot be ordered: they take part in no sequence. Rows with a null in
a `same` column take part in no sequence with `same`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from segcli.planning import ir
from segcli.planning.compile import AggKey, row_filter
from segcli.spec import model as m

SeqKey = tuple[m.SequenceCond, datetime]


def sequence_col(index: int) -> str:
    """The per-contact column of a sequence: the earliest time it completed (null: never)."""
    return f"__seq{index}"


@dataclass(frozen=True)
class SequencePlan:
    """One sequence at `as_of`: per source, one flag per step (`steps[s][i]`: does a row of
    source s belong to step i); the `then_not` step's flag per source; the rest as given."""

    name: str
    cond: m.SequenceCond
    as_of: datetime
    steps: tuple[tuple[str, tuple[ir.Expr, ...]], ...]
    then_not: tuple[tuple[str, ir.Expr], ...]
    same: tuple[str, ...]
    max_gap_s: int | None
    wait_s: int | None

    @property
    def sources(self) -> tuple[str, ...]:
        """Every source the sequence reads (steps first, then the then_not step's)."""
        out = [s for s, _ in self.steps]
        out += [s for s, _ in self.then_not if s not in out]
        return tuple(out)

    def describe(self, tz: str) -> list[str]:
        """The sequence's share of the plan in words (for `explain`)."""
        at = self.as_of.astimezone(ZoneInfo(tz)).isoformat()
        k = len(self.cond.steps)
        lines = [f"sequence {self.name}: {k} steps, as of {at}"]
        for source, flags in self.steps:
            lines.append(
                f"  source {source}: rows of any step flagged ({len(flags)} flags), "
                "read in the shared sequence pass"
            )
        rule = "each step strictly later than the one before"
        if self.max_gap_s is not None:
            rule += f", at most {self.cond.max_gap.text if self.cond.max_gap else ''} later"
        if self.same:
            rule += f", same {', '.join(self.same)}"
        lines.append(f"  pooled by time, steps chained by as-of joins: {rule}")
        if self.then_not:
            wait = self.cond.wait.text if self.cond.wait else ""
            srcs = " + ".join(s for s, _ in self.then_not)
            lines.append(
                f"  then_not: the first {srcs} row after the last step must come later than "
                f"{wait} (and {wait} must have passed)"
            )
        lines.append("  per contact: the earliest time the sequence completed")
        return lines


def _step_key(step: m.SeqStep, window: m.Window | None, as_of: datetime) -> AggKey:
    types = tuple(sorted(set(step.types))) if step.types else None
    return AggKey(tuple(step.sources), types, step.where, window, "count", None, as_of)


def plan_sequence(
    name: str,
    key: SeqKey,
    spec: m.Spec,
    row_types: dict[str, dict[str, str]],
    run_as_of: datetime,
) -> SequencePlan:
    """The plan of one sequence: the row flags of its steps on each of their sources."""
    cond, as_of = key
    tz = spec.timezone

    def flag(step: m.SeqStep, window: m.Window | None, source: str) -> ir.Expr:
        if source not in step.sources:
            return ir.Lit(False)
        src = spec.sources[source]
        return row_filter(
            _step_key(step, window, as_of),
            src.type,
            src.time,
            row_types[source],
            tz,
            visible_at=run_as_of,
        )

    step_sources: list[str] = []
    for step in cond.steps:
        step_sources += [s for s in step.sources if s not in step_sources]
    steps = tuple(
        (s, tuple(flag(step, cond.window, s) for step in cond.steps)) for s in step_sources
    )
    then_not: tuple[tuple[str, ir.Expr], ...] = ()
    if cond.then_not is not None:
        blocker = cond.then_not
        then_not = tuple((s, flag(blocker, None, s)) for s in dict.fromkeys(blocker.sources))
    return SequencePlan(
        name,
        cond,
        as_of,
        steps,
        then_not,
        cond.same,
        cond.max_gap.seconds if cond.max_gap else None,
        cond.wait.seconds if cond.wait else None,
    )
