"""CONTRIBUTING.md names files and functions that exist: the recipe cannot rot silently."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_named_file_and_function_exists() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:segcli|tests|engines|docs)/[\w/]+\.(?:py|md))`", text))
    assert paths, "CONTRIBUTING.md names the files to edit"
    sources = []
    for p in paths:
        full = ROOT / p if (ROOT / p).exists() else ROOT / "segcli" / p
        assert full.exists(), p
        sources.append(full.read_text(encoding="utf-8"))
    blob = "\n".join(sources)
    examples = {"not_starts_with", "median"}
    for name in set(re.findall(r"`(_?[a-z_]+|[A-Z_]{4,})`(?: in|\))", text)) - examples:
        assert name in blob, f"{name} is named in CONTRIBUTING.md but defined nowhere it says"
