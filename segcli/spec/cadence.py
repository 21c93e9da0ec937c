"""Cadence (SPEC §2.6): `regularly:` in an event condition, parsed.

`regularly: {at_least: 2, every: 1w, periods: 3, of: 4}` is the event's test (instead of
count/sum/...): at least `at_least` matching rows (default 1) in at least `periods` (default:
all `of`) of the last `of` periods of length `every`. It is compiled as one count aggregate
per period (segcli.planning.compile.regular_periods).
"""

from __future__ import annotations

from segcli.spec import codes
from segcli.spec import language as lang
from segcli.spec import model as m
from segcli.spec.diagnostics import Reporter
from segcli.spec.load import YNode
from segcli.spec.parse_values import Values

REGULARLY_KEYS = lang.names(lang.REGULARLY)
MAX_PERIODS = 1000


def parse_regularly(r: Reporter, v: Values, node: YNode) -> m.Regularly | None:
    """`regularly: {at_least, every, periods, of}` with `every` and `of` required."""
    body = v.mapping(node, "regularly", REGULARLY_KEYS)
    if body is None:
        return None
    if "every" not in body or "of" not in body:
        r.err(
            codes.MISSING_KEY,
            "regularly needs 'every' and 'of'",
            node,
            "e.g. regularly: {at_least: 2, every: 1w, periods: 3, of: 4}",
        )
        return None
    every = v.duration(body["every"], "every")
    of = v.integer(body["of"], "of", 1)
    at_least = v.integer(body["at_least"], "at_least", 1) if "at_least" in body else 1
    periods = v.integer(body["periods"], "periods", 1) if "periods" in body else of
    if every is None or of is None or at_least is None or periods is None:
        return None
    if of > MAX_PERIODS:
        r.err(codes.BAD_VALUE, f"regularly.of is at most {MAX_PERIODS}, got {of}", body["of"])
        return None
    if periods > of:
        r.err(
            codes.BAD_VALUE,
            f"regularly.periods ({periods}) cannot exceed of ({of})",
            body["periods"],
            "periods is how many of the last `of` periods must hold the rows",
        )
        return None
    return m.Regularly(at_least, every, periods, of)
