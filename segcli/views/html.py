"""Render a Report as one self-contained HTML page with inline SVG charts (no network).

Every chart has axes with values, a title on each axis, a legend, and labels that stay inside
the chart. Elements carry classes (`tick`, `axis-title`, `legend`, `value`) so that the
browser test can find and measure them.
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime

from segcli.views.report import Histogram, Report, deliveries_text

BAR = "#4C78A8"
ENTERED = "#54A24B"
LEFT = "#E45756"
HEAT = (245, 133, 24)  # #F58518 at Jaccard 1.0
HIST = "#B279A2"
GRID = "#e4e4e4"
LINES = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6")
CSS = """
body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px} h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd}
svg{display:block;margin:8px 0} svg text{font:11px system-ui,sans-serif;fill:#333}
svg .axis-title{font-weight:600} table{border-collapse:collapse}
td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right} td:first-child{text-align:left}
.note{color:#666}
"""


def _e(s: object) -> str:
    return html.escape(str(s))


def num(v: float) -> str:
    """A count or score as a short label: 950, 1.2k, 18.8k, 1.2M; fractions kept (2.5)."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}" if v != int(v) else f"{int(v)}"


def nice_step(span: float, n: int = 5) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about n intervals."""
    raw = (span or 1.0) / n
    mag = 10 ** math.floor(math.log10(raw))
    return float(next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * 0.999))


def ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (the first <= lo, the last >= hi)."""
    step = nice_step(hi - lo, n)
    start = math.floor(lo / step + 1e-9) * step
    out = [start]
    while out[-1] < hi - 1e-9:
        out.append(start + len(out) * step)
    return out


def _text(x: float, y: float, label: object, cls: str, anchor: str = "start", **extra: str) -> str:
    more = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in extra.items())
    return (
        f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{more}>'
        f"{_e(label)}</text>"
    )


def _legend(x: float, y: float, items: list[tuple[str, str, str]]) -> str:
    """Legend rows at (x, y): (kind 'box' | 'line' | 'dash', colour, label)."""
    parts = ['<g class="legend">']
    for k, (kind, colour, label) in enumerate(items):
        yy = y + 16 * k
        if kind == "box":
            parts.append(f'<rect x="{x}" y="{yy - 9}" width="10" height="10" fill="{colour}"/>')
        else:
            dash = ' stroke-dasharray="5,3"' if kind == "dash" else ""
            parts.append(
                f'<line x1="{x}" y1="{yy - 4}" x2="{x + 14}" y2="{yy - 4}" stroke="{colour}" '
                f'stroke-width="2"{dash}/>'
            )
        parts.append(_text(x + 20, yy, label, "legend-label"))
    parts.append("</g>")
    return "".join(parts)


def _run_labels(r: Report, runs: list[int], x: list[float], y: float) -> str:
    """Run dates under an x axis, thinned so that at most about 8 are written."""
    every = max(1, math.ceil(len(runs) / 8))
    parts = ['<g class="axis x">']
    for k, (i, xx) in enumerate(zip(runs, x, strict=True)):
        if k % every == 0:
            when = r.local(r.runs[i]["as_of"])
            label = when[:10] if when[11:19] == "00:00:00" else when[:16].replace("T", " ")
            parts.append(_text(xx, y, label, "tick", "middle"))
    parts.append("</g>")
    return "".join(parts)


def sizes_chart(r: Report) -> str:
    """Horizontal bars: members per segment in the last committed run, with a value axis."""
    names = list(r.sizes)
    tv = ticks(0, max(r.sizes.values(), default=0) or 1)
    top = tv[-1]
    row, left, width, head = 18, 220, 520, 10
    h = head + row * len(names) + 46
    base = head + row * len(names)
    parts = [f'<svg id="sizes" width="{left + width + 70}" height="{h}" role="img">']
    parts.append('<g class="axis x">')
    for t in tv:
        xx = left + t / top * width
        parts.append(f'<line x1="{xx:.1f}" y1="{head}" x2="{xx:.1f}" y2="{base}" stroke="{GRID}"/>')
        parts.append(_text(xx, base + 14, num(t), "tick", "middle"))
    parts.append("</g>")
    parts.append(_text(left + width / 2, base + 34, "members", "axis-title", "middle"))
    for i, n in enumerate(names):
        w = max(r.sizes[n] / top * width, 1 if r.sizes[n] else 0)
        y = head + i * row + 2
        parts.append(_text(left - 6, y + 12, n, "label", "end"))
        parts.append(
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 5}" fill="{BAR}">'
            f"<title>{_e(n)}: {r.sizes[n]:,}</title></rect>"
        )
        parts.append(_text(left + w + 4, y + 12, f"{r.sizes[n]:,}", "value"))
    parts.append("</svg>")
    return "".join(parts)


