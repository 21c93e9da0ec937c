"""Render a Report as one self-contained HTML page with inline SVG charts (no network)."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from segcli.views.report import Histogram, Report

BAR = "#4C78A8"
ENTERED = "#54A24B"
LEFT = "#E45756"
HEAT = (245, 133, 24)  # #F58518 at Jaccard 1.0
HIST = "#B279A2"
LINES = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6")
CSS = """
body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px} h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd}
svg text{font:11px system-ui,sans-serif;fill:#333} table{border-collapse:collapse}
td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right} td:first-child{text-align:left}
.note{color:#666}
"""


def _e(s: object) -> str:
    return html.escape(str(s))


def sizes_chart(r: Report) -> str:
    """Horizontal bars: members per segment in the last run."""
    names = list(r.sizes)
    top = max(r.sizes.values(), default=0) or 1
    row, left, width = 18, 210, 520
    h = row * len(names) + 20
    parts = [f'<svg id="sizes" width="{left + width + 80}" height="{h}" role="img">']
    for i, n in enumerate(names):
        w = max(r.sizes[n] / top * width, 1 if r.sizes[n] else 0)
        y = i * row + 4
        parts.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{_e(n)}</text>')
        parts.append(
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 5}" fill="{BAR}">'
            f"<title>{_e(n)}: {r.sizes[n]:,}</title></rect>"
        )
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 12}">{r.sizes[n]:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def runs_chart(r: Report) -> str:
    """Sizes over runs (the 8 largest segments) and entered/left per run (all segments)."""
    if not r.runs:
        return '<p class="note">No committed runs in the state directory yet.</p>'
    names = sorted(r.sizes, key=lambda n: -r.sizes[n])[:8]
    w, h, pad = 700, 220, 40
    n_runs = len(r.runs)
    top = max((run["sizes"].get(n, 0) for run in r.runs for n in names), default=0) or 1

    def x(i: int) -> float:
        return pad + (i + 0.5) * (w - 2 * pad) / n_runs

    def y(v: float) -> float:
        return h - pad - v / top * (h - 2 * pad)

    parts = [
        f'<svg id="runs" width="{w + 200}" height="{h}" role="img">',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#999"/>',
    ]
    for k, n in enumerate(names):
        color = LINES[k % len(LINES)]
        pts = [(x(i), y(run["sizes"][n])) for i, run in enumerate(r.runs) if n in run["sizes"]]
        if len(pts) > 1:
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        for a, b in pts:
            parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{color}"/>')
        parts.append(
            f'<rect x="{w + 10}" y="{10 + 16 * k}" width="10" height="10" '
            f'fill="{color}"/><text x="{w + 26}" y="{19 + 16 * k}">{_e(n)}</text>'
        )
    for i, run in enumerate(r.runs):
        parts.append(
            f'<text x="{x(i):.1f}" y="{h - pad + 14}" text-anchor="middle">'
            f"{_e(run['as_of'][:10])}</text>"
        )
    parts.append("</svg>")
    # entered (up, green) and left (down, red) per run, summed over segments
    ent = [sum(v or 0 for v in run["entered"].values()) for run in r.runs]
    lft = [sum(v or 0 for v in run["left"].values()) for run in r.runs]
    m = max([*ent, *lft, 1])
    mid, half = 110, 90
    bw = max(min((w - 2 * pad) / n_runs * 0.6, 40), 2)
    bars = [
        f'<svg id="changes" width="{w}" height="{2 * mid}" role="img">',
        f'<line x1="{pad}" y1="{mid}" x2="{w - pad}" y2="{mid}" stroke="#999"/>',
    ]
    for i in range(n_runs):
        he, hl = ent[i] / m * half, lft[i] / m * half
        bars.append(
            f'<rect x="{x(i) - bw / 2:.1f}" y="{mid - he:.1f}" width="{bw:.1f}" '
            f'height="{he:.1f}" fill="{ENTERED}"><title>entered {ent[i]:,}</title></rect>'
        )
        bars.append(
            f'<rect x="{x(i) - bw / 2:.1f}" y="{mid:.1f}" width="{bw:.1f}" '
            f'height="{hl:.1f}" fill="{LEFT}"><title>left {lft[i]:,}</title></rect>'
        )
    bars.append("</svg>")
    return "".join(parts) + "".join(bars)


def heatmap(r: Report) -> str:
    """Jaccard overlap between segments; the cell title gives the shared count."""
    names = r.overlap_names
    cell, left = 16, 210
    size = left + cell * len(names) + 10
    parts = [f'<svg id="overlap" width="{size + 140}" height="{size}" role="img">']
    for i, a in enumerate(names):
        parts.append(
            f'<text x="{left - 6}" y="{left + i * cell + 12}" text-anchor="end">{_e(a)}</text>'
        )
        parts.append(
            f'<text transform="translate({left + i * cell + 12},{left - 6}) '
            f'rotate(-60)">{_e(a)}</text>'
        )
        for j, b in enumerate(names):
            jac = r.jaccard(i, j)
            rgb = tuple(round(255 - (255 - c) * jac) for c in HEAT)
            parts.append(
                f'<rect x="{left + j * cell}" y="{left + i * cell}" width="{cell - 1}" '
                f'height="{cell - 1}" fill="rgb{rgb}"><title>{_e(a)} ∩ {_e(b)}: '
                f"{r.overlap_counts[i][j]:,} (Jaccard {jac:.3f})</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


def hist_chart(hg: Histogram) -> str:
    """A score histogram with the sales-ready line marked."""
    w, h, pad = 520, 200, 36
    top = max(hg.counts, default=0) or 1
    lo, hi = hg.edges[0], hg.edges[-1]
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return pad + (v - lo) / span * (w - 2 * pad)

    parts = [f'<svg class="hist" id="hist-{_e(hg.model)}" width="{w}" height="{h}" role="img">']
    for i, c in enumerate(hg.counts):
        x0, x1 = x(hg.edges[i]), x(hg.edges[i + 1])
        bh = c / top * (h - 2 * pad)
        parts.append(
            f'<rect x="{x0:.1f}" y="{h - pad - bh:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
            f'height="{bh:.1f}" fill="{HIST}"><title>{hg.edges[i]:g}–'
            f"{hg.edges[i + 1]:g}: {c:,}</title></rect>"
        )
    xs = x(hg.sales_ready)
    parts.append(
        f'<line x1="{xs:.1f}" y1="{pad - 10}" x2="{xs:.1f}" y2="{h - pad}" '
        'stroke="#000" stroke-width="2" stroke-dasharray="5,3"/>'
    )
    parts.append(f'<text x="{xs + 4:.1f}" y="{pad - 2}">sales-ready {hg.sales_ready:g}</text>')
    for v in (lo, hi):
        parts.append(f'<text x="{x(v):.1f}" y="{h - pad + 14}" text-anchor="middle">{v:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(r: Report, title: str) -> str:
    """The whole page."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    hists = (
        "".join(
            f"<h3>{_e(hg.model)}</h3><p>mean {hg.mean:.2f}; {hg.ready_share:.1f}% of contacts at "
            f"or above sales-ready</p>{hist_chart(hg)}"
            for hg in r.histograms
        )
        or '<p class="note">No scoring models.</p>'
    )
    rows = "".join(
        f"<tr><td>{_e(run['run_id'])}</td><td>{_e(run['as_of'])}</td>"
        f"<td>{sum(v or 0 for v in run['entered'].values()):,}</td>"
        f"<td>{sum(v or 0 for v in run['left'].values()):,}</td></tr>"
        for run in r.runs
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{_e(title)}</h1>"
        f'<p class="note">generated {now}; {len(r.sizes)} segments, {len(r.runs)} runs</p>'
        f"<h2>Segment sizes (last run)</h2>{sizes_chart(r)}"
        f"<h2>Sizes over runs, and entered / left per run</h2>{runs_chart(r)}"
        f"<table><tr><th>run</th><th>as_of</th><th>entered</th><th>left</th></tr>{rows}</table>"
        f"<h2>Overlap between segments (Jaccard)</h2>{heatmap(r)}"
        f"<h2>Score distributions</h2>{hists}</body></html>"
    )
