"""Calendar durations `mo` and `y` (SPEC §2.6): steps on the local date-time, clamped to the
month's end, in every window and operator; `h`, `d` and `w` stay exact lengths."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import compute
from reference import Reference, back
from test_validate import DATA, diagnostics, segments

from segcli.spec import model as m
from segcli.spec.schema import json_schema
from segcli.spec.timeutil import before, parse_duration

BERLIN = "Europe/Berlin"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(BERLIN))  # type: ignore[misc]


def dur(text: str) -> m.Duration:
    d = parse_duration(text)
    assert d is not None
    return d


STEPS = [
    # (as_of, duration, expected): month ends clamp, the local time of day is kept
    (local(2026, 3, 31, 10), "1mo", local(2026, 2, 28, 10)),
    (local(2026, 5, 31, 23, 59), "1mo", local(2026, 4, 30, 23, 59)),
    (local(2028, 3, 31, 10), "1mo", local(2028, 2, 29, 10)),  # leap year
    (local(2028, 2, 29, 12), "1y", local(2027, 2, 28, 12)),
    (local(2026, 8, 31, 10), "6mo", local(2026, 2, 28, 10)),
    (local(2026, 1, 15, 10), "13mo", local(2024, 12, 15, 10)),
    (local(2026, 1, 31, 0), "2y", local(2024, 1, 31, 0)),
    # across DST: the same local time, so 1mo is not a whole number of days in UTC
    (local(2026, 4, 15, 12), "1mo", local(2026, 3, 15, 12)),  # CEST -> CET: 11:00 UTC
    (local(2026, 11, 15, 12), "1mo", local(2026, 10, 15, 12)),  # CET -> CEST: 10:00 UTC
    # h, d and w stay exact across the spring change (2026-03-29 02:00 CET -> 03:00 CEST)
    (local(2026, 3, 30, 12), "2d", local(2026, 3, 28, 11)),
    (local(2026, 3, 29, 12), "12h", local(2026, 3, 28, 23)),
    (local(2026, 4, 1, 12), "1w", local(2026, 3, 25, 11)),
]


@pytest.mark.parametrize(("at", "text", "want"), STEPS)
def test_steps_back(at: datetime, text: str, want: datetime) -> None:
    at_utc = at.astimezone(UTC)
    assert before(at_utc, dur(text), BERLIN) == want
    assert back(at_utc, dur(text), BERLIN) == want


def test_a_skipped_local_time_moves_forward_by_the_gap() -> None:
    """2026-04-29 02:30 minus 1mo is 2026-03-29 02:30, which Berlin skips: it reads as 03:30."""
    at = local(2026, 4, 29, 2, 30).astimezone(UTC)
    assert before(at, dur("1mo"), BERLIN) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert back(at, dur("1mo"), BERLIN) == before(at, dur("1mo"), BERLIN)


SOURCES = """
version: 1
timezone: Europe/Berlin
sources:
  contacts: {path: contacts.csv, key: id}
  purchases: {path: purchases.csv, key: cid, time: at}
"""
AS_OF = local(2026, 3, 31, 10).astimezone(UTC)  # minus 1mo: 2026-02-28 10:00 CET
CONTACTS = [
    {"id": 1, "paid": local(2026, 2, 28, 10).astimezone(UTC)},  # exactly at the bound
    {"id": 2, "paid": local(2026, 2, 28, 9, 59, 59).astimezone(UTC)},  # one second before
    {"id": 3, "paid": local(2025, 9, 30, 10).astimezone(UTC)},  # exactly 6mo before
    {"id": 4, "paid": None},
    {"id": 5, "paid": local(2025, 3, 31, 10).astimezone(UTC)},  # exactly 1y before
    {"id": 6, "paid": local(2026, 2, 28, 10, 0, 1).astimezone(UTC)},  # one second after
]
PURCHASES = [
    {"cid": c["id"], "at": c["paid"], "amount": 10.0} for c in CONTACTS if c["paid"] is not None
]
CASES = [
    ("{field: paid, within: 1mo}", {1, 6}),
    ("{field: paid, older_than: 1mo}", {2, 3, 5}),
    ("{field: paid, within: 6mo}", {1, 2, 3, 6}),
    ("{field: paid, older_than: 6mo}", {5}),
    ("{field: paid, within: 1y}", {1, 2, 3, 5, 6}),
    ("{field: paid, older_than: 1y}", set()),
    ("{field: paid, gte: '-1mo'}", {1, 6}),
    ("{field: paid, lt: '-6mo'}", {5}),
    ("{field: paid, between: ['-1y', '-6mo']}", {3, 5}),
    ("{event: {source: purchases, within: 6mo}}", {1, 2, 3, 6}),
    ("{event: {source: purchases, within: 1mo, count: {eq: 0}}}", {2, 3, 4, 5}),
    ("{event: {source: purchases, last: {within: 1mo}}}", {1, 6}),
    ("{event: {source: purchases, first: {older_than: 1y, include_missing: true}}}", {4}),
]


@pytest.mark.parametrize(("cond", "expected"), CASES)
def test_calendar_windows_at_month_end(make_project: Any, cond: str, expected: set[int]) -> None:
    spec = SOURCES + f"segments:\n  s: {{where: {cond}}}\n"
    p = make_project(spec, {"contacts.csv": CONTACTS, "purchases.csv": PURCHASES})
    got = compute(p, AS_OF)
    ref = Reference(p.spec, CONTACTS, {"purchases": PURCHASES}, AS_OF)
    assert ref.members("s") == expected
    assert got.members["s"] == expected


def test_score_change_over_a_calendar_month(make_project: Any) -> None:
    spec = SOURCES + (
        "scoring:\n  e: {rules: [{name: p, points: 10, each: true, "
        "when: {event: {source: purchases}}}]}\n"
        "segments:\n  grew: {where: {score_change: {model: e, over: 1mo, gt: 0}}}\n"
    )
    p = make_project(spec, {"contacts.csv": CONTACTS, "purchases.csv": PURCHASES})
    # 1mo before as_of is 2026-02-28 10:00 local: contact 1's row at that instant is already
    # visible then; only contact 6's row, one second later, is new.
    got = compute(p, AS_OF)
    ref = Reference(p.spec, CONTACTS, {"purchases": PURCHASES}, AS_OF)
    assert got.members["grew"] == ref.members("grew") == {6}


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_half_life_must_be_an_exact_length(spec_dir: Path) -> None:
    text = segments("  a: {where: {all: []}}\n") + (
        "scoring:\n  e:\n    rules: [{name: r, points: 1, when: {all: []}}]\n"
        "    decay: {half_life: 1mo}\n"
    )
    diags = diagnostics(spec_dir, text)
    assert [(d.code, d.message, d.help) for d in diags] == [
        (
            "S006",
            "half_life must be an exact length, got the calendar step '1mo'",
            "use h, d or w (a month has no fixed length), e.g. 30d",
        )
    ]


def test_bad_calendar_durations_are_reported(spec_dir: Path) -> None:
    text = segments("  a: {where: {event: {source: email, within: 6 months}}}\n")
    [d] = diagnostics(spec_dir, text)
    assert (d.code, d.help) == (
        "S006",
        "write <int><unit> with unit h, d, w, mo or y, e.g. 30d or 6mo",
    )


def test_schema_accepts_calendar_units() -> None:
    import re

    pattern = json_schema()["$defs"]["condition"]["anyOf"][3]["properties"]["within"]["pattern"]
    assert all(re.match(pattern, t) for t in ("6mo", "1y", "30d"))
    assert not re.match(pattern, "6m")
