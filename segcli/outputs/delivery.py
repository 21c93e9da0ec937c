"""A run's side of the outbox: stage deliveries before the commit, deliver after it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import polars as pl

from segcli.engines.catalog import Catalog
from segcli.engines.contacts import load_contacts
from segcli.spec import model as m
from segcli.state import outbox
from segcli.state.outbox import Delivery
from segcli.storage import Loc

if TYPE_CHECKING:  # sending (commands, webhooks) is imported only when there is something to send
    from segcli.outputs.actions import Outcome


@dataclass
class Pending:
    """A delivery with batches still to send, and why its last attempt failed (if it did)."""

    delivery: Delivery
    done: int
    error: str | None
    failed_at: str | None

    def to_json(self) -> dict[str, Any]:
        d = self.delivery
        return {
            "run_id": d.run_id,
            "delivery": d.id,
            "kind": d.kind,
            "target": d.target,
            "contacts": d.contacts,
            "batches": d.batches,
            "done": self.done,
            "error": self.error,
            "failed_at": self.failed_at,
        }

    def line(self) -> str:
        d = self.delivery
        why = f": {self.error}" if self.error else ": not attempted yet"
        return (
            f"{d.id} of run {d.run_id} ({d.kind} to {d.target}, {self.done}/{d.batches} "
            f"batches sent){why}"
        )


@dataclass
class Report:
    """What a delivery pass did and what is left."""

    outcomes: list[Outcome] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "delivered": [
                {"run_id": o.delivery.run_id, "delivery": o.delivery.id, "batches_sent": o.sent}
                for o in self.outcomes
                if o.ok
            ],
            "pending": [p.to_json() for p in self.pending],
        }


def stage(
    spec: m.Spec,
    catalog: Catalog,
    state: Loc,
    run_id: str,
    as_of: datetime,
    changes: dict[str, pl.DataFrame],
    write: bool = True,
) -> list[Delivery]:
    """The run's deliveries; with `write`, their contacts are frozen into the outbox (call
    before the commit, whose manifest record then lists them)."""
    date = as_of.astimezone(ZoneInfo(spec.timezone)).date().isoformat()
    planned = outbox.plan(run_id, as_of.isoformat(), date, spec, changes)
    if planned and write:
        key = spec.contacts.key
        contacts = load_contacts(spec, catalog, outbox.needed_columns(spec, planned))
        frames = outbox.payloads(planned, changes, contacts, key)
        outbox.write_payloads(state, run_id, frames)
    return planned


def held_runs(state: Loc, runs: list[dict[str, Any]]) -> set[str]:
    """Runs that keep_runs must not prune: they have deliveries still pending."""
    return {d.run_id for d in outbox.pending(state, runs)}


def pending(
    state: Loc, runs: list[dict[str, Any]], segments: list[str] | None = None
) -> list[Pending]:
    """Every pending delivery of the committed runs (of `segments` only, when given)."""
    out = []
    for d in outbox.pending(state, runs):
        if segments and d.segment not in segments:
            continue
        fail = outbox.last_failure(state, d) or {}
        out.append(Pending(d, len(outbox.done(state, d)), fail.get("error"), fail.get("at")))
    return out


def deliver(
    state: Loc, runs: list[dict[str, Any]], key: str, segments: list[str] | None = None
) -> Report:
    """Send what is pending (oldest run first), then report what is still pending."""
    todo = [p.delivery for p in pending(state, runs, segments)]
    outcomes: list[Outcome] = []
    if todo:
        from segcli.outputs.actions import deliver_all

        outcomes = deliver_all(state, todo, key)
    return Report(outcomes, pending(state, runs, segments))
