"""`segcli explain`: a segment in words and its plan (nothing executed), or why one contact
is in or out; each says which run it shows (SPEC §3.2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from segcli import api
from segcli.errors import UsageError
from segcli.planning import ir
from segcli.planning.history import field_name, history_refs
from segcli.planning.per import describe_per
from segcli.planning.planner import Plan, describe_key
from segcli.spec import graph
from segcli.spec import model as m
from segcli.views.contact import contact_lines, contact_verdicts
from segcli.views.words import describe_segment, node_text

# ---------------------------------------------------------------- the explain command


@dataclass
class Explanation:
    """What `explain` shows: text lines and the same content as structured data."""

    lines: list[str]
    data: dict[str, Any]


def local_time(at: datetime, tz: str) -> str:
    """An instant as a person reads it: in the project timezone, with its offset."""
    return at.astimezone(ZoneInfo(tz)).isoformat()


def which_run(
    project: api.Project, as_of: str | None, state_dir: str | Path | None
) -> tuple[datetime, dict[str, Any] | None, str]:
    """The instant to evaluate at and the run it shows: the last committed run's as_of unless
    `as_of` is given (SPEC §3.2), with a sentence saying which."""
    tz = project.spec.timezone
    if as_of is not None:
        at = api.resolve_as_of(project, as_of)
        return at, None, f"evaluated at --as-of {local_time(at, tz)} (not a committed run)"
    manifest = project.state(state_dir).read_manifest()
    if manifest.runs:
        run = manifest.runs[-1]
        at = datetime.fromisoformat(run["as_of"])
        return at, run, f"run {run['run_id']} as of {local_time(at, tz)} (the last committed run)"
    at = api.resolve_as_of(project, None)
    return at, None, f"no committed run yet: evaluated now, {local_time(at, tz)}"


def _definition(cond: m.Condition) -> dict[str, Any]:
    out: dict[str, Any] = {"text": node_text(cond)}
    kids = [_definition(c) for c in graph.children(cond)]
    if kids:
        out["children"] = kids
    return out


def explain_segment(
    project: api.Project, name: str, as_of: str | None = None, state_dir: str | Path | None = None
) -> Explanation:
    """A segment in words and the plan that computes it; nothing is executed (the plan is
    built from the sources' schemas, no rows are read)."""
    spec = project.spec
    api.check_segment_names(project, [name])
    at, run, said = which_run(project, as_of, state_dir)
    plan = api.make_plan(project, at, [name])
    lines = describe_segment(spec, name)
    lines += ["", said, f"plan (as of {local_time(at, spec.timezone)}):"]
    lines += ["  " + ln for ln in plan.describe()]
    lines.append(f"  then segments in order: {', '.join(plan.order)}")
    history = _history_lines(project, name, at, state_dir)
    lines += history
    if plan.sequences:
        # Sequences are matched in a pass of their own (as-of joins over the step rows).
        lines.append("  sequences matched first, then everything else collected in one query")
    else:
        lines.append("  all collected in one query")
    seg = spec.segments[name]
    data: dict[str, Any] = {
        "segment": name,
        "kind": seg.kind,
        "description": seg.description,
        "as_of": at.isoformat(),
        "run": run["run_id"] if run else None,
        "shows": said,
        "where": _definition(seg.where) if seg.where is not None else None,
        "exclude": _definition(seg.exclude) if seg.exclude is not None else None,
        "words": describe_segment(spec, name),
        "order": plan.order,
        "history": [h.strip() for h in history],
        "plan": plan_json(plan),
    }
    return Explanation(lines, data)


def _history_lines(
    project: api.Project, name: str, at: datetime, state_dir: str | Path | None
) -> list[str]:
    """What the segment's history leaves read from the state (SPEC §2.6)."""
    seg = project.spec.segments[name]
    refs: list[str] = []
    columns: list[str] = []
    for root in (seg.where, seg.exclude):
        for c in graph.walk(root):
            if isinstance(c, m.SegmentRef) and c.history and c.name not in refs:
                refs.append(c.name)
            if isinstance(c, m.FieldCond) and c.ever and field_name(c) not in columns:
                columns.append(field_name(c))
    lines = [
        f"  history of segment {r}: its committed runs at or before as_of (joined_at, "
        "ever a member, last left), read from the state"
        for r in refs
    ]
    since: dict[str, str | None] = stored_since(project, at, state_dir) if columns else {}
    for col in columns:
        when = since.get(col)
        lines.append(
            f"  history of {col}: values stored at committed runs since {when}"
            if when
            else f"  history of {col}: no values stored yet (the next committed run stores them)"
        )
    return lines


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as data: scans with their aggregates, and each segment's IR as text."""
    return {
        "scans": [
            {
                "source": s.source,
                "types": list(s.types) if s.types is not None else None,
                "since": s.since.isoformat() if s.since else None,
                "aggregates": [
                    {
                        "name": a.name,
                        "what": describe_key(a.key, plan.timezone),
                        "rows": ir.render(a.flag),
                    }
                    for a in s.aggregates
                ],
            }
            for s in plan.scans
        ],
        "pooled": [{"sources": list(p.sources), "aggregates": list(p.names)} for p in plan.pooled],
        "per": [
            {
                "sources": list(ps.sources),
                "column": ps.column,
                "parts": [
                    {
                        "source": p.source,
                        "types": list(p.types) if p.types is not None else None,
                        "since": p.since.isoformat() if p.since else None,
                    }
                    for p in ps.parts
                ],
                "aggregates": [
                    {"name": a.name, "what": describe_per(a.key, plan.timezone)}
                    for a in ps.aggregates
                ],
            }
            for ps in plan.per_scans
        ],
        "segments": [{"segment": s.name, "rule": ir.render(s.rule)} for s in plan.segments],
    }


def explain_contact(
    project: api.Project,
    contact: str,
    as_of: str | None = None,
    state_dir: str | Path | None = None,
) -> Explanation:
    """Why a contact is in or out of each segment at the last committed run (or `as_of`),
    and its score rule by rule."""
    spec = project.spec
    at, run, said = which_run(project, as_of, state_dir)
    ev, _ = api.preview(project, at, state_dir=state_dir, detail=True)
    key = spec.contacts.key
    dtype = ev.contact_keys().dtype
    try:
        value = pl.Series([contact]).cast(dtype, strict=True)[0]
    except pl.exceptions.PolarsError as exc:
        raise UsageError(f"contact key {contact!r} is not a valid {dtype}") from exc
    row = ev.row(value)
    if row is None:
        raise UsageError(f"contact {key}={contact} is not in the contacts export")
    verdicts = contact_verdicts(spec, ev, row, stored_since(project, at, state_dir))
    if run is not None:
        _compare_with_run(project, verdicts, value, state_dir)
    verdicts.update({"contact": contact, "run": run["run_id"] if run else None, "shows": said})
    lines = [f"contact {key}={contact} as of {local_time(at, spec.timezone)}", said]
    lines += contact_lines(verdicts)
    return Explanation(lines, verdicts)


def stored_since(
    project: api.Project, at: datetime, state_dir: str | Path | None
) -> dict[str, str | None]:
    """For each column an `ever` leaf reads: since when the state stores its values (in the
    project timezone; None when no committed run at or before `at` stored them)."""
    fields = project.state(state_dir).read_manifest().fields
    out: dict[str, str | None] = {}
    for column in history_refs(project.spec)[1]:
        entry = fields.get(column)
        since = datetime.fromisoformat(entry["since"]) if entry else None
        ok = since is not None and since <= at
        out[column] = local_time(since, project.spec.timezone) if since and ok else None
    return out


def _compare_with_run(
    project: api.Project, verdicts: dict[str, Any], value: Any, state_dir: str | Path | None
) -> None:
    """Mark segments where the committed run recorded a different verdict (the inputs or
    the spec changed since that run)."""
    state = project.state(state_dir)
    manifest = state.read_manifest()
    key = project.spec.contacts.key
    for seg in verdicts["segments"]:
        cur = manifest.current.get(seg["segment"])
        if cur is None:
            continue
        snap = state.read_snapshot(cur["snapshot"], key)
        was = bool(snap.filter((pl.col(key) == value) & pl.col("member")).height)
        if was != seg["member"]:
            seg["recorded"] = (
                f"the last committed run recorded this contact as {'IN' if was else 'out'}; "
                "the inputs or the spec changed since"
            )
