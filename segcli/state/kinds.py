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
    stored = [n for n in names if n in manifest.current] if load else []
    frames = state.read_snapshots([manifest.current[n]["snapshot"] for n in stored], key)
    previous = dict(zip(stored, frames, strict=True))
    for n in names:
        seg = spec.segments[n]
        cur = manifest.current.get(n)
        path, prev = None, None
        if cur and load:
            prev = previous[n]
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


SEG = "segcli.segment"  # in a batch of transitions: the segment's position in the batch


@dataclass(frozen=True)
class Transition:
    """One segment's new snapshot, its members (key, joined_at, source) and this run's
    entered/left changes."""

    snapshot: pl.DataFrame
    members: pl.DataFrame
    changes: pl.DataFrame


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
    if not cur[key].is_sorted():
        cur = cur.sort(key)
    rows = cur.select(pl.lit(0, pl.UInt32).alias(SEG), key, "rule", "base", "member")
    (one,) = transitions(rows, cur[key], [prev], [refreshed], key, as_of)
    return one.snapshot, one.changes


def transitions(
    cur: pl.DataFrame,
    contacts: pl.Series,
    prevs: list[pl.DataFrame | None],
    refreshed: list[bool],
    key: str,
    as_of: datetime,
) -> list[Transition]:
    """Several segments' transitions at once, in one frame: a run has dozens of segments,
    and on small data the per-call overhead of Polars, not the rows, is the cost.

    `cur` has SEG (the segment's position in `prevs`), key, rule, base, member: each
    segment's rows together, sorted by key, at least every contact in its rule-made set or
    its membership (other rows are ignored); `contacts` are every current contact's keys
    (each once).
    `prevs[i]` is segment i's last snapshot (or None on a first run), `refreshed[i]` whether
    --refresh recomputed it.

    The work is the joins of this run's rows with the last snapshots: on a first run there
    is none (everyone entered, nobody left), and a batch of one segment joins on the key
    alone (a join on two columns costs about twice one on a million contacts)."""
    ts = pl.Datetime("us", "UTC")
    at = pl.lit(as_of).cast(ts)
    dtype = cur.schema[key]
    n = len(prevs)
    ids = [SEG, key] if n > 1 else [key]
    past = [
        p.lazy().select(
            pl.lit(i, pl.UInt32).alias(SEG),
            pl.col(key).cast(dtype),
            pl.col("joined_at").cast(ts),
            "source",
            "member",
        )
        for i, p in enumerate(prevs)
        if p is not None
    ]
    # `cur` comes sorted by key; keeping the left order saves a sort per segment.
    now = cur.lazy().filter(pl.col("member") | pl.col("base"))
    # The last snapshots are read by three joins below: gathered once, not once per join
    # (on the demo's 47 segments, 20 -> 14 ms).
    prev = pl.concat(past).collect().lazy() if past else None
    if prev is None:
        joined = now.with_columns(pl.lit(None, ts).alias("prev_joined"))
    else:
        was = prev.filter(pl.col("member")).select(*ids, pl.col("joined_at").alias("prev_joined"))
        joined = now.join(was, on=ids, how="left", maintain_order="left")
    snap = (
        joined.with_columns(
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
        .select(SEG, key, "joined_at", "source", "member", "base")
        .collect()
    )
    members = snap.lazy().filter(pl.col("member"))

    def per_segment(values: list[str]) -> pl.Expr:
        if len(set(values)) == 1:
            return pl.lit(values[0])
        return pl.col(SEG).replace_strict(list(range(n)), values, return_dtype=pl.String)

    matched = [
        "refreshed" if r and p is not None and p.height else "matched"
        for r, p in zip(refreshed, prevs, strict=True)
    ]
    unmatched = ["refreshed" if r else "unmatched" for r in refreshed]
    # Manual changes are named (SPEC §3.2): in only by include_file is `manual`; out because
    # of exclude_file (the rule-made set has the contact, the membership does not) is
    # `manual`, and so is leaving when one's only claim was an include_file line now gone.
    entered = members.select(
        SEG,
        key,
        pl.lit("entered").alias("change"),
        pl.when(pl.col("source") == "manual")
        .then(pl.lit("manual"))
        .otherwise(per_segment(matched))
        .alias("reason"),
    )
    if prev is None:  # a first run: everyone entered, nobody left (already in key order)
        changes = entered.select(SEG, key, "change", "reason", at.alias("at")).collect()
        return _split_all(snap, changes, n, key)
    entered = entered.join(was.select(ids), on=ids, how="anti", maintain_order="left")
    # A contact that left is deleted when it is no contact any more, and in the rule-made
    # set (so out by exclude_file) when it still has a row in `now`.
    current = pl.LazyFrame({key: contacts}).with_columns(pl.lit(False).alias("base"))
    left = (
        was.select(ids)
        .join(members.select(ids), on=ids, how="anti", maintain_order="left")
        .join(now.select(*ids, "base"), on=ids, how="left", maintain_order="left")
        .join(current, on=key, how="left", maintain_order="left", suffix="_contact")
        .with_columns(pl.coalesce("base", "base_contact").alias("base"))
        .join(
            prev.select(*ids, pl.col("source").alias("was")),
            on=ids,
            how="left",
            maintain_order="left",
        )
        .select(
            *([] if n > 1 else [pl.lit(0, pl.UInt32).alias(SEG)]),
            *ids,
            pl.lit("left").alias("change"),
            pl.when(pl.col("base").is_null())
            .then(pl.lit("deleted"))
            .when(pl.col("base") | (pl.col("was") == "manual"))
            .then(pl.lit("manual"))
            .otherwise(per_segment(unmatched))
            .alias("reason"),
        )
    )
    changes = pl.concat([entered, left]).with_columns(at.alias("at")).collect()
    # Entered (by key), then left (in the last snapshot's order); a segment with both is
    # sorted by key (a stable sort on the key of those segments only).
    kinds = changes.group_by(SEG).agg(pl.col("change").n_unique())
    both = kinds.filter(pl.col("change") > 1)[SEG]
    if both.len():
        changes = changes.sort(
            SEG,
            pl.when(pl.col(SEG).is_in(both.implode())).then(pl.col(key)),
            maintain_order=True,
            nulls_last=True,
        )
    return _split_all(snap, changes, n, key)


def _split_all(snap: pl.DataFrame, changes: pl.DataFrame, n: int, key: str) -> list[Transition]:
    snaps = _split(snap, n)
    return [
        Transition(s if s[key].is_sorted() else s.sort(key), m, c)
        for s, m, c in zip(
            snaps,
            _split(snap.filter(pl.col("member")).select(SEG, key, "joined_at", "source"), n),
            _split(changes, n),
            strict=True,
        )
    ]


def _split(frame: pl.DataFrame, n: int) -> list[pl.DataFrame]:
    """`frame`'s rows of each segment 0..n-1 (without SEG), in order."""
    if n == 1:
        return [frame.drop(SEG)]
    parts = frame.partition_by(SEG, maintain_order=True, include_key=False, as_dict=True)
    empty = frame.drop(SEG).clear()
    return [parts.get((i,), empty) for i in range(n)]
