"""Per-value grouping (SPEC §2.6): `per`, `has` and `lacks` of an event condition, parsed.

`{event: {source: email, per: campaign_id, has: [sent], lacks: [open], within: 90d,
count: {gte: 3}}}` groups the selected rows (type, where, window) by the column's non-null
values; a value passes when its rows contain every `has` type and no `lacks` type (with
neither, when it has a selected row at all); the event's `count` is the number of values that
pass. Only `count` can be its test. Checked here: what the spec alone shows; the column and
the sources' `type:` columns are checked by resolve (`refs.EventUse`).
"""

from __future__ import annotations

from segcli.spec import codes
from segcli.spec import model as m
from segcli.spec.diagnostics import Reporter
from segcli.spec.load import YNode
from segcli.spec.parse_values import Values

EXAMPLE = "e.g. per: campaign_id, has: [sent], lacks: [open]"


def parse_per(
    r: Reporter,
    v: Values,
    enode: YNode,
    body: dict[str, YNode],
    aggs: list[str],
    types: tuple[str, ...] | None,
) -> tuple[m.Per | None, bool]:
    """The event's `per` grouping (None without `per:`) and whether it parsed cleanly."""
    kinds: list[str] = [k for k in ("has", "lacks") if k in body]
    if "per" not in body:
        for k in kinds:
            r.err_key(
                codes.MISSING_KEY,
                f"{k} needs per: it judges the rows of each value of a column",
                enode,
                k,
                EXAMPLE,
            )
        return None, not kinds
    ok = True
    column = v.string(body["per"], "per")
    ok &= column is not None
    others = [a for a in aggs if a != "count"]
    if others:
        r.err(
            codes.CONFLICT,
            f"per counts the values that pass: its only test is count, got {', '.join(others)}",
            enode,
            "e.g. count: {gte: 3} (the number of values that pass)",
        )
        ok = False
    if "regularly" in body:
        r.err(
            codes.CONFLICT,
            "an event takes per or regularly, not both",
            enode,
            "per counts the values that pass: its only test is count",
        )
        ok = False
    lists: dict[str, tuple[str, ...]] = {}
    for k in kinds:
        got = v.str_list(body[k], k)
        if got is None:
            ok = False
            continue
        lists[k] = tuple(dict.fromkeys(got))
    has, lacks = lists.get("has", ()), lists.get("lacks", ())
    for t in has:
        if t in lacks:
            r.err(
                codes.CONFLICT,
                f"type {t!r} is in both has and lacks: no value could pass",
                body["lacks"],
            )
            ok = False
    if types is not None:
        for k, listed in lists.items():
            for t in listed:
                if t not in types:
                    r.err(
                        codes.CONFLICT,
                        f"{k} type {t!r} is not among type: {list(types)}: type selects the "
                        "rows first, so no value's rows can hold it",
                        body[k],
                        f"add {t!r} to type:, or drop type: (has and lacks then look at "
                        "every selected row)",
                    )
                    ok = False
    if not ok or column is None:
        return None, False
    return m.Per(column, has, lacks), True
