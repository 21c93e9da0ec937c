"""Every spec diagnostic code, once: its code, title and one example of the mistake.

Checks refer to codes by name (`codes.UNKNOWN_COLUMN`), never by a bare "S0xx" string.
`docs/diagnostics.md` has one section per code, titled `## CODE — title`; a test checks its
headings against `TABLE`, that each section's bad example contains `example`, that the bad
example yields the code, and that its fix validates.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """A diagnostic code: `code` as printed, a one-line `title`, and an `example` mistake."""

    code: str
    title: str
    example: str


INVALID_YAML = Code("S001", "the file is not valid YAML", "contacts: {path: contacts.csv")
EMPTY_FILE = Code("S002", "the file is empty or its top level is not a mapping", "- version: 1")
UNKNOWN_KEY = Code("S003", "unknown key", "timezon: Europe/Berlin")
WRONG_TYPE = Code("S004", "wrong type of value", "where: country = DE")
MISSING_KEY = Code("S005", "missing required key", "where: {field: country}")
BAD_VALUE = Code(
    "S006",
    "bad value (duration, period, date, regex, percent, enum)",
    "within: 30 days",
)
UNKNOWN_OPERATOR = Code("S007", "unknown operator", "equals: DE")
UNKNOWN_SOURCE = Code("S008", "unknown source", "source: emails")
UNKNOWN_COLUMN = Code("S009", "unknown column", "field: countyr")
UNKNOWN_SEGMENT = Code("S010", "unknown segment", "segment: vips")
CYCLE = Code("S011", "segment reference cycle", "where: {segment: beta}")
TYPE_MISMATCH = Code("S012", "literal does not fit the column's type", "field: title, gt: 5")
SOURCE_LACKS = Code(
    "S013",
    "a condition needs something its source does not declare (time or type column)",
    "type: click, within: 30d",
)
UNKNOWN_MODEL = Code("S014", "unknown scoring model", "model: engagment")
CONFLICT = Code("S015", "conflicting keys", "from_file: lists/trade_show.csv")
BAD_NAME = Code("S016", "a name is not an identifier", "email+web:")
YAML_LIMIT = Code(
    "S017",
    "YAML that segcli does not read (unknown tag, too deep, aliases that expand too far)",
    "!python/object",
)

TABLE: tuple[Code, ...] = (
    INVALID_YAML,
    EMPTY_FILE,
    UNKNOWN_KEY,
    WRONG_TYPE,
    MISSING_KEY,
    BAD_VALUE,
    UNKNOWN_OPERATOR,
    UNKNOWN_SOURCE,
    UNKNOWN_COLUMN,
    UNKNOWN_SEGMENT,
    CYCLE,
    TYPE_MISMATCH,
    SOURCE_LACKS,
    UNKNOWN_MODEL,
    CONFLICT,
    BAD_NAME,
    YAML_LIMIT,
)
BY_CODE: dict[str, Code] = {c.code: c for c in TABLE}
