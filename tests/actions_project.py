"""A small project whose `mql` segment's members are chosen per night, for action tests."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from typer.testing import CliRunner, Result

from segcli.cli import app

ENV = {"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
HEAD = """\
version: 1
timezone: Europe/Berlin
sources:
  contacts: {path: contacts.csv, key: contact_id}
segments:
  everyone: {where: {field: contact_id, gte: 0}}
  mql:
    where: {field: stage, eq: mql}
"""


def write_spec(root: Path, on_enter: str = "", on_leave: str = "", extra: str = "") -> Path:
    """segments.yaml with `mql`'s on_enter/on_leave given as YAML flow lists."""
    text = HEAD
    if on_enter:
        text += f"    on_enter: {on_enter}\n"
    if on_leave:
        text += f"    on_leave: {on_leave}\n"
    (root / "segments.yaml").write_text(text + extra)
    return root / "segments.yaml"


def write_contacts(root: Path, mqls: Iterable[int], n: int = 20, gone: Iterable[int] = ()) -> None:
    """Contacts 1..n (minus `gone`); those in `mqls` have stage mql."""
    mql, skip = set(mqls), set(gone)
    lines = ["contact_id,email,first_name,stage,signed_up,seen_at"]
    for i in range(1, n + 1):
        if i in skip:
            continue
        stage = "mql" if i in mql else "lead"
        name = "Zoë" if i == 1 else f"Name{i}"
        month, day = 1 + i % 9, 1 + i % 9
        when = f"2026-0{month}-15,2026-11-0{day}T10:00:00Z"
        lines.append(f"{i},p{i}@example.com,{name},{stage},{when}")
    (root / "contacts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def cli(root: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run segcli in-process in `root`."""
    old = Path.cwd()
    os.chdir(root)
    try:
        return CliRunner().invoke(app, list(args), env={**ENV, **(env or {})})
    finally:
        os.chdir(old)
