"""The kinds' transitions (segcli.state.kinds.transitions) against a plain-Python statement of
their meaning (SPEC §3, §3.2), on random previous snapshots and current flags: several
segments in one batch (how small runs take them) and each segment alone (how a million
contacts take them, joined on the key only), first runs and later runs, refreshed or not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from segcli import api
from segcli.state import kinds

AT = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)
BEFORE = datetime(2026, 11, 13, tzinfo=UTC)

flags = st.tuples(st.booleans(), st.booleans(), st.booleans())  # rule, base, member
stored = st.tuples(st.booleans(), st.booleans(), st.sampled_from(["rule", "kept", "manual"]))


@st.composite
def cases(draw: Any) -> dict[str, Any]:
    """1..4 segments over current contacts (ids 0..11); per segment, this run's flags, no
    previous snapshot or one over ids 0..11 (some no longer contacts), refreshed or not."""
    ids = sorted(draw(st.sets(st.integers(0, 11), min_size=1, max_size=10)))
    segments = []
    for _ in range(draw(st.integers(1, 4))):
        cur = {k: draw(flags) for k in ids}
        prev = None
        if draw(st.booleans()):
            keys = sorted(draw(st.sets(st.integers(0, 11), max_size=10)))
            rows = [(k, *draw(stored)) for k in keys]
            prev = [r for r in rows if r[1] or r[2]]  # (key, member, base, source)
        segments.append({"cur": cur, "prev": prev, "refreshed": draw(st.booleans())})
    return {"ids": ids, "segments": segments}


def key(k: int) -> str:
    return f"c{k:02d}"


def expected(ids: list[int], seg: dict[str, Any]) -> tuple[list[tuple], list[tuple]]:
    """(snapshot rows, change rows) of one segment, as SPEC §3 and §3.2 say."""
    prev = seg["prev"] or []
    was = {k: src for k, member, _base, src in prev if member}
    now = {k: f for k, f in seg["cur"].items() if f[1] or f[2]}
    snapshot = []
    for k in sorted(now):
        rule, base, member = now[k]
        source = "rule" if rule and base else "kept" if base else "manual"
        joined = (BEFORE if k in was else AT) if member else None
        snapshot.append((key(k), joined, source, member, base))
    members = {k for k, (_r, _b, member) in now.items() if member}
    refreshed = seg["refreshed"] and seg["prev"] is not None
    entered = [
        (
            key(k),
            "entered",
            "manual"
            if not (now[k][0] and now[k][1]) and not now[k][1]
            else "refreshed"
            if refreshed and prev
            else "matched",
        )
        for k in sorted(members - set(was))
    ]
    left = []
    for k, _member, _base, src in prev:  # the last snapshot's order
        if k not in was or k in members:
            continue
        base = now[k][1] if k in now else (False if k in ids else None)
        reason = (
            "deleted"
            if base is None
            else "manual"
            if base or src == "manual"
            else "refreshed"
            if refreshed
            else "unmatched"
        )
        left.append((key(k), "left", reason))
    changes = entered + left
    if entered and left:
        changes.sort()
    return snapshot, changes


def frames(ids: list[int], seg: dict[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(this run's rows, the previous snapshot) as the run hands them over."""
    cur = pl.DataFrame(
        {
            "id": [key(k) for k in ids],
            "rule": [seg["cur"][k][0] for k in ids],
            "base": [seg["cur"][k][1] for k in ids],
            "member": [seg["cur"][k][2] for k in ids],
        }
    )
    if seg["prev"] is None:
        return cur, None
    prev = pl.DataFrame(
        {
            "id": [key(r[0]) for r in seg["prev"]],
            "joined_at": [BEFORE if r[1] else None for r in seg["prev"]],
            "source": [r[3] for r in seg["prev"]],
            "member": [r[1] for r in seg["prev"]],
            "base": [r[2] for r in seg["prev"]],
        },
        schema={
            "id": pl.String,
            "joined_at": pl.Datetime("us", "UTC"),
            "source": pl.String,
            "member": pl.Boolean,
            "base": pl.Boolean,
        },
    )
    return cur, prev


def rows_of(move: kinds.Transition) -> tuple[list[tuple], list[tuple], list[str]]:
    snap = [
        (r["id"], r["joined_at"], r["source"], r["member"], r["base"])
        for r in move.snapshot.iter_rows(named=True)
    ]
    changes = [(r["id"], r["change"], r["reason"]) for r in move.changes.iter_rows(named=True)]
    assert set(move.changes["at"].to_list()) <= {AT}
    return snap, changes, move.members["id"].to_list()


@settings(max_examples=150, deadline=None)
@given(cases())
def test_transitions_batched_and_alone_mean_what_the_spec_says(case: dict[str, Any]) -> None:
    ids, segments = case["ids"], case["segments"]
    inputs = [frames(ids, s) for s in segments]
    contacts = pl.Series("id", [key(k) for k in ids])
    refreshed = [s["refreshed"] and s["prev"] is not None for s in segments]
    batch = pl.concat(
        [
            cur.select(pl.lit(i, pl.UInt32).alias(kinds.SEG), pl.all())
            for i, (cur, _) in enumerate(inputs)
        ]
    )
    together = kinds.transitions(batch, contacts, [p for _, p in inputs], refreshed, "id", AT)
    alone = [
        kinds.transitions(
            cur.select(pl.lit(0, pl.UInt32).alias(kinds.SEG), pl.all()),
            contacts,
            [prev],
            [r],
            "id",
            AT,
        )[0]
        for (cur, prev), r in zip(inputs, refreshed, strict=True)
    ]
    for seg, a, b in zip(segments, together, alone, strict=True):
        snapshot, changes = expected(ids, seg)
        members = [row[0] for row in snapshot if row[3]]
        assert rows_of(a) == (snapshot, changes, members)
        assert rows_of(b) == (snapshot, changes, members)


def test_a_million_contacts_go_one_segment_at_a_time_and_a_small_run_in_one_batch() -> None:
    names = [f"s{i}" for i in range(30)]
    assert api._batches(names, 3_000) == [names]
    assert api._batches(names, 1_000_000) == [[n] for n in names]
    batches = api._batches(names, 50_000)
    assert len(batches) > 1 and [n for b in batches for n in b] == names
