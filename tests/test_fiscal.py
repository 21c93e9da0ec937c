"""Fiscal periods (SPEC §2.6): `fiscal_year_start` and this/last fiscal quarter/year, in the
project timezone (DST-correct), `this_*` ending at as_of."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import compute
from reference import Reference
from reference import period_bounds as ref_bounds
from test_validate import DATA, diagnostics, segments

from segcli.spec import model as m
from segcli.spec.timeutil import period_bounds
from segcli.views.words import describe_test

BERLIN = "Europe/Berlin"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(BERLIN)).astimezone(UTC)  # type: ignore[misc]


AS_OF = local(2026, 11, 20, 12)
BOUNDS = [
    # (start month, period, start, end or None for as_of)
    (4, "this_fiscal_year", local(2026, 4, 1), None),  # FY2027: 2026-04-01 ... 2027-03-31
    (4, "last_fiscal_year", local(2025, 4, 1), local(2026, 4, 1)),
    (4, "this_fiscal_quarter", local(2026, 10, 1), None),  # Q3 of FY2027
    (4, "last_fiscal_quarter", local(2026, 7, 1), local(2026, 10, 1)),
    (10, "this_fiscal_year", local(2026, 10, 1), None),  # FY2027: 2026-10-01 ... 2027-09-30
    (10, "last_fiscal_year", local(2025, 10, 1), local(2026, 10, 1)),
    (10, "this_fiscal_quarter", local(2026, 10, 1), None),
    (10, "last_fiscal_quarter", local(2026, 7, 1), local(2026, 10, 1)),
    (1, "this_fiscal_year", local(2026, 1, 1), None),  # default: the calendar year
    (1, "last_fiscal_quarter", local(2026, 7, 1), local(2026, 10, 1)),
    (12, "this_fiscal_quarter", local(2026, 9, 1), None),
    (12, "last_fiscal_year", local(2024, 12, 1), local(2025, 12, 1)),
]


@pytest.mark.parametrize(("start", "name", "begin", "end"), BOUNDS)
def test_fiscal_bounds(start: int, name: str, begin: datetime, end: datetime | None) -> None:
    want = (begin, end or AS_OF, end is None)
    assert period_bounds(m.Period(name, start), AS_OF, BERLIN) == want
    assert ref_bounds(name, AS_OF, BERLIN, start) == want


def test_fiscal_bounds_are_local_midnights_across_dst() -> None:
    """April 1 is CEST (22:00 UTC the day before), October 1 too, January 1 CET (23:00 UTC)."""
    s, e, _ = period_bounds(m.Period("last_fiscal_quarter", 4), local(2026, 4, 2, 9), BERLIN)
    assert (s, e) == (datetime(2025, 12, 31, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC))


SOURCES = """
version: 1
timezone: Europe/Berlin
fiscal_year_start: {start}
sources:
  contacts: {{path: contacts.csv, key: id}}
"""
CONTACTS = [
    {"id": 1, "closed": local(2026, 3, 31, 23, 59, 59)},  # last second of FY2026 (start 4)
    {"id": 2, "closed": local(2026, 4, 1)},  # first instant of FY2027
    {"id": 3, "closed": local(2026, 9, 30, 23, 59, 59)},  # last second of FY2026 (start 10)
    {"id": 4, "closed": local(2026, 10, 1)},
    {"id": 5, "closed": local(2026, 11, 20, 12, 0, 1)},  # after as_of
    {"id": 6, "closed": None},
]
CASES = [
    (4, "this_fiscal_year", {2, 3, 4}),
    (4, "last_fiscal_year", {1}),
    (4, "this_fiscal_quarter", {4}),
    (4, "last_fiscal_quarter", {3}),
    (10, "this_fiscal_year", {4}),
    (10, "last_fiscal_year", {1, 2, 3}),
    (10, "last_fiscal_quarter", {3}),
]


@pytest.mark.parametrize(("start", "period", "expected"), CASES)
def test_fiscal_periods_match(
    make_project: Any, start: int, period: str, expected: set[int]
) -> None:
    spec = (
        SOURCES.format(start=start)
        + f"segments:\n  s: {{where: {{field: closed, during: {period}}}}}\n"
    )
    p = make_project(spec, {"contacts.csv": CONTACTS})
    assert p.spec.fiscal_year_start == start
    got = compute(p, AS_OF)
    ref = Reference(p.spec, CONTACTS, {}, AS_OF)
    assert ref.members("s") == expected
    assert got.members["s"] == expected


def test_fiscal_periods_in_words() -> None:
    test = m.Test((m.Op("during", m.Period("this_fiscal_year", 4)),))
    assert describe_test("closed", test) == (
        "closed falls in this fiscal year (fiscal years start on April 1)"
    )


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


@pytest.mark.parametrize("value", ["13", "0", "april", "4.5"])
def test_bad_fiscal_year_start(spec_dir: Path, value: str) -> None:
    text = segments("  a: {where: {all: []}}\n").replace(
        "version: 1\n", f"version: 1\nfiscal_year_start: {value}\n"
    )
    [d] = diagnostics(spec_dir, text)
    assert (d.code, d.line, d.col) == ("S006", 2, 20)
    assert d.message.startswith("fiscal_year_start must be a month number 1-12")