def runs_chart(r: Report) -> str:
    """Members per run of the 8 largest segments: lines over a value axis, with a legend."""
    if not r.runs:
        return '<p class="note">No committed runs in the state directory yet.</p>'
    names = sorted(r.sizes, key=lambda n: -r.sizes[n])[:8]
    w, h, left, top_pad, bottom = 720, 260, 64, 14, 46
    n_runs = len(r.runs)
    tv = ticks(0, max((run["sizes"].get(n, 0) for run in r.runs for n in names), default=0) or 1)
    top = tv[-1]
    plot_h = h - top_pad - bottom

    def x(i: int) -> float:
        return left + (i + 0.5) * (w - left) / n_runs

    def y(v: float) -> float:
        return top_pad + plot_h - v / top * plot_h

    parts = [f'<svg id="runs" width="{w + 280}" height="{h}" role="img">', '<g class="axis y">']
    for t in tv:
        parts.append(
            f'<line x1="{left}" y1="{y(t):.1f}" x2="{w}" y2="{y(t):.1f}" stroke="{GRID}"/>'
        )
        parts.append(_text(left - 6, y(t) + 4, num(t), "tick", "end"))
    parts.append("</g>")
    parts.append(
        _text(14, top_pad + plot_h / 2, "members", "axis-title", "middle",
              transform=f"rotate(-90 14 {top_pad + plot_h / 2:.1f})")
    )  # fmt: skip
    parts.append(_run_labels(r, list(range(n_runs)), [x(i) for i in range(n_runs)], h - 30))
    parts.append(_text(left + (w - left) / 2, h - 8, "run (as_of)", "axis-title", "middle"))
    legend = []
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
        legend.append(("line", color, f"{n} ({r.sizes[n]:,})"))
    parts.append(_legend(w + 20, 20, legend))
    parts.append("</svg>")
    return "".join(parts)


