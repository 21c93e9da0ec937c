"""Report data: segment sizes (last run and over runs), entered/left, overlaps, score histograms."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from segcli.spec import model as m
from segcli.state import outbox
from segcli.state.store import Manifest
from segcli.storage import Loc
from segcli.views.lastrun import RunRef, local_time


@dataclass
class Histogram:
    model: str
    sales_ready: float
    edges: list[float]  # bin edges of the score, len(counts) + 1
    counts: list[int]
    mean: float
    ready_share: float  # share of contacts at or above sales_ready, in percent


@dataclass
class Report:
    sizes: dict[str, int]
    runs: list[dict[str, Any]]  # run_id, as_of, sizes, entered, left (per segment), deliveries
    overlap_names: list[str]
    overlap_counts: list[list[int]]
    histograms: list[Histogram] = field(default_factory=list)
    last: RunRef | None = None  # the run whose members and scores these are

    @property
    def timezone(self) -> str:
        return self.last.timezone if self.last else "UTC"

    def local(self, at: str) -> str:
        """A run's as_of as a person reads it (project timezone, with offset)."""
        return local_time(at, self.timezone)

    def jaccard(self, i: int, j: int) -> float:
        a, b = self.sizes[self.overlap_names[i]], self.sizes[self.overlap_names[j]]
        inter = self.overlap_counts[i][j]
        union = a + b - inter
        return inter / union if union else 0.0

    def to_json(self) -> dict[str, Any]:
        n = len(self.overlap_names)
        return {
            "run": self.last.to_json() if self.last else None,
            "sizes": self.sizes,
            "runs": self.runs,
            "overlap": {
                "segments": self.overlap_names,
                "counts": self.overlap_counts,
                "jaccard": [[round(self.jaccard(i, j), 4) for j in range(n)] for i in range(n)],
            },
            "histograms": [h.__dict__ for h in self.histograms],
        }


def build_report(
    spec: m.Spec,
    members: dict[str, pl.Series],
    scores: pl.DataFrame | None,
    manifest: Manifest,
    last: RunRef,
    bins: int = 15,
    state: Loc | None = None,
) -> Report:
    """Gather the report's numbers: the last run's members and scores, the state's history
    (with each run's delivery status when `state`, the state directory, is given)."""
    names = list(members)
    sizes = {n: len(s) for n, s in members.items()}
    long = pl.concat(
        [
            pl.DataFrame({"seg": [i] * len(s), "k": s.cast(pl.String)})
            for i, s in enumerate(members.values())
        ]
    )
    pairs = long.join(long, on="k", suffix="_b").group_by("seg", "seg_b").agg(pl.len().alias("n"))
    counts = [[0] * len(names) for _ in names]
    for a, b, n in pairs.iter_rows():
        counts[a][b] = int(n)
    runs = []
    seen: set[str] = set()
    for i, r in enumerate(manifest.runs):
        segs = r["segments"]
        # A segment's first run enters all its members at once (its initial load): kept
        # apart, it does not dwarf the day-to-day changes in the report's chart.
        new = [s for s in segs if s not in seen] if i or not manifest.pruned else []
        seen.update(segs)
        runs.append(
            {
                "run_id": r["run_id"],
                "as_of": r["as_of"],
                "sizes": {s: v["size"] for s, v in segs.items()},
                "entered": {s: v["entered"] for s, v in segs.items()},
                "left": {s: v["left"] for s, v in segs.items()},
                "new_segments": new,
                "deliveries": outbox.status(state, r) if state else outbox.status_empty(),
            }
        )
    hists = []
    for name, sm in spec.scoring.items():
        if scores is not None and name in scores.columns:
            hists.append(histogram(scores[name], name, sm.sales_ready, bins))
    return Report(sizes, runs, names, counts, hists, last)


def deliveries_text(counts: dict[str, int]) -> str:
    """A run's deliveries for a person: `2 done, 1 failed` (the non-zero counts), or `-`."""
    parts = [f"{counts[k]} {k}" for k in ("done", "pending", "failed") if counts.get(k)]
    return ", ".join(parts) or "-"


def histogram(values: pl.Series, model: str, sales_ready: float, bins: int) -> Histogram:
    """Equal-width bins from min(0, lowest) to max(sales_ready, highest)."""
    v = values.drop_nulls().cast(pl.Float64)
    lo = min(0.0, float(v.min())) if len(v) else 0.0  # type: ignore[arg-type]
    hi = max(sales_ready, float(v.max())) if len(v) else sales_ready  # type: ignore[arg-type]
    width = (hi - lo) / bins if hi > lo else 1.0
    edges = [lo + i * width for i in range(bins + 1)]
    idx = ((v - lo) / width).floor().clip(0, bins - 1).cast(pl.Int64)
    counts = [0] * bins
    for i, n in idx.value_counts().iter_rows():
        counts[int(i)] = int(n)
    mean = float(v.mean()) if len(v) else math.nan  # type: ignore[arg-type]
    ready = int((v >= sales_ready).sum())
    share = 100.0 * ready / len(v) if len(v) else 0.0
    return Histogram(model, sales_ready, edges, counts, mean, share)
