"""Render `segcli report --html` in a real headless Chromium and check every chart is drawn.

The page is screenshotted and the PNG decoded here (no imaging dependency): each chart fills
its shapes with its own colour, so counting pixels of that exact colour tells whether the
browser drew it. CI installs Debian's chromium (see .ci/run); elsewhere the test skips when
no browser is installed.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
import zlib
from collections import Counter
from pathlib import Path

import pytest
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
