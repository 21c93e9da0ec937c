"""Render `segcli report --html` in a real headless Chromium: every chart is drawn, and has
axes with values, axis titles, a legend and labels that the browser lays out unclipped.

The page is screenshotted and the PNG decoded here (no imaging dependency): each chart fills
its shapes with its own colour, so counting pixels of that exact colour tells whether the
browser drew it. For the layout, a copy of the page gets a small script that measures every
label of every chart where the browser placed it, and `--dump-dom` hands the measures back.
CI installs Debian's chromium (see .ci/run); elsewhere the test skips when no browser is
installed.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import struct
import subprocess
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from segcli.cli import app
from segcli.views.html import BAR, ENTERED, HEAT, HIST

ROOT = Path(__file__).resolve().parent.parent
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB/RGBA non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 4 if ctype == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 255
        pixels.extend(tuple(line[i : i + 3]) for i in range(0, stride, bpp))  # type: ignore[misc]
        prev = line
    return width, height, pixels


def rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

# Measures each chart's labels where the browser laid them out, relative to their chart.
MEASURE = """<script>
const charts = {};
for (const svg of document.querySelectorAll("svg[id]")) {
  const box = svg.getBoundingClientRect();
  charts[svg.id] = {width: box.width, height: box.height, texts: []};
  for (const t of svg.querySelectorAll("text")) {
    const r = t.getBoundingClientRect();
    const group = t.closest("g");
    charts[svg.id].texts.push({
      cls: t.getAttribute("class") || "", text: t.textContent,
      axis: group ? group.getAttribute("class") || "" : "",
      x0: r.left - box.left, y0: r.top - box.top, x1: r.right - box.left, y1: r.bottom - box.top,
    });
  }
  const rects = [...svg.querySelectorAll("rect")];
  charts[svg.id].bars = rects.map(r => r.getBoundingClientRect().height);
}
const pre = document.createElement("pre");
pre.id = "layout";
pre.textContent = JSON.stringify(charts);
document.body.appendChild(pre);
</script>"""


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    return subprocess.run(
        [BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


def demo_report(tmp_path: Path, days: tuple[str, ...]) -> Path:
    proj = tmp_path / "demo"
    shutil.copytree(ROOT / "sample_data", proj / "sample_data")
    shutil.copy(ROOT / "segments.yaml", proj / "segments.yaml")
    spec = str(proj / "segments.yaml")
    runner = CliRunner()
    env = {"COLUMNS": "100", "NO_COLOR": "1"}
    for day in days:
        assert runner.invoke(app, ["run", "-c", spec, "--as-of", day], env=env).exit_code == 0
    html = tmp_path / "report.html"
    res = runner.invoke(app, ["report", "-c", spec, "--html", str(html)], env=env)
    assert res.exit_code == 0, res.output
    return html


def texts(chart: dict[str, Any], cls: str, axis: str | None = None) -> list[str]:
    return [
        t["text"]
        for t in chart["texts"]
        if t["cls"] == cls and (axis is None or axis in t["axis"].split())
    ]


def number(label: str) -> float:
    """A tick or value label back to its number (1,213 / 1.2k / 2.5)."""
    scale = {"k": 1e3, "M": 1e6}.get(label[-1:], 1)
    return float(label.rstrip("kM").replace(",", "")) * scale


@pytest.mark.skipif(BROWSER is None and not os.environ.get("CI"), reason="no chromium here")
def test_report_charts_have_axes_legends_and_unclipped_labels(tmp_path: Path) -> None:
    html = demo_report(tmp_path, ("2026-11-18", "2026-11-19", "2026-11-20"))
    page = html.read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = chromium(tmp_path, "--window-size=1200,2800", "--dump-dom", probe.as_uri()).stdout
    found = re.search(r'<pre id="layout">(.*?)</pre>', dom, flags=re.S)
    assert found, "the measuring script did not run"
    charts = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert set(charts) >= {"sizes", "runs", "changes", "overlap", "hist-engagement"}

    for name, chart in charts.items():
        # Nothing clipped: every label lies inside its chart.
        for t in chart["texts"]:
            assert t["x0"] >= -1 and t["y0"] >= -1, (name, t)
            assert t["x1"] <= chart["width"] + 1 and t["y1"] <= chart["height"] + 1, (name, t)
        # Tick labels of one axis do not overlap each other.
        for axis in ("x", "y"):
            ticks = [t for t in chart["texts"] if t["cls"] == "tick" and axis in t["axis"].split()]
            for a, b in itertools.pairwise(ticks):
                apart = a["x1"] <= b["x0"] + 0.5 or b["x1"] <= a["x0"] + 0.5
                apart = apart or a["y1"] <= b["y0"] + 0.5 or b["y1"] <= a["y0"] + 0.5
                assert apart, (name, a["text"], b["text"])

    sizes = charts["sizes"]
    assert texts(sizes, "axis-title") == ["members"]
    assert [number(v) for v in texts(sizes, "tick", "x")] == [0, 1000, 2000, 3000]
    assert "2,938" in texts(sizes, "value") and "newsletter" in texts(sizes, "label")

    runs = charts["runs"]
    assert texts(runs, "axis-title") == ["members", "run (as_of)"]
    assert texts(runs, "tick", "x") == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert [number(v) for v in texts(runs, "tick", "y")] == [0, 1000, 2000, 3000]
    legend = texts(runs, "legend-label")
    assert len(legend) == 8 and legend[0] == "newsletter (2,938)"

    # The first run (everyone entering every demo segment) is said in words, not drawn: the
    # bars of the later runs use the chart's height.
    n = len(yaml.safe_load((ROOT / "segments.yaml").read_text(encoding="utf-8"))["segments"])
    assert f"initial load of {n} new segment(s)" in page
    changes = charts["changes"]
    assert texts(changes, "legend-label") == ["entered (up)", "left (down)"]
    assert texts(changes, "tick", "x") == ["2026-11-19", "2026-11-20"]
    assert texts(changes, "axis-title") == ["contacts", "run (as_of)"]
    assert max(number(v) for v in texts(changes, "tick", "y")) < 1000
    assert max(changes["bars"]) > 40

    overlap = charts["overlap"]
    assert texts(overlap, "tick") == ["0", "0.25", "0.5", "0.75", "1"]
    assert texts(overlap, "axis-title") == ["Jaccard"]

    hist = charts["hist-engagement"]
    assert texts(hist, "axis-title") == ["contacts", "score"]
    assert texts(hist, "legend-label") == ["contacts per score bin", "sales-ready at 100"]
    assert [number(v) for v in texts(hist, "tick", "x")] == [0, 25, 50, 75, 100, 125, 150]
    assert len(texts(hist, "tick", "y")) >= 3
    # The counts over the bars add up to every contact.
    assert sum(number(v) for v in texts(hist, "value")) == 3000


@pytest.mark.skipif(BROWSER is None and not os.environ.get("CI"), reason="no chromium here")
def test_report_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    assert BROWSER is not None, "CI must install chromium (see .ci/run)"
    proj = tmp_path / "demo"
    shutil.copytree(ROOT / "sample_data", proj / "sample_data")
    shutil.copy(ROOT / "segments.yaml", proj / "segments.yaml")
    spec = str(proj / "segments.yaml")
    runner = CliRunner()
    env = {"COLUMNS": "100", "NO_COLOR": "1"}
    for day in ("2026-11-18", "2026-11-19", "2026-11-20"):
        assert runner.invoke(app, ["run", "-c", spec, "--as-of", day], env=env).exit_code == 0
    html = tmp_path / "report.html"
    res = runner.invoke(app, ["report", "-c", spec, "--html", str(html)], env=env)
    assert res.exit_code == 0, res.output
    shot = tmp_path / "report.png"
    t0 = time.perf_counter()
    subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            "--window-size=1200,2800",
            f"--screenshot={shot}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    seconds = time.perf_counter() - t0
    width, height, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (1200, 2800)
    counts = Counter(pixels)
    drawn = {
        "sizes bars": counts[rgb(BAR)],
        "entered bars": counts[rgb(ENTERED)],
        "heat map diagonal": counts[HEAT],
        "score histograms": counts[rgb(HIST)],
    }
    print(f"page {html.stat().st_size} bytes, screenshot in {seconds:.1f} s, pixels {drawn}")
    for chart, n in drawn.items():
        assert n > 200, f"{chart} not drawn ({n} pixels of its colour)"
