"""Spec validation through the library: diagnostics' codes, messages, positions and hints.

The exact rendered text of the common mistakes is pinned by golden files in test_cli.py;
here each rule of the validator is checked by the Diagnostic values it produces.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from segcli import api
from segcli.errors import DataError, Diagnostic, SpecError
from segcli.spec import codes
from segcli.spec import load as yamlnodes
from segcli.spec.diagnostics import CODES, render
from segcli.spec.validate import hint, known, op_hint

TESTS = Path(__file__).parent
REPO = TESTS.parent
DATA = TESTS / "projects" / "errors"  # contacts.csv, email.csv, web.csv

HEAD = """\
version: 1
sources:
  contacts: {path: contacts.csv, key: contact_id}
  email: {path: email.csv, key: contact_id, time: occurred_at, type: event_type}
  web: {path: web.csv, key: contact_id}
"""


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """A directory holding the small data files the specs below refer to."""
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "trade_show.csv").write_text("contact_id\n1\n", encoding="utf-8")
    return tmp_path


def diagnostics(spec_dir: Path, text: str) -> list[Diagnostic]:
    """The diagnostics api.load reports for `text` (fails if the spec is valid)."""
    path = spec_dir / "segments.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        api.load(path)
    return info.value.diagnostics


def one(spec_dir: Path, text: str) -> Diagnostic:
    diags = diagnostics(spec_dir, text)
    assert len(diags) == 1, render(diags)
    return diags[0]


def segments(body: str) -> str:
    """HEAD plus a `segments:` section (body indented by the caller)."""
    return HEAD + "segments:\n" + body


# ---------------------------------------------------------------- codes and their docs


def _doc_sections() -> dict[str, str]:
    text = (REPO / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    parts = re.split(r"^## (S\d{3}) — .*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_code_is_documented_with_its_title() -> None:
    text = (REPO / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    headings = dict(re.findall(r"^## (S\d{3}) — (.*)$", text, flags=re.M))
    assert headings == {c.code: c.title for c in codes.TABLE} == CODES


def test_codes_are_unique_and_named_once() -> None:
    named = {n: c for n, c in vars(codes).items() if isinstance(c, codes.Code)}
    assert sorted(named.values(), key=lambda c: c.code) == list(codes.TABLE)
    assert len({c.code for c in codes.TABLE}) == len(codes.TABLE)


def test_no_bare_code_strings_outside_the_table() -> None:
    """Checks name their codes (codes.UNKNOWN_COLUMN); only codes.py spells "S0xx"."""
    for f in (REPO / "segcli").rglob("*.py"):
        if f.name == "codes.py":
            continue
        assert not re.findall(r"[\"'](S\d{3})[\"']", f.read_text(encoding="utf-8")), f


def test_every_code_in_the_table_is_used() -> None:
    used: set[str] = set()
    for f in (REPO / "segcli").rglob("*.py"):
        used |= set(re.findall(r"codes\.([A-Z_]+)\b", f.read_text(encoding="utf-8")))
    named = {n for n, c in vars(codes).items() if isinstance(c, codes.Code)}
    assert named <= used, f"never used: {named - used}"


@pytest.mark.parametrize("code", sorted(CODES))
def test_the_tables_example_is_in_the_documented_bad_spec(code: str) -> None:
    bad = re.findall(r"```yaml\n(.*?)```", _doc_sections()[code], flags=re.S)[0]
    assert codes.BY_CODE[code].example in bad


@pytest.mark.parametrize("code", sorted(CODES))
def test_documented_examples_fail_and_fixes_pass(spec_dir: Path, code: str) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", _doc_sections()[code], flags=re.S)
    assert len(blocks) == 2, f"{code}: expected a bad example and a fix"
    bad, fix = blocks
    diags = diagnostics(spec_dir, bad)
    assert code in {d.code for d in diags}, render(diags)
    path = spec_dir / "segments.yaml"
    path.write_text(fix, encoding="utf-8")
    api.load(path)


# ---------------------------------------------------------------- every error at once


def test_all_errors_of_a_file_are_reported_at_once_in_file_order(spec_dir: Path) -> None:
    text = segments(
        "  germany: {where: {field: countyr, eq: DE}}\n"
        "  clickers: {where: {event: {source: email, within: 30 days}}}\n"
        "  vip: {kind: dinamic, where: {field: title, starts_with: VP}}\n"
        "  loyal: {where: {segment: vips}}\n"
    )
    diags = diagnostics(spec_dir, text)
    assert [(d.code, d.line) for d in diags] == [
        ("S009", 7),
        ("S006", 8),
        ("S006", 9),
        ("S010", 10),
    ]


def test_columns_are_checked_even_when_other_parts_of_the_spec_are_wrong(
    spec_dir: Path,
) -> None:
    text = "timezon: UTC\n" + segments("  g: {where: {field: countyr, eq: DE}}\n")
    assert [d.code for d in diagnostics(spec_dir, text)] == ["S003", "S009"]


def test_spec_errors_win_over_data_errors(spec_dir: Path) -> None:
    text = HEAD.replace("web.csv", "missing.csv") + "segments:\n  g: {wher: {}}\n"
    assert [(d.code, d.col) for d in diagnostics(spec_dir, text)] == [("S005", 6), ("S003", 7)]


def test_a_valid_spec_with_a_missing_file_is_a_data_error(spec_dir: Path) -> None:
    path = spec_dir / "segments.yaml"
    path.write_text(HEAD.replace("web.csv", "missing.csv"), encoding="utf-8")
    with pytest.raises(DataError, match="source 'web': file not found"):
        api.load(path)


def test_every_unreadable_source_is_reported_at_once(spec_dir: Path) -> None:
    path = spec_dir / "segments.yaml"
    text = HEAD.replace("web.csv", "web/*.csv").replace("email.csv", "mail.csv")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as info:
        api.load(path)
    assert info.value.message == (
        "source 'email': file not found: " + str(spec_dir / "mail.csv") + "\n"
        f"source 'web': no file matches web/*.csv (in {spec_dir})"
    )


def test_a_bad_timezone_does_not_stop_the_column_checks(spec_dir: Path) -> None:
    # email's datetimes cannot be read in an unknown timezone, contacts' columns still are.
    text = segments("  a: {where: {field: countyr, eq: x}}\n").replace(
        "version: 1", "timezone: Mars/Base"
    )
    assert [d.code for d in diagnostics(spec_dir, text)] == ["S006", "S009"]


def test_a_broken_source_is_not_reported_again_where_it_is_used(spec_dir: Path) -> None:
    text = (
        "version: 1\n"
        "sources:\n"
        "  contacts: {path: contacts.csv, key: contact_id}\n"
        "  email: {path: email.csv, time: occurred_at}\n"
        "segments:\n"
        "  a: {where: {event: {source: email}}}\n"
        "  b: {where: {field: email.url, eq: x}}\n"
    )
    d = one(spec_dir, text)
    assert (d.code, d.message, d.line) == ("S005", "source 'email' needs 'key'", 4)


# ---------------------------------------------------------------- one rule at a time

CASES: list[tuple[str, str, str, str, str | None]] = [
    # (id, segments body, code, message, help)
    (
        "string-for-condition",
        "  a: {where: country = DE}\n",
        "S004",
        "a condition must be a mapping, got string 'country = DE'",
        "start with one of: all, any, not, field, event, segment, score, score_change, bucket, "
        "grade, sequence, account, at_least",
    ),
    (
        "eq-list",
        "  a: {where: {field: country, eq: [DE, FR]}}\n",
        "S004",
        "eq takes a single value, got a list",
        "use in: [...] for several values",
    ),
    (
        "in-scalar",
        "  a: {where: {field: country, in: DE}}\n",
        "S004",
        "in takes a list, got string 'DE'",
        "write in: [DE]",
    ),
    (
        "not_in-null",
        "  a: {where: {field: country, not_in: [DE, null]}}\n",
        "S004",
        "not_in takes a list of non-null values",
        None,
    ),
    (
        "between-one",
        "  a: {where: {field: age, between: [1]}}\n",
        "S004",
        "between takes a list [low, high]",
        None,
    ),
    (
        "is_null-text",
        "  a: {where: {field: age, is_null: maybe}}\n",
        "S004",
        "is_null takes true or false, got string 'maybe'",
        None,
    ),
    (
        "contains-number",
        "  a: {where: {field: title, contains: 5}}\n",
        "S004",
        "contains takes a string, got int 5",
        None,
    ),
    (
        "all-mapping",
        "  a: {where: {all: {field: age, gt: 1}}}\n",
        "S004",
        "all takes a list of conditions, got a mapping",
        None,
    ),
    (
        "empty-condition",
        "  a: {where: {}}\n",
        "S005",
        "a condition cannot be empty",
        "start with one of: all, any, not, field, event, segment, score, score_change, bucket, "
        "grade, sequence, account, at_least",
    ),
    (
        "no-operator",
        "  a: {where: {field: age}}\n",
        "S005",
        "field 'age' needs an operator",
        "e.g. eq, in, gt, contains, within; all: eq, in, gt, gte, lt, lte, between, contains, "
        "starts_with, ends_with, matches, within, older_than, during, ne, not_in, not_contains, "
        "is_null",
    ),
    (
        "no-where",
        "  a: {description: nothing}\n",
        "S005",
        "segment 'a' needs 'where' (or 'from_file' for a static list)",
        None,
    ),
    (
        "unknown-condition",
        "  a: {where: {feild: age, gt: 1}}\n",
        "S003",
        "unknown condition 'feild'",
        "did you mean 'field'?",
    ),
    (
        "two-kinds",
        "  a: {where: {field: age, gt: 1, segment: b}}\n  b: {where: {field: age, gt: 2}}\n",
        "S015",
        "a condition has exactly one kind, got field, segment",
        "combine several with all: [...] or any: [...]",
    ),
    (
        "operator-alias",
        "  a: {where: {field: age, '>=': 18}}\n",
        "S007",
        "unknown operator '>='",
        "did you mean 'gte'?",
    ),
    (
        "operator-typo-in-event-where",
        "  a: {where: {event: {source: email, where: {url: {contain: x}}}}}\n",
        "S007",
        "unknown operator 'contain'",
        "did you mean 'contains'?",
    ),
    (
        "operator-unknown",
        "  a: {where: {field: age, zzz: 1}}\n",
        "S007",
        "unknown operator 'zzz'",
        "operators: eq, in, gt, gte, lt, lte, between, contains, starts_with, ends_with, "
        "matches, within, older_than, during, ne, not_in, not_contains, is_null",
    ),
    (
        "bad-duration",
        "  a: {where: {event: {source: email, within: 30 days}}}\n",
        "S006",
        "bad duration '30 days' for within",
        "write <int><unit> with unit h, d, w, mo or y, e.g. 30d or 6mo",
    ),
    (
        "signed-duration",
        "  a: {where: {event: {source: email, within: -30d}}}\n",
        "S006",
        "bad duration '-30d' for within",
        "write <int><unit> with unit h, d, w, mo or y, e.g. 30d or 6mo",
    ),
    (
        "bad-period",
        "  a: {where: {event: {source: email, during: last_fortnight}}}\n",
        "S006",
        "unknown calendar period 'last_fortnight'",
        "did you mean 'last_month'?",
    ),
    (
        "bad-regex",
        "  a: {where: {field: email, matches: '(['}}\n",
        "S006",
        "bad regular expression '([': unterminated character set at position 1",
        "the syntax is Rust's regex (no look-around, no backreferences); escape special "
        "characters with a backslash",
    ),
    (
        "regex-python-only",
        "  a: {where: {field: email, matches: '^(?!test)'}}\n",
        "S006",
        "bad regular expression '^(?!test)': look-around, including look-ahead and "
        "look-behind, is not supported",
        "the syntax is Rust's regex (no look-around, no backreferences); escape special "
        "characters with a backslash",
    ),
    (
        "bad-date",
        "  a: {where: {field: age, gt: soon}}\n",
        "S006",
        "bad value 'soon' for gt",
        "a number, an ISO date/datetime (2026-01-31T09:00:00) or a relative time (-30d)",
    ),
    (
        "bad-kind",
        "  a: {kind: dinamic, where: {field: age, gt: 1}}\n",
        "S006",
        "unknown kind 'dinamic'",
        "did you mean 'dynamic'?",
    ),
    (
        "bucket-percent",
        "  a: {where: {bucket: {percent: 150, salt: x}}}\n",
        "S006",
        "bucket.percent must be in [0, 100], got 150.0",
        None,
    ),
    (
        "top-n-zero",
        "  a: {where: {field: age, gt: 1}, top: {n: 0, by: {field: age}}}\n",
        "S004",
        "top.n must be an integer >= 1, got 0",
        None,
    ),
    (
        "top-both",
        "  a: {where: {field: age, gt: 1}, top: {n: 1, percent: 5, by: {field: age}}}\n",
        "S015",
        "top needs exactly one of 'n' or 'percent'",
        None,
    ),
    (
        "top-by-unknown-column",
        "  a: {where: {field: age, gt: 1}, top: {n: 1, by: {field: agee}}}\n",
        "S009",
        "unknown column 'agee' in source 'contacts'",
        "did you mean 'age'?",
    ),
    (
        "expect-change",
        "  a: {where: {field: age, gt: 1}, expect: {max_change: lots}}\n",
        "S006",
        "max_change must be a count or a percent like 25%, got 'lots'",
        None,
    ),
    (
        "unknown-source",
        "  a: {where: {event: {source: emails}}}\n",
        "S008",
        "unknown source 'emails'",
        "did you mean 'email'?",
    ),
    (
        "unknown-source-no-close-name",
        "  a: {where: {event: {source: purchases}}}\n",
        "S008",
        "unknown source 'purchases'",
        "defined sources: contacts, email, web",
    ),
    (
        "unknown-source-in-field",
        "  a: {where: {field: crm.stage, eq: sql}}\n",
        "S008",
        "unknown source 'crm' in field 'crm.stage'",
        "defined sources: contacts, email, web",
    ),
    (
        "unknown-column",
        "  a: {where: {field: countyr, eq: DE}}\n",
        "S009",
        "unknown column 'countyr' in source 'contacts'",
        "did you mean 'country'?",
    ),
    (
        "unknown-column-no-close-name",
        "  a: {where: {field: zzz, eq: DE}}\n",
        "S009",
        "unknown column 'zzz' in source 'contacts'",
        "columns: contact_id, email, country, age, title",
    ),
    (
        "unknown-event-column",
        "  a: {where: {event: {source: email, where: {urll: {eq: x}}}}}\n",
        "S009",
        "unknown column 'urll' in source 'email'",
        "did you mean 'url'?",
    ),
    (
        "unknown-segment",
        "  a: {where: {segment: zzz}}\n",
        "S010",
        "unknown segment 'zzz'",
        "defined segments: a",
    ),
    (
        "self-reference",
        "  a: {where: {not: {segment: a}}}\n",
        "S011",
        "segment reference cycle: a -> a",
        "a segment cannot depend on itself, directly or through others",
    ),
    (
        "string-column-gt",
        "  a: {where: {field: title, gt: 5}}\n",
        "S012",
        "'gt' compares numbers or times, but column 'title' has type str",
        "if the file's type is wrong, declare it on source 'contacts': columns: {title: <type>}",
    ),
    (
        "number-column-contains",
        "  a: {where: {field: age, contains: '3'}}\n",
        "S012",
        "'contains' needs a string column, but column 'age' has type int",
        "if the file's type is wrong, declare it on source 'contacts': columns: {age: <type>}",
    ),
    (
        "number-column-string-literal",
        "  a: {where: {field: age, in: [30, forty]}}\n",
        "S012",
        "in: 'forty' is a string, but column 'age' has type int",
        "if the file's type is wrong, declare it on source 'contacts': columns: {age: <type>}",
    ),
    (
        "time-op-on-number",
        "  a: {where: {field: age, within: 30d}}\n",
        "S012",
        "'within' needs a date or datetime column, but column 'age' has type int",
        "if the file's type is wrong, declare it on source 'contacts': columns: {age: <type>}",
    ),
    (
        "event-where-type",
        "  a: {where: {event: {source: email, where: {occurred_at: {contains: x}}}}}\n",
        "S012",
        "'contains' needs a string column, but column 'occurred_at' has type datetime",
        "if the file's type is wrong, declare it on source 'email': columns: {occurred_at: <type>}",
    ),
    (
        "sum-of-text",
        "  a: {where: {event: {source: email, sum: {column: url, gte: 3}}}}\n",
        "S012",
        "sum needs a numeric column, but column 'url' of source 'email' has type str",
        None,
    ),
    (
        "count-contains",
        "  a: {where: {event: {source: email, count: {contains: x}}}}\n",
        "S012",
        "'contains' needs a string column, but an event's count has type float",
        None,
    ),
    (
        "type-without-type-column",
        "  a: {where: {event: {source: web, type: visit}}}\n",
        "S013",
        "event type filter needs source 'web' to declare `type:`",
        "add `type: <column>` to source 'web'",
    ),
    (
        "window-without-time-column",
        "  a: {where: {event: {source: web, within: 7d}}}\n",
        "S013",
        "a time window needs source 'web' to declare `time:`",
        "add `time: <column>` to source 'web'",
    ),
    (
        "event-on-contacts",
        "  a: {where: {event: {source: contacts}}}\n",
        "S013",
        "event conditions need a relation: many source, 'contacts' is the contacts table",
        "use field: SOURCE.COLUMN for relation: one sources",
    ),
    (
        "field-on-many-source",
        "  a: {where: {field: email.url, eq: x}}\n",
        "S013",
        "field 'email.url' needs source 'email' to be relation: one",
        "use an event condition for relation: many sources",
    ),
    (
        "unknown-model",
        "  a: {where: {score: {model: engagement, gte: 1}}}\n",
        "S014",
        "unknown scoring model 'engagement'",
        "this spec defines no scoring models",
    ),
    (
        "from-file-dynamic",
        "  a: {from_file: lists/x.csv}\n",
        "S015",
        "from_file is only for static segments",
        "add `kind: static`",
    ),
    (
        "within-and-during",
        "  a: {where: {event: {source: email, within: 3d, during: today}}}\n",
        "S015",
        "an event takes within or during, not both",
        None,
    ),
    (
        "two-tests",
        "  a: {where: {event: {source: email, count: {gte: 1}, last: {within: 3d}}}}\n",
        "S015",
        "an event takes one test, got count, last",
        None,
    ),
    (
        "unknown-segment-key",
        "  a: {where: {field: age, gt: 1}, exclud: {field: age, gt: 50}}\n",
        "S003",
        "unknown key 'exclud' in segment 'a'",
        "did you mean 'exclude'?",
    ),
]


@pytest.mark.parametrize(
    ("body", "code", "message", "help"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_one_mistake_one_diagnostic(
    spec_dir: Path, body: str, code: str, message: str, help: str | None
) -> None:
    d = one(spec_dir, segments(body))
    assert (d.code, d.message, d.help) == (code, message, help)
    assert d.file == str(spec_dir / "segments.yaml")
    assert d.line >= 7 and d.col >= 1 and d.path.startswith("segments.a")


TOP_CASES: list[tuple[str, str, str, str, str | None]] = [
    (
        "unknown-top-key",
        "version: 1\ntimezon: UTC\nsources: {contacts: {path: contacts.csv, key: contact_id}}\n",
        "S003",
        "unknown key 'timezon' in the spec",
        "did you mean 'timezone'?",
    ),
    (
        "version",
        "version: 2\nsources: {contacts: {path: contacts.csv, key: contact_id}}\n",
        "S006",
        "unsupported version 2",
        "this segcli reads version: 1",
    ),
    (
        "timezone",
        "timezone: Mars/Base\nsources: {contacts: {path: contacts.csv, key: contact_id}}\n",
        "S006",
        "unknown IANA timezone 'Mars/Base'",
        "e.g. Europe/Berlin, America/New_York, UTC",
    ),
    (
        "no-sources",
        "version: 1\n",
        "S005",
        "missing required key 'sources'",
        "declare at least `sources: {contacts: {path: ..., key: ...}}`",
    ),
    (
        "no-contacts",
        "sources: {email: {path: email.csv, key: contact_id}}\n",
        "S005",
        "missing required source 'contacts'",
        "contacts is the table of people being segmented, one row each",
    ),
    (
        "sources-list",
        "sources: [contacts]\n",
        "S004",
        "sources must be a mapping, got a list",
        None,
    ),
    (
        "unknown-source-key",
        "sources: {contacts: {path: contacts.csv, key: contact_id, keys: x}}\n",
        "S003",
        "unknown key 'keys' in source 'contacts'",
        "did you mean 'key'?",
    ),
    (
        "relation",
        "sources:\n  contacts: {path: contacts.csv, key: contact_id}\n"
        "  web: {path: web.csv, key: contact_id, relation: few}\n",
        "S006",
        "relation must be 'one' or 'many', got 'few'",
        None,
    ),
    (
        "column-type",
        "sources: {contacts: {path: contacts.csv, key: contact_id, columns: {age: text}}}\n",
        "S006",
        "unknown column type 'text' for 'age'",
        "one of: str, int, float, bool, date, datetime",
    ),
    (
        "segments-list",
        "sources: {contacts: {path: contacts.csv, key: contact_id}}\nsegments: [a]\n",
        "S004",
        "segments must be a mapping, got a list",
        None,
    ),
    (
        "rule-points-and-ready",
        "sources: {contacts: {path: contacts.csv, key: contact_id}}\nscoring:\n  m:\n"
        "    rules: [{name: r, points: 1, ready: 5%, when: {field: age, gt: 1}}]\n",
        "S015",
        "a rule needs exactly one of 'points' or 'ready'",
        None,
    ),
    (
        "rule-ready",
        "sources: {contacts: {path: contacts.csv, key: contact_id}}\nscoring:\n  m:\n"
        "    rules: [{name: r, ready: lots, when: {field: age, gt: 1}}]\n",
        "S006",
        "ready must be a percent like 30%, got 'lots'",
        None,
    ),
    (
        "rule-each",
        "sources: {contacts: {path: contacts.csv, key: contact_id}}\nscoring:\n  m:\n"
        "    rules: [{name: r, points: 1, each: true, when: {field: age, gt: 1}}]\n",
        "S015",
        "each: true needs `when` to be one event condition with the default test",
        "drop count/sum/... from the event",
    ),
    (
        "check-unknown-source",
        "sources: {contacts: {path: contacts.csv, key: contact_id}}\n"
        "checks: [{source: contact, unique: contact_id}]\n",
        "S008",
        "unknown source 'contact'",
        "did you mean 'contacts'?",
    ),
]


@pytest.mark.parametrize(
    ("text", "code", "message", "help"),
    [c[1:] for c in TOP_CASES],
    ids=[c[0] for c in TOP_CASES],
)
def test_top_level_mistakes(
    spec_dir: Path, text: str, code: str, message: str, help: str | None
) -> None:
    d = one(spec_dir, text)
    assert (d.code, d.message, d.help) == (code, message, help)


def test_a_literal_that_fits_a_datetime_column_is_accepted(spec_dir: Path) -> None:
    path = spec_dir / "segments.yaml"
    path.write_text(
        segments(
            "  a: {where: {event: {source: email, where: {occurred_at: {gte: 2026-01-01}}}}}\n"
            "  b: {where: {event: {source: email, last: {within: 30d}}}}\n"
            "  c: {where: {field: age, between: [18, 65.5], include_missing: false}}\n"
        ),
        encoding="utf-8",
    )
    spec = api.load(path).spec
    assert list(spec.segments) == ["a", "b", "c"]


# ---------------------------------------------------------------- YAML level


def test_empty_file_and_comment_only_file(spec_dir: Path) -> None:
    for text in ("", "# nothing yet\n"):
        d = one(spec_dir, text)
        assert (d.code, d.message, d.line, d.col) == ("S002", "the spec file is empty", 1, 1)


def test_top_level_must_be_a_mapping(spec_dir: Path) -> None:
    for text, got in (("- a\n- b\n", "a list"), ("just text\n", "string 'just text'")):
        d = one(spec_dir, text)
        assert (d.code, d.message) == ("S002", f"the spec's top level must be a mapping, got {got}")


def test_yaml_syntax_error_names_the_enclosing_structure() -> None:
    _, diags = yamlnodes.load("a: {b: 1\nc: 2\n", "f.yaml")
    [d] = diags
    assert (d.code, d.line, d.col) == ("S001", 2, 2)
    assert d.message == "invalid YAML: expected ',' or '}', but got ':'"
    assert d.help == (
        "inside a flow mapping that starts on line 1, column 4; check its brackets, commas "
        "and quotes"
    )


def test_yaml_tab_indentation_has_a_plain_hint() -> None:
    _, [d] = yamlnodes.load("a:\n\tb: 1\n", "f.yaml")
    assert d.code == "S001"
    assert d.help == "indent with spaces: YAML does not allow tabs"


def test_duplicate_key_points_at_the_second_and_names_the_first() -> None:
    root, [d] = yamlnodes.load("segments:\n  a: 1\n  b: 2\n  a: 3\n", "f.yaml")
    assert root is not None
    assert (d.code, d.message, d.line, d.col, d.path) == (
        "S003",
        "duplicate key 'a' (first defined on line 2)",
        4,
        3,
        "segments.a",
    )


def test_nodes_know_where_they_end() -> None:
    root, _ = yamlnodes.load("a: {b: [1, 22]}\n", "f.yaml")
    assert root is not None
    b = root.value["a"].value["b"]
    assert (b.line, b.col, b.end_line, b.end_col) == (1, 8, 1, 15)
    assert b.value[1].plain() == 22 and (b.value[1].col, b.value[1].end_col) == (12, 14)


# ---------------------------------------------------------------- hints and rendering


def test_hints() -> None:
    assert hint("countyr", ["country", "age"]) == "did you mean 'country'?"
    assert hint("zzz", ["country"]) is None
    assert known("zzz", ["a", "b"], "segments") == "defined segments: a, b"
    assert known("zzz", [], "segments") == "this spec defines no segments"
    assert op_hint("equals", ("eq", "ne")) == "did you mean 'eq'?"
    assert op_hint("!=", ("eq", "ne")) == "did you mean 'ne'?"
    assert op_hint("exists", ("is_null",)).startswith("did you mean 'is_null'?")
    assert op_hint("gtee", ("gt", "gte")) == "did you mean 'gte'?"


def test_render_is_ruff_style() -> None:
    text = "version: 1\nsegments:\n  a: {where: {field: countyr, eq: DE}}\n"
    diags = [
        Diagnostic(
            "S009",
            "unknown column 'countyr' in source 'contacts'",
            "s.yaml",
            3,
            22,
            "segments.a.where.field",
            "did you mean 'country'?",
        ),
        Diagnostic("S005", "missing required key 'sources'", "s.yaml", 1, 1, "", None, 11),
        Diagnostic("S002", "the spec file is empty", "other.yaml"),
    ]
    assert render(diags, sources={"s.yaml": text, "other.yaml": ""}) == (
        "s.yaml:3:22: S009 unknown column 'countyr' in source 'contacts'\n"
        "  |\n"
        "3 |   a: {where: {field: countyr, eq: DE}}\n"
        "  |                      ^^^^^^^\n"
        "  = at: segments.a.where.field\n"
        "  = help: did you mean 'country'?\n"
        "\n"
        "s.yaml:1:1: S005 missing required key 'sources'\n"
        "  |\n"
        "1 | version: 1\n"
        "  | ^^^^^^^^^^\n"
        "\n"
        "other.yaml: S002 the spec file is empty\n"
        "\n"
        "Found 3 errors."
    )


def test_diagnostic_json_fields() -> None:
    d = Diagnostic("S010", "unknown segment 'x'", "s.yaml", 4, 9, "segments.a.where.segment", None)
    assert d.to_json() == {
        "code": "S010",
        "message": "unknown segment 'x'",
        "file": "s.yaml",
        "line": 4,
        "col": 9,
        "path": "segments.a.where.segment",
        "help": None,
    }
