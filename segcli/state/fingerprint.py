"""Fingerprints: what a committed run records so that the next run can say what changed.

A segment's fingerprint covers everything that decides its members apart from the data and
the segments it refers to: its own definition (not its description, tags or expectations),
the content of its list files (`from_file`, `include_file`, `exclude_file`), and the scoring
models it uses (their rules, those read from a `rules_file` included). The spec fingerprint
covers the spec's text, every scoring model (so every `rules_file`) and every list file.
An edit to any of these is announced by the next run like an edit of the spec (SPEC §3.2).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from segcli.spec import graph
from segcli.spec import model as m


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:16]


def list_files(seg: m.Segment) -> list[str]:
    """The list files a segment reads, as written in the spec."""
    return [f for f in (seg.from_file, seg.include_file, seg.exclude_file) if f]


def _file_digest(spec: m.Spec, rel: str) -> str:
    try:
        return _digest((Path(spec.base_dir) / rel).read_bytes())
    except OSError:
        return "unreadable"  # the run reports the file itself


def models_used(seg: m.Segment) -> list[str]:
    """The scoring models a segment's conditions and `top` use, in order of appearance."""
    found: list[str] = []
    for root in (seg.where, seg.exclude):
        for c in graph.walk(root):
            name = getattr(c, "model", None)
            if isinstance(name, str) and name not in found:
                found.append(name)
    if seg.top is not None:
        for name in (seg.top.by.score, seg.top.by.change_model):
            if name and name not in found:
                found.append(name)
    return found


def segment_fingerprint(spec: m.Spec, name: str) -> str:
    """What decides segment `name`'s members, as a short stable hash."""
    seg = spec.segments[name]
    # Actions (on_enter/on_leave) say what to do with changes, not who is a member.
    core = replace(seg, description=None, tags=(), expect=None, on_enter=(), on_leave=())
    files = [f"{f}={_file_digest(spec, f)}" for f in list_files(seg)]
    models = [repr(spec.scoring[n]) for n in models_used(seg) if n in spec.scoring]
    return _digest(repr(core), *files, *models)


def spec_fingerprint(spec: m.Spec, text: str) -> str:
    """The spec's text, every scoring model (rules_file rows included) and every list file."""
    files = sorted({f for seg in spec.segments.values() for f in list_files(seg)})
    return _digest(
        text,
        *(repr(spec.scoring[n]) for n in sorted(spec.scoring)),
        *(f"{f}={_file_digest(spec, f)}" for f in files),
    )
