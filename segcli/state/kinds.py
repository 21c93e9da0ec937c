"""The segment kinds in one place (SPEC §2.3, §3): how each kind carries members from the last
committed run, and what changed.

- dynamic: recomputed every run; members are whoever matches now.
- semi_dynamic: add only; the rule-made set is the previous one plus whoever matches now.
- static: computed on its first run (and on `--refresh NAME`), then frozen.
- overrides: `include_file` adds and `exclude_file` removes (and wins) on top of any kind.

`carry` decides each segment's mode (the planner turns the mode into the kind's rule over the
rule-made set, `segcli.planning.planner.kind_rule`); `transition` turns a run's per-contact
rule/base/member flags into the new snapshot and the entered/left changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from segcli.spec import model as m
from segcli.state.store import Manifest, StateDir
from segcli.storage import Loc


@dataclass(frozen=True)
class Carry:
    """What a segment brings from the last committed run: its mode, its previous rule-made
    set (keys), its previous snapshot and that snapshot's file (an engine that reads the
    state itself, Spark, gets only the file: `carry(..., load=False)`)."""

    mode: str  # "dynamic" | "compute" | "accumulate" | "frozen"
    previous: pl.Series | None = None
    snapshot: pl.DataFrame | None = None
    path: Loc | None = None


def mode_of(kind: str, has_previous: bool, refresh: bool) -> str:
    """dynamic: recompute; compute: a first run or a refresh; accumulate: semi_dynamic;
    frozen: static."""
    if kind == "dynamic":
        return "dynamic"
    if not has_previous or refresh:
        return "compute"
    return "accumulate" if kind == "semi_dynamic" else "frozen"


def carry(
    spec: m.Spec,
    names: list[str],
    manifest: Manifest,
    state: StateDir,
    refresh: set[str],
    fingerprints: dict[str, str],
    load: bool = True,
) -> tuple[dict[str, Carry], list[str]]:
    """Each segment's mode and previous set, plus notes on changed definitions and kinds;
    with `load` false, the previous snapshots are not read (only their files are named)."""
    key = spec.contacts.key
    out: dict[str, Carry] = {}
    notes: list[str] = []
    for n in names:
        seg = spec.segments[n]
        cur = manifest.current.get(n)
        path, prev = None, None
        if cur and load:
            prev = state.read_snapshot(cur["snapshot"], key)
            path = state.path / cur["snapshot"]
        elif cur:
            path = state.snapshot_path(cur["snapshot"], key)
        if cur and cur.get("fingerprint") != fingerprints[n]:
            keep = seg.kind != "dynamic" and n not in refresh
            notes.append(
                f"the definition of segment '{n}' changed since the last run"
                + (f"; its members are kept (--refresh {n} recomputes it)" if keep else "")
            )
        if cur and cur.get("kind") != seg.kind:
            notes.append(f"segment '{n}' changed kind: {cur.get('kind')} -> {seg.kind}")
        mode = mode_of(seg.kind, path is not None, n in refresh)
        base = prev.filter(pl.col("base"))[key] if prev is not None else None
        out[n] = Carry(mode, base, prev, path)
    return out, notes


def transition(
    prev: pl.DataFrame | None,
    cur: pl.DataFrame,
    key: str,
    as_of: datetime,
    refreshed: bool,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A segment's new snapshot and this run's changes.

    `cur` has, for every current contact: key, rule, base, member (booleans). `prev` is the
    last snapshot (key, joined_at, source, member, base) or None on a first run.
    """
    ts = pl.Datetime("us", "UTC")
    at = pl.lit(as_of).cast(ts)
    if prev is None:
        prev = pl.DataFrame(
            {
                key: pl.Series([], dtype=cur[key].dtype),
                "joined_at": pl.Series([], dtype=ts),
                "source": pl.Series([], dtype=pl.String),
                "member": pl.Series([], dtype=pl.Boolean),
                "base": pl.Series([], dtype=pl.Boolean),
            }
        )
    prev = prev.with_columns(pl.col(key).cast(cur[key].dtype))
    was = prev.filter(pl.col("member")).select(key, pl.col("joined_at").alias("prev_joined"))
    now = cur.filter(pl.col("member") | pl.col("base"))
    # `cur` comes sorted by key; keeping the left order saves a sort per segment.
    snap = (
        now.join(was, on=key, how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("member"))
            .then(pl.coalesce(pl.col("prev_joined"), at))
            .otherwise(None)
            .cast(ts)
            .alias("joined_at"),
            # A frozen static segment's rule may match someone outside its base: such a
            # member is there only by include_file, so it is `manual`, not `rule`.
            pl.when(pl.col("rule") & pl.col("base"))
            .then(pl.lit("rule"))
            .when(pl.col("base"))
            .then(pl.lit("kept"))
            .otherwise(pl.lit("manual"))
            .alias("source"),
        )
        .select(key, "joined_at", "source", "member", "base")
    )
    if not snap[key].is_sorted():
        snap = snap.sort(key)
    members = snap.filter(pl.col("member")).select(key)
    if was.height == 0:  # a first run: everyone entered, nobody left
        entered, left = members, was.select(key)
    else:
        entered = members.join(was.select(key), on=key, how="anti", maintain_order="left")
        left = was.select(key).join(members, on=key, how="anti", maintain_order="left")
    reason_in = "refreshed" if refreshed and prev.height else "matched"
    # Manual changes are named (SPEC §3.2): in only by include_file is `manual`; out because
    # of exclude_file (the rule-made set has the contact, the membership does not) is
    # `manual`, and so is leaving when one's only claim was an include_file line now gone.
    entered = entered.join(
        snap.select(key, "source"), on=key, how="left", maintain_order="left"
    ).select(
        key,
        pl.when(pl.col("source") == "manual")
        .then(pl.lit("manual"))
        .otherwise(pl.lit(reason_in))
        .alias("reason"),
    )
    if left.height:
        left = (
            left.join(cur.select(key, "base"), on=key, how="left", maintain_order="left")
            .join(
                prev.select(key, pl.col("source").alias("was")),
                on=key,
                how="left",
                maintain_order="left",
            )
            .select(
                key,
                pl.when(pl.col("base").is_null())
                .then(pl.lit("deleted"))
                .when(pl.col("base") | (pl.col("was") == "manual"))
                .then(pl.lit("manual"))
                .otherwise(pl.lit("refreshed" if refreshed else "unmatched"))
                .alias("reason"),
            )
        )
    else:
        left = left.with_columns(pl.lit(None, dtype=pl.String).alias("reason"))
    changes = pl.concat(
        [
            entered.with_columns(pl.lit("entered").alias("change")),
            left.with_columns(pl.lit("left").alias("change")),
        ],
        how="diagonal",
    ).select(key, "change", "reason", at.alias("at"))
    if entered.height and left.height:
        changes = changes.sort(key)
    return snap, changes
