"""Validate a spec: parse the YAML tree into the typed model, then resolve it against the
sources' schemas. Both steps report to one `Reporter`, so every diagnostic comes at once.

    load (YAML nodes) ─► parse (typed model, structural errors)
                      ─► resolve (names, columns, types, segment graph, cycles)
"""

from __future__ import annotations

from pathlib import Path

from segcli.errors import DataError, Diagnostic
from segcli.spec import model as m
from segcli.spec.diagnostics import Reporter
from segcli.spec.load import YNode
from segcli.spec.parse import parse
from segcli.spec.parse_ops import OP_ALIASES, op_hint
from segcli.spec.parse_values import file_problem, hint, known
from segcli.spec.resolve import SchemaOf, resolve

__all__ = ["OP_ALIASES", "file_problem", "hint", "known", "op_hint", "validate"]


def validate(
    root: YNode,
    file: str,
    base_dir: Path,
    schema_of: SchemaOf | None = None,
    loaded: list[Diagnostic] | None = None,
) -> tuple[m.Spec | None, list[Diagnostic]]:
    """The spec's model, or None and every diagnostic in file order.

    `loaded` are the loader's own findings (duplicate keys, bad dates), reported with the rest.
    A data problem (an unreadable source, a missing key column or list file) raises DataError,
    but only once the spec itself has no diagnostics: fix the spec first.
    """
    r = Reporter(file)
    r.diags.extend(loaded or [])
    parsed = parse(root, r, base_dir)
    if parsed is None:
        return None, r.sorted()
    data_problems = resolve(parsed, r, base_dir, schema_of)
    if r.diags:
        return None, r.sorted()
    if data_problems:
        raise DataError(data_problems)
    spec = m.Spec(
        file=file,
        base_dir=str(base_dir),
        timezone=parsed.timezone,
        sources=parsed.sources,
        segments=parsed.segments,
        scoring=parsed.scoring,
        checks=parsed.checks,
        keep_runs=parsed.keep_runs,
        fiscal_year_start=parsed.fiscal_year_start,
        engine=parsed.engine,
    )
    return spec, []