def changes_chart(r: Report) -> str:
    """Entered (up) and left (down) per run, summed over segments. A segment's first run (its
    initial load) is listed apart, so that it does not flatten the bars of later runs."""
    if not r.runs:
        return ""
    ent, lft, initial = [], [], []
    for run in r.runs:
        new = set(run.get("new_segments", []))
        ent.append(sum(v or 0 for s, v in run["entered"].items() if s not in new))
        lft.append(sum(v or 0 for v in run["left"].values()))
        initial.append(sum(v or 0 for s, v in run["entered"].items() if s in new))
    notes = [
        f"run {_e(run['run_id'])} ({_e(r.local(run['as_of']))}): initial load of "
        f"{len(run.get('new_segments', []))} new segment(s), {initial[i]:,} contacts entered"
        for i, run in enumerate(r.runs)
        if initial[i]
    ]
    note = (
        '<p class="note" id="initial-loads">Not drawn, to keep the scale of later runs: '
        + "; ".join(notes)
        + ".</p>"
        if notes
        else ""
    )
    # Runs that are nothing but initial loads (the state's first run) have no bars.
    shown = [
        i
        for i, run in enumerate(r.runs)
        if not run["entered"] or len(run.get("new_segments", [])) < len(run["entered"])
    ]
    if not shown:
        return note + '<p class="note">No run after the first one yet: nothing entered or left.</p>'
    w, h, left, pad, bottom = 720, 250, 64, 24, 46
    half = (h - pad - bottom) / 2
    mid = pad + half
    tv = ticks(0, max([*(ent[i] for i in shown), *(lft[i] for i in shown), 1]), 4)
    m = tv[-1]
    slot = (w - left) / len(shown)
    bw = max(min(slot * 0.6, 40), 2)

    def x(k: int) -> float:
        return left + (k + 0.5) * slot

    bars = [f'<svg id="changes" width="{w + 280}" height="{h}" role="img">', '<g class="axis y">']
    for t in tv:
        for sign in (1, -1) if t else (1,):
            yy = mid - sign * t / m * half
            bars.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{w}" y2="{yy:.1f}" stroke="{GRID}"/>')
            bars.append(_text(left - 6, yy + 4, num(t), "tick", "end"))
    bars.append("</g>")
    bars.append(f'<line x1="{left}" y1="{mid}" x2="{w}" y2="{mid}" stroke="#999"/>')
    bars.append(
        _text(14, mid, "contacts", "axis-title", "middle", transform=f"rotate(-90 14 {mid:.1f})")
    )
    for k, i in enumerate(shown):
        he, hl = ent[i] / m * half, lft[i] / m * half
        xx = x(k) - bw / 2
        bars.append(
            f'<rect x="{xx:.1f}" y="{mid - he:.1f}" width="{bw:.1f}" height="{he:.1f}" '
            f'fill="{ENTERED}"><title>entered {ent[i]:,}</title></rect>'
            f'<rect x="{xx:.1f}" y="{mid:.1f}" width="{bw:.1f}" height="{hl:.1f}" '
            f'fill="{LEFT}"><title>left {lft[i]:,}</title></rect>'
        )
        if len(shown) <= 16:
            bars.append(_text(x(k), mid - he - 3, num(ent[i]), "value", "middle"))
            bars.append(_text(x(k), mid + hl + 11, num(lft[i]), "value", "middle"))
    bars.append(_run_labels(r, shown, [x(k) for k in range(len(shown))], h - 30))
    bars.append(_text(left + (w - left) / 2, h - 8, "run (as_of)", "axis-title", "middle"))
    bars.append(
        _legend(w + 20, 20, [("box", ENTERED, "entered (up)"), ("box", LEFT, "left (down)")])
    )
    bars.append("</svg>")
    return note + "".join(bars)


