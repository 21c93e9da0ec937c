"""One test per edge case of SPEC §2: nulls, empty lists, zero-row contacts, window
boundaries, DST, timestamp formats, same-row `where`, pooling, dedupe, relation one,
ignore_case, matches, buckets, top ties, manual overrides and segment references."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import compute
from reference import Reference, bucket_of

from segcli import api

Make = Callable[..., api.Project]
BERLIN = "Europe/Berlin"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


AS_OF = utc(2026, 4, 1, 10)  # Wednesday 12:00 in Berlin

CONTACTS = [
    {"id": 1, "country": "DE", "email": "ann@example.com", "signed_up": utc(2026, 3, 1)},
    {"id": 2, "country": None, "email": None, "signed_up": None},
    {"id": 3, "country": "US", "email": "Bob@Example.org", "signed_up": utc(2025, 6, 1)},
]
SOURCES = """
version: 1
timezone: Europe/Berlin
sources:
  contacts: {path: contacts.csv, key: id}
  email: {path: email.csv, key: contact_id, time: occurred_at, type: event_type}
"""
EMAIL = [
    {
        "contact_id": 1,
        "occurred_at": utc(2026, 3, 20),
        "event_type": "click",
        "campaign": "spring",
        "amount": 1.0,
    },
]

EMAIL_COLUMNS = ("contact_id", "occurred_at", "event_type", "campaign", "amount")


def members(
    make: Make,
    segments: dict[str, str],
    *,
    contacts: list[dict[str, Any]] | None = None,
    email: list[dict[str, Any]] | None = None,
    as_of: datetime = AS_OF,
    sources: str = SOURCES,
    files: dict[str, Any] | None = None,
) -> dict[str, set[Any]]:
    """Write a project with `segments` (name -> condition YAML), compute, return members.

    Every answer is also checked against the reference evaluator, so each edge case pins
    both the compiled plan and the reference to the expected sets.
    """
    body = "\n".join(f"  {n}: {{where: {c}}}" for n, c in segments.items())
    rows = [{c: r.get(c) for c in EMAIL_COLUMNS} for r in (email or EMAIL)]
    data = {"contacts.csv": contacts or CONTACTS, "email.csv": rows} | (files or {})
    project = make(sources + "segments:\n" + body + "\n", data)
    got = compute(project, as_of)
    ref = Reference(
        project.spec,
        data["contacts.csv"],
        {"email": data["email.csv"]},
        as_of,
    ).evaluate()
    assert got.members == ref.members, "compiled plan and reference disagree"
    return got.members


# ---------------------------------------------------------------- the null rule


def test_ne_matches_null_like_not_eq(make_project: Make) -> None:
    got = members(
        make_project,
        {"ne": "{field: country, ne: US}", "not_eq": "{not: {field: country, eq: US}}"},
    )
    assert got["ne"] == got["not_eq"] == {1, 2}


def test_not_in_matches_null(make_project: Make) -> None:
    got = members(
        make_project,
        {"not_in": "{field: country, not_in: [US]}", "in": "{field: country, in: [DE, US]}"},
    )
    assert got == {"not_in": {1, 2}, "in": {1, 3}}


def test_not_contains_matches_null(make_project: Make) -> None:
    got = members(
        make_project,
        {
            "not_contains": "{field: email, not_contains: example}",
            "contains": "{field: email, contains: example}",
        },
    )
    assert got == {"not_contains": {2, 3}, "contains": {1}}


@pytest.mark.parametrize(
    ("field", "op"),
    [
        ("country", "eq: DE"),
        ("country", "in: [DE]"),
        ("email", "contains: e"),
        ("email", "starts_with: a"),
        ("email", "ends_with: m"),
        ("email", "matches: '.*'"),
    ],
)
def test_positive_string_operators_fail_on_null(make_project: Make, field: str, op: str) -> None:
    got = members(make_project, {"s": f"{{field: {field}, {op}}}"})
    assert 2 not in got["s"]
    assert got["s"], "the operator should match some non-null value"


@pytest.mark.parametrize(
    "op",
    [
        "gt: 2000-01-01",
        "between: [2000-01-01, 2100-01-01]",
        "within: 5000w",
        "older_than: 1h",
        "during: this_year",
        "lte: '-1h'",
    ],
)
def test_positive_time_operators_fail_on_null(make_project: Make, op: str) -> None:
    got = members(make_project, {"s": f"{{field: signed_up, {op}}}"})
    assert 2 not in got["s"]
    assert got["s"], "the operator should match some non-null value"


def test_is_null_tells_null_apart(make_project: Make) -> None:
    got = members(
        make_project,
        {"null": "{field: country, is_null: true}", "set": "{field: country, is_null: false}"},
    )
    assert got == {"null": {2}, "set": {1, 3}}


def test_include_missing_true_lets_null_match(make_project: Make) -> None:
    got = members(
        make_project,
        {
            "eq": "{field: country, eq: DE, include_missing: true}",
            "gt": "{field: signed_up, gt: 2026-01-01, include_missing: true}",
        },
    )
    assert got == {"eq": {1, 2}, "gt": {1, 2}}


def test_include_missing_false_overrides_negative_operators(make_project: Make) -> None:
    got = members(
        make_project,
        {
            "ne": "{field: country, ne: US, include_missing: false}",
            "not_in": "{field: country, not_in: [US], include_missing: false}",
        },
    )
    assert got == {"ne": {1}, "not_in": {1}}


# ---------------------------------------------------------------- empty lists


def test_empty_all_is_true_and_empty_any_is_false(make_project: Make) -> None:
    got = members(
        make_project,
        {"all": "{all: []}", "any": "{any: []}", "not_any": "{not: {any: []}}"},
    )
    assert got == {"all": {1, 2, 3}, "any": set(), "not_any": {1, 2, 3}}


def test_top_percent_of_an_always_true_rule_counts_every_contact(make_project: Make) -> None:
    """Regression: `all: []` compiled to a scalar literal, so `top: {percent}` saw 1 match."""
    contacts = [{"id": i, "age": i * 10} for i in range(1, 5)]
    project = make_project(
        SOURCES + "segments:\n  half: {where: {all: []}, top: {percent: 50, by: {field: age}}}\n",
        {"contacts.csv": contacts, "email.csv": EMAIL},
    )
    assert compute(project, AS_OF).members["half"] == {3, 4}


# ---------------------------------------------------------------- zero-row contacts


def test_count_eq_0_matches_contacts_with_no_rows(make_project: Make) -> None:
    got = members(
        make_project,
        {
            "did_not": "{event: {source: email, count: {eq: 0}}}",
            "sum0": "{event: {source: email, sum: {column: amount, eq: 0}}}",
            "distinct0": "{event: {source: email, distinct: {column: campaign, eq: 0}}}",
            "days0": "{event: {source: email, active_days: {eq: 0}}}",
        },
    )
    assert got == {"did_not": {2, 3}, "sum0": {2, 3}, "distinct0": {2, 3}, "days0": {2, 3}}


@pytest.mark.parametrize(
    ("agg", "low"),
    [
        ("avg: {column: amount,", "lt: 0"),
        ("min: {column: amount,", "lt: 0"),
        ("max: {column: amount,", "lt: 0"),
        ("last: {", "lt: 2000-01-01"),
        ("first: {", "lt: 2000-01-01"),
    ],
)
def test_aggregates_of_no_rows_are_null(make_project: Make, agg: str, low: str) -> None:
    got = members(
        make_project,
        {
            "null": f"{{event: {{source: email, {agg} is_null: true}}}}}}",
            "set": f"{{event: {{source: email, {agg} is_null: false}}}}}}",
            "missing": f"{{event: {{source: email, {agg} {low}, include_missing: true}}}}}}",
        },
    )
    assert got == {"null": {2, 3}, "set": {1}, "missing": {2, 3}}


# ---------------------------------------------------------------- window boundaries


def test_within_includes_a_row_exactly_at_as_of_minus_d(make_project: Make) -> None:
    email = [
        {"contact_id": 1, "occurred_at": AS_OF - timedelta(days=7), "event_type": "click"},
        {"contact_id": 3, "occurred_at": AS_OF - timedelta(days=7, seconds=1)},
        {"contact_id": 2, "occurred_at": AS_OF, "event_type": "click"},
    ]
    got = members(make_project, {"w": "{event: {source: email, within: 7d}}"}, email=email)
    assert got["w"] == {1, 2}


def test_older_than_excludes_the_boundary_instant(make_project: Make) -> None:
    contacts = [
        {"id": 1, "signed_up": AS_OF - timedelta(days=30)},
        {"id": 2, "signed_up": AS_OF - timedelta(days=30, seconds=1)},
    ]
    got = members(
        make_project,
        {"old": "{field: signed_up, older_than: 30d}", "new": "{field: signed_up, within: 30d}"},
        contacts=contacts,
    )
    assert got == {"old": {2}, "new": {1}}


def test_relative_times_are_as_of_minus_the_duration(make_project: Make) -> None:
    contacts = [
        {"id": 1, "signed_up": AS_OF - timedelta(weeks=2)},
        {"id": 2, "signed_up": AS_OF - timedelta(weeks=2, seconds=1)},
        {"id": 3, "signed_up": AS_OF - timedelta(hours=36)},
    ]
    got = members(
        make_project,
        {
            "gte": "{field: signed_up, gte: '-2w'}",
            "gt": "{field: signed_up, gt: '-14d'}",
            "between": "{field: signed_up, between: ['-2d', '-36h']}",
        },
        contacts=contacts,
    )
    assert got == {"gte": {1, 3}, "gt": {3}, "between": {3}}


def test_durations_are_exact_lengths_across_dst(make_project: Make) -> None:
    """`1d` is 24 h even when the local day is 23 h long (Berlin, 2026-03-29)."""
    as_of = utc(2026, 3, 29, 12)
    contacts = [
        {"id": 1, "signed_up": utc(2026, 3, 28, 12)},  # exactly 24 h before
        {"id": 2, "signed_up": utc(2026, 3, 28, 11, 30)},  # same local clock time, 24.5 h
    ]
    got = members(
        make_project, {"d": "{field: signed_up, within: 1d}"}, contacts=contacts, as_of=as_of
    )
    assert got["d"] == {1}


def test_future_rows_are_invisible(make_project: Make) -> None:
    email = [
        {"contact_id": 1, "occurred_at": AS_OF + timedelta(seconds=1), "amount": 5.0},
        {"contact_id": 3, "occurred_at": AS_OF - timedelta(days=1), "amount": 1.0},
        {"contact_id": 3, "occurred_at": AS_OF + timedelta(days=1), "amount": 100.0},
    ]
    got = members(
        make_project,
        {
            "any_row": "{event: {source: email}}",
            "big_sum": "{event: {source: email, sum: {column: amount, gt: 1}}}",
            "last_recent": "{event: {source: email, last: {within: 2d}}}",
        },
        email=email,
    )
    assert got == {"any_row": {3}, "big_sum": set(), "last_recent": {3}}


def test_orphan_rows_are_ignored(make_project: Make) -> None:
    email = [
        {"contact_id": 99, "occurred_at": AS_OF - timedelta(days=1)},
        {"contact_id": 1, "occurred_at": AS_OF - timedelta(days=1)},
    ]
    got = members(
        make_project,
        {"did": "{event: {source: email}}", "did_not": "{event: {source: email, count: {eq: 0}}}"},
        email=email,
    )
    assert got == {"did": {1}, "did_not": {2, 3}}


# ---------------------------------------------------------------- calendar periods and DST


def test_yesterday_after_spring_change_is_23_hours(make_project: Make) -> None:
    """On 2026-03-30 in Berlin, yesterday is [03-28T23:00Z, 03-29T22:00Z): 23 hours."""
    as_of = utc(2026, 3, 30, 10)
    times = {
        1: utc(2026, 3, 28, 22, 59, 59),  # Saturday 23:59:59 local: before
        2: utc(2026, 3, 28, 23, 0, 0),  # Sunday 00:00 local: first instant
        3: utc(2026, 3, 29, 21, 59, 59),  # Sunday 23:59:59 CEST: last instant
        4: utc(2026, 3, 29, 22, 0, 0),  # Monday 00:00 CEST: today
    }
    email = [{"contact_id": k, "occurred_at": t} for k, t in times.items()]
    contacts = [{"id": k} for k in times]
    got = members(
        make_project,
        {"y": "{event: {source: email, during: yesterday}}"},
        contacts=contacts,
        email=email,
        as_of=as_of,
    )
    assert got["y"] == {2, 3}
    assert times[4] - times[2] == timedelta(hours=23)


def test_last_week_across_autumn_change_is_169_hours(make_project: Make) -> None:
    """Week of 2026-10-19 in Berlin: Monday 00:00 CEST to Monday 00:00 CET is 169 hours."""
    as_of = utc(2026, 10, 27, 10)
    start, end = utc(2026, 10, 18, 22), utc(2026, 10, 25, 23)
    times = {
        1: start - timedelta(seconds=1),
        2: start,
        3: end - timedelta(seconds=1),
        4: end,
    }
    email = [{"contact_id": k, "occurred_at": t} for k, t in times.items()]
    contacts = [{"id": k} for k in times]
    got = members(
        make_project,
        {"lw": "{event: {source: email, during: last_week}}"},
        contacts=contacts,
        email=email,
        as_of=as_of,
    )
    assert got["lw"] == {2, 3}
    assert end - start == timedelta(hours=169)


def test_current_periods_end_at_as_of_inclusive(make_project: Make) -> None:
    contacts = [
        {"id": 1, "signed_up": AS_OF},
        {"id": 2, "signed_up": AS_OF + timedelta(seconds=1)},
        {"id": 3, "signed_up": utc(2026, 3, 31, 22)},  # local midnight April 1st
        {"id": 4, "signed_up": utc(2026, 3, 31, 21, 59, 59)},
    ]
    got = members(
        make_project,
        {
            "today": "{field: signed_up, during: today}",
            "month": "{field: signed_up, during: this_month}",
            "quarter": "{field: signed_up, during: this_quarter}",
            "last_month": "{field: signed_up, during: last_month}",
        },
        contacts=contacts,
    )
    assert got == {"today": {1, 3}, "month": {1, 3}, "quarter": {1, 3}, "last_month": {4}}


def test_dates_are_compared_as_their_local_midnight(make_project: Make) -> None:
    sources = SOURCES.replace(
        "contacts: {path: contacts.csv, key: id}",
        "contacts: {path: contacts.csv, key: id, columns: {birthday: date}}",
    )
    contacts = [
        {"id": 1, "birthday": "2026-04-01"},  # today, local midnight = 03-31T22:00Z
        {"id": 2, "birthday": "2026-03-31"},
        {"id": 3, "birthday": "2026-03-25"},  # local midnight is 7 d 12 h before as_of
    ]
    project = make_project(
        sources
        + "segments:\n"
        + "  today: {where: {field: birthday, during: today}}\n"
        + "  week: {where: {field: birthday, within: 7d}}\n"
        + "  eq: {where: {field: birthday, eq: 2026-03-31}}\n",
        {"contacts.csv": contacts, "email.csv": EMAIL},
    )
    got = compute(project, AS_OF).members
    assert got == {"today": {1}, "week": {1, 2}, "eq": {2}}


def test_naive_aware_and_offset_timestamps_are_the_same_instant(make_project: Make) -> None:
    """Naive CSV times are Berlin time; Z, +00:00 and +01:00 name the same instant."""
    contacts = [
        {"id": 1, "signed_up": "2026-03-10T10:00:00"},
        {"id": 2, "signed_up": "2026-03-10T09:00:00Z"},
        {"id": 3, "signed_up": "2026-03-10T10:00:00+01:00"},
        {"id": 4, "signed_up": "2026-03-10 09:00:00+00:00"},
        {"id": 5, "signed_up": "2026-03-10T09:00:00"},  # naive: 08:00Z, an hour earlier
    ]
    project = make_project(
        SOURCES
        + "segments:\n"
        + "  at: {where: {field: signed_up, eq: '2026-03-10T09:00:00Z'}}\n"
        + "  naive_literal: {where: {field: signed_up, gte: 2026-03-10T10:00:00}}\n",
        {"contacts.csv": contacts, "email.csv": EMAIL},
    )
    got = compute(project, AS_OF).members
    assert got == {"at": {1, 2, 3, 4}, "naive_literal": {1, 2, 3, 4}}


def test_naive_time_in_the_repeated_autumn_hour_is_the_first_one(make_project: Make) -> None:
    """2026-10-25 02:30 happens twice in Berlin; segcli reads the earlier (CEST, 00:30Z).

    SPEC §2 only says naive times are in the project timezone; this pins the choice.
    """
    contacts = [{"id": 1, "signed_up": "2026-10-25T02:30:00"}]
    project = make_project(
        SOURCES
        + "segments:\n"
        + "  first: {where: {field: signed_up, eq: '2026-10-25T00:30:00Z'}}\n"
        + "  literal: {where: {field: signed_up, eq: 2026-10-25T02:30:00}}\n",
        {"contacts.csv": contacts, "email.csv": EMAIL},
    )
    assert compute(project, AS_OF).members == {"first": {1}, "literal": {1}}


# ---------------------------------------------------------------- event semantics


def test_where_conditions_hold_on_the_same_row(make_project: Make) -> None:
    """Contact 1 has a spring row and a big row, but no big spring row: no match."""
    day = AS_OF - timedelta(days=1)
    email = [
        {"contact_id": 1, "occurred_at": day, "campaign": "spring", "amount": 1.0},
        {"contact_id": 1, "occurred_at": day, "campaign": "summer", "amount": 10.0},
        {"contact_id": 3, "occurred_at": day, "campaign": "spring", "amount": 10.0},
    ]
    got = members(
        make_project,
        {"s": "{event: {source: email, where: {campaign: {eq: spring}, amount: {gte: 5}}}}"},
        email=email,
    )
    assert got["s"] == {3}


def test_pooled_sources_count_rows_of_both(make_project: Make) -> None:
    sources = SOURCES + "  web: {path: web.csv, key: cid, time: ts, type: kind}\n"
    day = AS_OF - timedelta(days=1)
    email = [
        {"contact_id": 1, "occurred_at": day, "event_type": "click"},
        {"contact_id": 1, "occurred_at": day - timedelta(days=1), "event_type": "click"},
        {"contact_id": 3, "occurred_at": day, "event_type": "click"},
    ]
    web = [
        {"cid": 1, "ts": day, "kind": "click"},
        {"cid": 3, "ts": day, "kind": "visit"},
    ]
    project = make_project(
        sources
        + "segments:\n"
        + "  three: {where: {event: {source: [email, web], type: click, count: {gte: 3}}}}\n"
        + "  days: {where: {event: {source: [email, web], active_days: {eq: 2}}}}\n",
        {"contacts.csv": CONTACTS, "email.csv": email, "web.csv": web},
    )
    got = compute(project, AS_OF).members
    assert got == {"three": {1}, "days": {1}}


def test_dedupe_counts_rows_repeated_across_exports_once(make_project: Make) -> None:
    day = AS_OF - timedelta(days=1)
    rows = [
        {"contact_id": 1, "purchased_at": day, "order_id": "A", "amount": 10.0},
        {"contact_id": 1, "purchased_at": day, "order_id": "B", "amount": 5.0},
    ]
    sources = (
        SOURCES
        + "  purchases: {path: 'purchases/*.csv', key: contact_id, time: purchased_at,"
        + " dedupe: [order_id]}\n"
        + "  raw: {path: 'purchases/*.csv', key: contact_id, time: purchased_at}\n"
    )
    project = make_project(
        sources
        + "segments:\n"
        + "  two: {where: {event: {source: purchases, count: {eq: 2}}}}\n"
        + "  sum15: {where: {event: {source: purchases, sum: {column: amount, eq: 15}}}}\n"
        + "  raw_three: {where: {event: {source: raw, count: {eq: 3}}}}\n",
        {
            "contacts.csv": CONTACTS,
            "email.csv": EMAIL,
            "purchases/2026-03-30.csv": rows[:1],
            "purchases/2026-03-31.csv": rows,  # A again
        },
    )
    got = compute(project, AS_OF).members
    assert got == {"two": {1}, "sum15": {1}, "raw_three": {1}}


def test_relation_one_columns_are_fields(make_project: Make) -> None:
    sources = SOURCES + "  crm: {path: crm.csv, key: contact_id, relation: one}\n"
    crm = [
        {"contact_id": 1, "tier": "gold", "value": 10.5},
        {"contact_id": 3, "tier": "silver", "value": None},
        {"contact_id": 99, "tier": "gold", "value": 1.0},  # orphan
    ]
    project = make_project(
        sources
        + "segments:\n"
        + "  gold: {where: {field: crm.tier, eq: gold}}\n"
        + "  not_gold: {where: {field: crm.tier, ne: gold}}\n"
        + "  valued: {where: {field: crm.value, gte: 10}}\n",
        {"contacts.csv": CONTACTS, "email.csv": EMAIL, "crm.csv": crm},
    )
    got = compute(project, AS_OF).members
    assert got == {"gold": {1}, "not_gold": {2, 3}, "valued": {1}}


# ---------------------------------------------------------------- string operators


def test_ignore_case_applies_to_every_string_operator(make_project: Make) -> None:
    got = members(
        make_project,
        {
            "eq": "{field: email, eq: BOB@EXAMPLE.ORG, ignore_case: true}",
            "eq_cs": "{field: email, eq: BOB@EXAMPLE.ORG}",
            "in": "{field: country, in: [de, us], ignore_case: true}",
            "ne": "{field: country, ne: de, ignore_case: true}",
            "contains": "{field: email, contains: EXAMPLE, ignore_case: true}",
            "contains_cs": "{field: email, contains: EXAMPLE}",
            "starts": "{field: email, starts_with: bob, ignore_case: true}",
            "ends": "{field: email, ends_with: .ORG, ignore_case: true}",
            "matches": "{field: email, matches: '^b.b@', ignore_case: true}",
        },
    )
    assert got == {
        "eq": {3},
        "eq_cs": set(),
        "in": {1, 3},
        "ne": {2, 3},
        "contains": {1, 3},
        "contains_cs": set(),
        "starts": {3},
        "ends": {3},
        "matches": {3},
    }


def test_matches_is_searched_not_anchored(make_project: Make) -> None:
    got = members(
        make_project,
        {
            "search": "{field: email, matches: 'example'}",
            "anchored": "{field: email, matches: '^example'}",
            "end": "{field: email, matches: 'com$'}",
        },
    )
    assert got == {"search": {1}, "anchored": set(), "end": {1}}


def test_contains_is_literal_not_a_regex(make_project: Make) -> None:
    contacts = [{"id": 1, "email": "a.b@x.com"}, {"id": 2, "email": "axb@x.com"}]
    got = members(make_project, {"dot": "{field: email, contains: a.b}"}, contacts=contacts)
    assert got["dot"] == {1}


# ---------------------------------------------------------------- buckets, top, overrides, refs


def test_bucket_is_stable_and_takes_its_share(make_project: Make) -> None:
    contacts = [{"id": i} for i in range(1, 5001)]
    project = make_project(
        SOURCES
        + "segments:\n"
        + "  ten: {where: {bucket: {percent: 10, salt: spring-test}}}\n"
        + "  ten_other_salt: {where: {bucket: {percent: 10, salt: autumn}}}\n"
        + "  rest: {where: {not: {bucket: {percent: 10, salt: spring-test}}}}\n"
        + "  all: {where: {bucket: {percent: 100, salt: x}}}\n"
        + "  none: {where: {bucket: {percent: 0, salt: x}}}\n",
        {"contacts.csv": contacts, "email.csv": EMAIL},
    )
    first = compute(project, AS_OF).members
    again = compute(project, AS_OF + timedelta(days=3)).members
    assert first == again, "a bucket must not depend on as_of or the run"
    expected = {i for i in range(1, 5001) if bucket_of("spring-test", i) < 1000}
    assert first["ten"] == expected
    assert 450 <= len(first["ten"]) <= 550
    assert first["ten_other_salt"] != first["ten"]
    assert first["rest"] == set(range(1, 5001)) - first["ten"]
    assert (len(first["all"]), len(first["none"])) == (5000, 0)


def test_top_breaks_ties_by_key_and_ranks_nulls_last(make_project: Make) -> None:
    contacts = [
        {"id": 5, "age": 40},
        {"id": 2, "age": 40},
        {"id": 9, "age": 40},
        {"id": 1, "age": None},
        {"id": 7, "age": 20},
    ]
    project = make_project(
        SOURCES
        + "segments:\n"
        + "  two: {where: {all: []}, top: {n: 2, by: {field: age}}}\n"
        + "  four: {where: {all: []}, top: {n: 4, by: {field: age}}}\n"
        + "  five: {where: {all: []}, top: {n: 5, by: {field: age}}}\n",
        {"contacts.csv": contacts, "email.csv": EMAIL},
    )
    got = compute(project, AS_OF).members
    assert got == {"two": {2, 5}, "four": {2, 5, 9, 7}, "five": {1, 2, 5, 7, 9}}


def test_include_and_exclude_files_exclusion_wins(make_project: Make) -> None:
    project = make_project(
        SOURCES
        + "segments:\n"
        + "  de: {where: {field: country, eq: DE}, include_file: vip.csv,"
        + " exclude_file: dne.csv}\n"
        + "  via_ref: {where: {segment: de}}\n",
        {
            "contacts.csv": CONTACTS,
            "email.csv": EMAIL,
            "vip.csv": "id\n2\n3\n",
            "dne.csv": "id\n3\n",
        },
    )
    got = compute(project, AS_OF)
    assert got.rules["de"] == {1}
    assert got.members["de"] == {1, 2}  # 2 included, 3 included but excluded
    assert got.members["via_ref"] == {1, 2}, "references see members after overrides"


def test_segment_references_follow_the_graph(make_project: Make) -> None:
    got = members(
        make_project,
        {
            "c": "{all: [{segment: b}, {not: {segment: a}}]}",
            "a": "{field: country, eq: DE}",
            "b": "{field: country, is_null: false}",
        },
    )
    assert got == {"a": {1}, "b": {1, 3}, "c": {3}}


def test_ignore_case_leaves_numbers_numeric(make_project: Make) -> None:
    """Regression: `ignore_case` turned `eq: 10` on a float column into text "10.0" == "10"."""
    contacts = [{"id": 1, "revenue": 10.0}, {"id": 2, "revenue": 2.5}]
    got = members(
        make_project,
        {
            "eq": "{field: revenue, eq: 10, ignore_case: true}",
            "in": "{field: revenue, in: [10, 3], ignore_case: true}",
        },
        contacts=contacts,
    )
    assert got == {"eq": {1}, "in": {1}}


def test_in_mixes_ints_and_floats(make_project: Make) -> None:
    """Regression: `in: [1, 7.5]` (or ints on a float column) crashed the Polars plan."""
    contacts = [{"id": 1, "revenue": 10.0, "age": 7}, {"id": 2, "revenue": 2.5, "age": 30}]
    got = members(
        make_project,
        {
            "ints_on_float": "{field: revenue, in: [10, 3]}",
            "mixed_on_int": "{field: age, in: [7, 7.5]}",
            "not_in": "{field: revenue, not_in: [10]}",
        },
        contacts=contacts,
    )
    assert got == {"ints_on_float": {1}, "mixed_on_int": {1}, "not_in": {2}}


# ---------------------------------------------------------------- exports


def test_header_only_export_means_no_rows(make_project: Make) -> None:
    """An event export with no rows today (header only) is valid: everybody has count 0."""
    project = make_project(
        SOURCES
        + "segments:\n"
        + "  none: {where: {event: {source: email, within: 7d, count: {eq: 0}}}}\n",
        {
            "contacts.csv": CONTACTS,
            "email.csv": "contact_id,occurred_at,event_type,campaign,amount\n",
        },
    )
    assert compute(project, AS_OF).members["none"] == {1, 2, 3}


def test_a_column_empty_in_one_export_takes_the_type_of_the_others(make_project: Make) -> None:
    """A glob of exports: `amount` is empty in one file and numeric in the other."""
    sources = SOURCES.replace("path: email.csv", "path: 'email/*.csv'")
    header = "contact_id,occurred_at,event_type,campaign,amount\n"
    project = make_project(
        sources
        + "segments:\n"
        + "  spent: {where: {event: {source: email, sum: {column: amount, gte: 3}}}}\n",
        {
            "contacts.csv": CONTACTS,
            "email/1.csv": header + "1,2026-03-30T10:00:00Z,open,spring,\n",
            "email/2.csv": header + "1,2026-03-31T10:00:00Z,buy,spring,3.5\n",
        },
    )
    assert compute(project, AS_OF).members["spent"] == {1}


def test_pooled_distinct_counts_equal_numbers_once(make_project: Make) -> None:
    """Regression: pooled values were compared as text, so int 1 and float 1.0 were two."""
    sources = SOURCES + "  web: {path: web.csv, key: cid, time: ts}\n"
    day = "2026-03-31T10:00:00Z"
    project = make_project(
        sources
        + "segments:\n"
        + "  one: {where: {event: {source: [email, web], distinct: {column: amount, eq: 1}}}}\n",
        {
            "contacts.csv": CONTACTS,
            "email.csv": f"contact_id,occurred_at,event_type,amount\n1,{day},click,1.5\n"
            f"3,{day},click,2.0\n",
            "web.csv": f"cid,ts,amount\n1,{day},1\n3,{day},2\n",  # ints: 1 vs 1.5, 2 vs 2.0
        },
    )
    assert compute(project, AS_OF).members["one"] == {3}


def test_date_time_column_rows_happen_at_local_midnight(make_project: Make) -> None:
    """Regression: an event source whose `time` column holds dates crashed the plan."""
    sources = SOURCES + "  buys: {path: buys.csv, key: contact_id, time: day}\n"
    project = make_project(
        sources
        + "segments:\n"
        + "  today: {where: {event: {source: buys, during: today}}}\n"
        + "  week: {where: {event: {source: buys, within: 7d}}}\n"
        + "  days: {where: {event: {source: buys, active_days: {eq: 2}}}}\n"
        + "  ever: {where: {event: {source: buys}}}\n",
        {
            "contacts.csv": CONTACTS,
            "email.csv": EMAIL,
            # 1: today and yesterday; 2: 2026-03-25 starts 7 d 11 h before as_of; 3: tomorrow
            "buys.csv": "contact_id,day\n1,2026-04-01\n1,2026-03-31\n2,2026-03-25\n3,2026-04-02\n",
        },
    )
    got = compute(project, AS_OF).members
    assert got == {"today": {1}, "week": {1}, "days": {1}, "ever": {1, 2}}
