"""Fault injection, data inputs: every broken export is exit 3 with a message naming the file,
the line (or row) and the value, no traceback, and nothing outside segcli's files changed."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from tests.faults.common import assert_clean, assert_untouched, invoke, tree

CONTACTS = "contact_id,name,signed_up\n1,Ann,2026-01-05\n2,Bob,2026-02-10\n3,Cy,2026-03-15\n"
PURCHASES = "contact_id,purchased_at\n1,2026-06-01T10:00:00Z\n3,2026-06-02T11:00:00Z\n"
SPEC = """version: 1
sources:
  contacts:
    path: contacts.csv
    key: contact_id
  purchases:
    path: PURCHASES
    key: contact_id
    time: purchased_at
segments:
  new: {where: {field: signed_up, gte: 2026-03-01}}
  buyers: {where: {event: {source: purchases}}}
"""


def _write(root: Path, contacts: str | bytes = CONTACTS, purchases: str = "purchases.csv") -> None:
    (root / "segments.yaml").write_text(SPEC.replace("PURCHASES", purchases))
    data = contacts if isinstance(contacts, bytes) else contacts.encode()
    (root / "contacts.csv").write_bytes(data)
    if not (root / purchases).exists() and "*" not in purchases:
        (root / purchases).write_text(PURCHASES)


def _parquet(root: Path, name: str, keys: list[object]) -> None:
    at = pl.lit("2026-06-01T10:00:00Z").str.to_datetime(time_zone="UTC")
    pl.DataFrame({"contact_id": keys}).with_columns(at.alias("purchased_at")).write_parquet(
        root / name
    )


def _parts(root: Path) -> str:
    (root / "parts").mkdir()
    _parquet(root, "parts/a.parquet", [1])
    _parquet(root, "parts/b.parquet", ["3"])
    return "parts/*.parquet"


def _long_purchases(root: Path, short: str, name: str = "purchases.csv") -> str:
    """Purchases with 12,000 rows, past the sampled head, whose 11,000th row is `short`."""
    rows = ["1,2026-06-01T10:00:00Z"] * 12_000
    rows[10_999] = short
    (root / name).write_text("contact_id,purchased_at\n" + "\n".join(rows) + "\n")
    return name


def _long_contacts(short: str) -> str:
    rows = [f"{i},P{i},2026-01-05" for i in range(1, 12_001)]
    rows[10_999] = short
    return "contact_id,name,signed_up\n" + "\n".join(rows) + "\n"


CASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "non-ISO date early": (
        lambda r: _write(r, CONTACTS.replace("2026-02-10", "02/10/2026")),
        ("contacts.csv:3", "'02/10/2026'", "columns: {signed_up: str}"),
    ),
    "quoted newline before a bad value": (
        lambda r: _write(
            r, 'contact_id,name,signed_up\n1,"A\nB",2026-01-05\n2,C,nope\n3,D,2026-01-07\n'
        ),
        ("contacts.csv:4", "'nope'"),
    ),
    "header-only contacts": (
        lambda r: _write(r, "contact_id,name,signed_up\n"),
        ("contacts.csv", "no rows"),
    ),
    "text keys against integer contacts": (
        lambda r: (
            (r / "purchases.csv").write_text(PURCHASES.replace("\n3,", "\nC-1844,")),
            _write(r),
        ),
        ("purchases.csv:3", "'C-1844'", "contacts key is int"),
    ),
    "a key written 2.0": (
        lambda r: _write(r, CONTACTS.replace("\n2,", "\n2.0,")),
        ("contacts.csv:3", "'2.0'"),
    ),
    "ragged row": (
        lambda r: _write(r, CONTACTS.replace("Bob,2026-02-10", "Bob,2026-02-10,x")),
        ("contacts.csv:3", "4 fields", "header has 3"),
    ),
    "short event row past the sampled head": (
        lambda r: _write(r, purchases=_long_purchases(r, "1")),
        ("purchases.csv:11001", "1 fields", "header has 2"),
    ),
    "short row with a quoted delimiter past the sampled head": (
        lambda r: _write(r, _long_contacts('11000,"Doe, Jane"')),
        ("contacts.csv:11001", "2 fields", "header has 3"),
    ),
    "short gzipped row past the sampled head": (
        lambda r: (
            _long_purchases(r, "3", "p.csv"),
            (r / "p.csv.gz").write_bytes(gzip.compress((r / "p.csv").read_bytes())),
            (r / "p.csv").unlink(),
            _write(r, purchases="p.csv.gz"),
        ),
        ("p.csv.gz:11001", "1 fields", "header has 2"),
    ),
    "semicolon export": (
        lambda r: _write(r, CONTACTS.replace(",", ";")),
        ("contacts.csv:1", 'delimiter: ";"'),
    ),
    "latin-1 export": (
        lambda r: _write(r, CONTACTS.replace("Bob", "Zoë").encode("latin-1")),
        ("contacts.csv:3", "not UTF-8", "encoding: latin-1"),
    ),
    "Parquet parts that disagree": (
        lambda r: _write(r, purchases=_parts(r)),
        ("parts/b.parquet", "column 'contact_id' is String", "parts/a.parquet"),
    ),
    "corrupt Parquet": (
        lambda r: (
            (r / "p.parquet").write_bytes(b"PAR1 truncated"),
            _write(r, purchases="p.parquet"),
        ),
        ("p.parquet", "not a readable Parquet file"),
    ),
    "corrupt gzip": (
        lambda r: (
            (r / "p.csv.gz").write_bytes(gzip.compress(PURCHASES.encode())[:30]),
            _write(r, purchases="p.csv.gz"),
        ),
        ("p.csv.gz",),
    ),
    "empty file": (
        lambda r: _write(r, b""),
        ("contacts.csv", "empty file"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_broken_exports_are_data_errors(tmp_path: Path, case: str) -> None:
    setup, needles = CASES[case]
    setup(tmp_path)
    before = tree(tmp_path)
    result = invoke(["run", "--as-of", "2026-06-30"], tmp_path)
    assert_clean(result, 3, *needles)
    assert "This error occurred" not in result.output
    assert_untouched(before, tmp_path, own=(".segcli", "out"))
    assert not (tmp_path / "out").exists()


def test_empty_last_cells_past_the_sampled_head_are_nulls_not_short_rows(tmp_path: Path) -> None:
    """The short-row check must not mistake empty last cells, or a quoted field that spans
    lines, for missing fields: those files run, and the empty cells are nulls."""
    rows = [f"{i},P{i}," + ("2026-01-05" if i % 2 else "") for i in range(1, 12_001)]
    rows[10_999] = '11000,"two\nlines, one field",2026-03-05'
    (tmp_path / "segments.yaml").write_text(SPEC.replace("PURCHASES", "purchases.csv"))
    (tmp_path / "contacts.csv").write_text("contact_id,name,signed_up\n" + "\n".join(rows) + "\n")
    (tmp_path / "purchases.csv").write_text(PURCHASES)
    result = invoke(["run", "--as-of", "2026-06-30"], tmp_path)
    assert result.exit_code == 0, result.output
    members = pl.read_parquet(tmp_path / "out" / "segments" / "new.parquet")
    assert members["contact_id"].to_list() == [11000]
    scores = pl.read_parquet(tmp_path / "out" / "segments" / "buyers.parquet")
    assert sorted(scores["contact_id"].to_list()) == [1, 3]