def heatmap(r: Report) -> str:
    """Jaccard overlap between segments, with a colour scale; a cell's title gives the count."""
    names = r.overlap_names
    cell, left = 16, 220
    size = left + cell * len(names) + 10
    parts = [f'<svg id="overlap" width="{size + 150}" height="{max(size, left + 150)}" role="img">']
    for i, a in enumerate(names):
        parts.append(_text(left - 6, left + i * cell + 12, a, "label", "end"))
        parts.append(
            f'<text class="label" transform="translate({left + i * cell + 12},{left - 6}) '
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
    # The colour scale: white (no shared members) to full orange (the same members).
    sx, sy, sh = size + 20, left, 120
    parts.append(
        '<defs><linearGradient id="jaccard-scale" x1="0" y1="1" x2="0" y2="0">'
        '<stop offset="0" stop-color="rgb(255,255,255)"/>'
        f'<stop offset="1" stop-color="rgb{HEAT}"/></linearGradient></defs>'
        f'<g class="legend scale"><rect x="{sx}" y="{sy}" width="14" height="{sh}" '
        'fill="url(#jaccard-scale)" stroke="#999"/>'
    )
    for t in (0, 0.25, 0.5, 0.75, 1):
        parts.append(_text(sx + 20, sy + sh - t * sh + 4, f"{t:g}", "tick"))
    parts.append(_text(sx, sy - 10, "Jaccard", "axis-title"))
    parts.append("</g></svg>")
    return "".join(parts)


def hist_chart(hg: Histogram) -> str:
    """A score histogram: contacts per score bin (with counts), the sales-ready line, axes."""
    w, h, left, right, top_pad, bottom = 640, 270, 64, 24, 44, 46
    tv = ticks(0, max(hg.counts, default=0) or 1, 4)
    top = tv[-1]
    lo, hi = hg.edges[0], hg.edges[-1]
    span = (hi - lo) or 1.0
    plot_h = h - top_pad - bottom
    base = top_pad + plot_h

    def x(v: float) -> float:
        return left + (v - lo) / span * (w - left - right)

    parts = [
        f'<svg class="hist" id="hist-{_e(hg.model)}" width="{w}" height="{h}" role="img">',
        '<g class="axis y">',
    ]
    for t in tv:
        yy = base - t / top * plot_h
        parts.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{w - right}" y2="{yy:.1f}" stroke="{GRID}"/>'
        )
        parts.append(_text(left - 6, yy + 4, num(t), "tick", "end"))
    parts.append("</g>")
    parts.append(
        _text(14, top_pad + plot_h / 2, "contacts", "axis-title", "middle",
              transform=f"rotate(-90 14 {top_pad + plot_h / 2:.1f})")
    )  # fmt: skip
    for i, c in enumerate(hg.counts):
        x0, x1 = x(hg.edges[i]), x(hg.edges[i + 1])
        bh = c / top * plot_h
        parts.append(
            f'<rect x="{x0:.1f}" y="{base - bh:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
            f'height="{bh:.1f}" fill="{HIST}"><title>{hg.edges[i]:g}–'
            f"{hg.edges[i + 1]:g}: {c:,}</title></rect>"
        )
        if c:
            parts.append(_text((x0 + x1) / 2, base - bh - 3, num(c), "value", "middle"))
    parts.append('<g class="axis x">')
    for t in ticks(lo, hi, 6):
        if lo - 1e-9 <= t <= hi + 1e-9:
            parts.append(_text(x(t), base + 14, num(t), "tick", "middle"))
            parts.append(
                f'<line x1="{x(t):.1f}" y1="{base}" x2="{x(t):.1f}" y2="{base + 4}" stroke="#999"/>'
            )
    parts.append("</g>")
    parts.append(f'<line x1="{left}" y1="{base}" x2="{w - right}" y2="{base}" stroke="#999"/>')
    parts.append(_text(left + (w - left - right) / 2, h - 8, "score", "axis-title", "middle"))
    xs = x(hg.sales_ready)
    parts.append(
        f'<line x1="{xs:.1f}" y1="{top_pad - 4}" x2="{xs:.1f}" y2="{base}" '
        'stroke="#000" stroke-width="2" stroke-dasharray="5,3"/>'
    )
    items = [("box", HIST, "contacts per score bin"), ("dash", "#000", "sales-ready")]
    items[1] = ("dash", "#000", f"sales-ready at {hg.sales_ready:g}")
    parts.append(_legend(left, 14, items))
    parts.append("</svg>")
    return "".join(parts)


def render_html(r: Report, title: str) -> str:
    """The whole page."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    hists = (
        "".join(
            f"<h3>{_e(hg.model)}</h3><p>mean {hg.mean:.2f}; {hg.ready_share:.1f}% of contacts at "
            f"or above sales-ready ({hg.sales_ready:g})</p>{hist_chart(hg)}"
            for hg in r.histograms
        )
        or '<p class="note">No scoring models.</p>'
    )
    rows = "".join(
        f"<tr><td>{_e(run['run_id'])}</td><td>{_e(r.local(run['as_of']))}</td>"
        f"<td>{sum(v or 0 for v in run['entered'].values()):,}</td>"
        f"<td>{sum(v or 0 for v in run['left'].values()):,}</td>"
        f"<td>{_e(deliveries_text(run['deliveries']))}</td></tr>"
        for run in r.runs
    )
    shows = f"last committed {r.last.label()}; " if r.last else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{_e(title)}</h1>"
        f'<p class="note" id="shows">{_e(shows)}{len(r.sizes)} segments, {len(r.runs)} runs; '
        f"generated {now}</p>"
        f"<h2>Segment sizes (last committed run)</h2>{sizes_chart(r)}"
        f"<h2>Sizes over runs</h2>{runs_chart(r)}"
        f"<h2>Entered and left per run</h2>{changes_chart(r)}"
        f"<table><tr><th>run</th><th>as_of</th><th>entered</th><th>left</th><th>deliveries</th></tr>{rows}</table>"
        f"<h2>Overlap between segments (Jaccard)</h2>{heatmap(r)}"
        f"<h2>Score distributions</h2>{hists}</body></html>"
    )
