"""Data checks (`checks:`) and segment expectations (`expect:`), for `segcli check` and CI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

import polars as pl

from segcli.engines.catalog import Catalog, remote_words
from segcli.spec import model as m
from segcli.spec.timeutil import before, parse_duration


@dataclass
class Outcome:
    """One check or expectation: what was checked, whether it passed, and the evidence."""

    name: str
    kind: str  # "data" or "expect"
    passed: bool
    detail: str
    examples: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _as_list(v: Any) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def _examples(series: pl.Series, n: int = 5) -> list[str]:
    return [repr(x) for x in series.head(n).to_list()]


def run_check(spec: m.Spec, catalog: Catalog, check: m.Check, as_of: datetime) -> Outcome:
    """Evaluate one data check against its source."""
    src = spec.sources[check.source]
    if src.remote is not None:  # nothing here reads what only Spark reads: fail, saying so
        detail = (
            f"not checked: source '{check.source}' {remote_words(src)}, and data checks "
            "read local files (check the data where it lives)"
        )
        return Outcome(f"{check.source}: {check.kind}", "data", False, detail)
    lf = catalog.frame(check.source)
    schema = catalog.schema(check.source)
    arg: Any = check.arg
    label = f"{check.source}: {check.kind}"
    missing = [c for c in _check_columns(check) if c not in schema]
    if missing:
        return Outcome(
            label, "data", False, f"column(s) {', '.join(missing)} not in source '{check.source}'"
        )
    if check.kind == "unique":
        columns = _as_list(arg)
        label = f"{check.source}: unique {', '.join(columns)}"
        dup = (
            lf.group_by(columns)
            .agg(pl.len().alias("n"))
            .filter(pl.col("n") > 1)
            .sort("n", descending=True)
            .collect()
        )
        if dup.height == 0:
            return Outcome(label, "data", True, "no duplicates")
        rows = int(dup["n"].sum())
        ex = [
            ", ".join(f"{c}={r[c]!r}" for c in columns) + f" ({r['n']} rows)"
            for r in dup.head(5).to_dicts()
        ]
        return Outcome(
            label, "data", False, f"{dup.height} value(s) repeated, {rows} rows involved", ex
        )
    if check.kind == "not_null":
        columns = _as_list(arg)
        label = f"{check.source}: not_null {', '.join(columns)}"
        counts = lf.select([pl.col(c).null_count() for c in columns]).collect().row(0)
        bad = {c: n for c, n in zip(columns, counts, strict=True) if n}
        if not bad:
            return Outcome(label, "data", True, "no nulls")
        first = (
            lf.with_row_index("__row")
            .filter(pl.any_horizontal([pl.col(c).is_null() for c in bad]))
            .select("__row")
            .head(5)
            .collect()
        )
        ex = [f"row {int(r) + 2}" for r in first["__row"].to_list()]
        return Outcome(
            label, "data", False, "; ".join(f"{c}: {n} null row(s)" for c, n in bad.items()), ex
        )
    if check.kind == "fresh":
        within = parse_duration(str(arg["within"]))
        assert within is not None
        label = f"{check.source}: fresh within {within.text}"
        if src.time is None:
            return Outcome(label, "data", False, f"source '{check.source}' declares no time column")
        latest = lf.select(pl.col(src.time).filter(pl.col(src.time) <= as_of).max()).collect()
        value = latest.item()
        limit = before(as_of, within, spec.timezone)
        if value is None:
            return Outcome(label, "data", False, "no rows with a time at or before as_of")
        ok = value >= limit
        return Outcome(
            label, "data", ok, f"latest row at {value.isoformat()}; needs >= {limit.isoformat()}"
        )
    if check.kind == "orphans":
        label = f"{check.source}: orphans max {arg['max']}"
        key = spec.contacts.key
        contacts = catalog.frame("contacts").select(pl.col(key))
        kdtype = catalog.schema("contacts")[key]
        keys = lf.select(pl.col(src.key).cast(kdtype, strict=False).alias(key))
        orphans = keys.join(contacts, on=key, how="anti").collect()
        n = orphans.height
        ex = _examples(orphans[key].unique(maintain_order=True))
        return Outcome(
            label,
            "data",
            n <= int(arg["max"]),
            f"{n} row(s) whose key is not a contact",
            ex if n else [],
        )
    if check.kind == "accepted":
        col, allowed = str(arg["column"]), list(arg["in"])
        label = f"{check.source}: accepted {col}"
        rejected = (
            lf.select(pl.col(col))
            .filter(
                pl.col(col).is_not_null()
                & ~pl.col(col).cast(pl.String).is_in([str(a) for a in allowed])
            )
            .collect()
        )
        if rejected.height == 0:
            return Outcome(label, "data", True, f"every value in {allowed}")
        vc = rejected[col].value_counts(sort=True)
        ex = [f"{r[col]!r} ({r['count']} rows)" for r in vc.head(5).to_dicts()]
        return Outcome(
            label, "data", False, f"{rejected.height} row(s) with a value not in {allowed}", ex
        )
    if check.kind == "rows":
        n = int(lf.select(pl.len()).collect().item())
        lo, hi = arg.get("min"), arg.get("max")
        label = (
            f"{check.source}: rows"
            + (f" >= {lo}" if lo is not None else "")
            + (f" <= {hi}" if hi is not None else "")
        )
        ok = (lo is None or n >= lo) and (hi is None or n <= hi)
        return Outcome(label, "data", ok, f"{n:,} rows")
    raise AssertionError(check.kind)  # pragma: no cover


def _check_columns(check: m.Check) -> list[str]:
    if check.kind in ("unique", "not_null"):
        return _as_list(check.arg)
    if check.kind == "accepted" and isinstance(check.arg, dict):
        return [str(check.arg["column"])]
    return []


def expectations(spec: m.Spec, runs: list[dict[str, Any]]) -> list[Outcome]:
    """Each segment's `expect` against the last committed run (max_change: against the run
    before it in which the segment was evaluated)."""
    out: list[Outcome] = []
    for name, seg in spec.segments.items():
        if seg.expect is None:
            continue
        seen = [r["segments"][name] for r in runs if name in r["segments"]]
        if not seen:
            out.append(
                Outcome(
                    f"{name}: expect",
                    "expect",
                    False,
                    "no committed run has this segment yet: run `segcli run` first",
                )
            )
            continue
        size = int(seen[-1]["size"])
        e = seg.expect
        if e.min_size is not None:
            out.append(
                Outcome(
                    f"{name}: min_size {e.min_size}", "expect", size >= e.min_size, f"size {size:,}"
                )
            )
        if e.max_size is not None:
            out.append(
                Outcome(
                    f"{name}: max_size {e.max_size}", "expect", size <= e.max_size, f"size {size:,}"
                )
            )
        if e.max_change is not None:
            label = f"{name}: max_change {e.max_change}"
            if len(seen) < 2:
                out.append(Outcome(label, "expect", True, "first run: nothing to compare"))
                continue
            before = int(seen[-2]["size"])
            change = abs(size - before)
            if e.max_change.endswith("%"):
                limit = float(e.max_change[:-1])
                pct = 100.0 * change / before if before else (0.0 if change == 0 else 100.0)
                ok = pct <= limit
                detail = f"{before:,} -> {size:,} ({pct:.1f}% change)"
            else:
                ok = change <= int(e.max_change)
                detail = f"{before:,} -> {size:,} ({change:,} change)"
            out.append(Outcome(label, "expect", ok, detail))
    return out


def junit_xml(outcomes: list[Outcome], seconds: float) -> bytes:
    """JUnit XML: one test case per check and expectation, failures with their evidence."""
    failures = sum(not o.passed for o in outcomes)
    suite = ET.Element(
        "testsuite",
        name="segcli check",
        tests=str(len(outcomes)),
        failures=str(failures),
        errors="0",
        time=f"{seconds:.3f}",
    )
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname=f"segcli.{o.kind}", name=o.name)
        if not o.passed:
            fail = ET.SubElement(case, "failure", message=o.detail, type=o.kind)
            fail.text = "\n".join([o.detail, *o.examples])
    root = ET.Element("testsuites", tests=str(len(outcomes)), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def junit_error_xml(message: str, kind: str) -> bytes:
    """JUnit XML for a check that could not run (invalid spec, unreadable data, bad state):
    one failed test case carrying the error, so that CI has a report to upload."""
    outcome = Outcome("segcli check could not run", kind, False, message)
    return junit_xml([outcome], 0.0)
