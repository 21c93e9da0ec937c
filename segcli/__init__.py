"""segcli: marketing segmentation and lead scoring, compiled into one plan and run in one pass.

The library API (the CLI is a thin layer over it; nothing here prints):

    import segcli
    project = segcli.load("segments.yaml")            # parse + resolve; SpecError lists all
    plan = segcli.plan(project, as_of="2026-11-20")   # a frozen Plan value; reads schemas only
    print("\n".join(plan.describe()))
    ev = segcli.evaluate(project, as_of="2026-11-20") # no state: every kind as on a first run
    ev.memberships()                                  # polars: key + one bool per segment
    result = segcli.run(project, as_of="2026-11-20")  # state, outputs, entered/left
    result.memberships, result.scores                 # polars frames
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from segcli.api import Project, RunResult
    from segcli.engines.polars import Evaluation
    from segcli.planning.planner import Plan


def load(path: str | Path) -> Project:
    """Read a spec and its sources' schemas: a Project (SpecError lists every diagnostic)."""
    from segcli import api

    return api.load(path)


def plan(
    project: Project, as_of: str | datetime | None = None, segments: list[str] | None = None
) -> Plan:
    """The run's Plan at `as_of` (default now): built from schemas, nothing executed."""
    from segcli import api

    return api.make_plan(project, api.resolve_as_of(project, as_of), segments)


def evaluate(
    project: Project, as_of: str | datetime | None = None, segments: list[str] | None = None
) -> Evaluation:
    """Evaluate segments and scores without touching the state (kinds as on a first run)."""
    from segcli import api

    return api.compute(project, as_of, segments)[0]


def run(project: Project, **options: Any) -> RunResult:
    """A full run (state, outputs, changes); options as `segcli.api.run`."""
    from segcli import api

    return api.run(project, **options)
