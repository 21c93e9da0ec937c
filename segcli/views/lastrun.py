"""Which committed run a view shows, read from the state (never from whatever is in `out/`).

`show`, `report`, `diff` and `history` agree with the last committed run (SPEC §3.2): members
come from the state's snapshots, and files that only the outputs hold (scores) are read from
the folder that run wrote to, after checking that its `run.json` names that very run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from segcli import storage
from segcli.errors import StateError
from segcli.outputs.files import committed_file
from segcli.state.store import Manifest, StateDir
from segcli.storage import Loc


def local_time(at: str | datetime, timezone: str) -> str:
    """An instant as a person reads it: ISO 8601 in the project timezone, with its offset."""
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(ZoneInfo(timezone)).isoformat()


@dataclass(frozen=True)
class RunRef:
    """One committed run as a view names it."""

    run_id: str
    as_of: datetime  # UTC
    timezone: str

    @property
    def local_as_of(self) -> str:
        return local_time(self.as_of, self.timezone)

    def label(self) -> str:
        return f"run {self.run_id}, as of {self.local_as_of}"

    def to_json(self) -> dict[str, str]:
        return {"run_id": self.run_id, "as_of": self.as_of.isoformat()}


def run_ref(record: dict[str, Any], timezone: str) -> RunRef:
    """The RunRef of a manifest run record."""
    return RunRef(record["run_id"], datetime.fromisoformat(record["as_of"]), timezone)


@dataclass
class LastRun:
    """The state's committed history, seen from its newest run."""

    state: StateDir
    manifest: Manifest
    key: str
    timezone: str

    @property
    def record(self) -> dict[str, Any]:
        return self.manifest.runs[-1]

    @property
    def ref(self) -> RunRef:
        return run_ref(self.record, self.timezone)

    def segment_ref(self, name: str) -> RunRef:
        """The run that last computed NAME (the last run, unless it ran other segments only)."""
        return run_ref(self._record(self._current(name)["run_id"]), self.timezone)

    def members(self, name: str) -> pl.DataFrame:
        """NAME's members after the run that last computed it: key, joined_at, source."""
        snap = self.state.read_snapshot(self._current(name)["snapshot"], self.key)
        return snap.filter(pl.col("member")).select(self.key, "joined_at", "source")

    def has(self, name: str) -> bool:
        return name in self.manifest.current

    def _current(self, name: str) -> dict[str, Any]:
        cur = self.manifest.current.get(name)
        if cur is None:
            raise StateError(
                f"no committed run in {self.state.path} has computed segment '{name}': "
                "run `segcli run` first"
            )
        return cur

    def _record(self, run_id: str) -> dict[str, Any]:
        return next(r for r in self.manifest.runs if r["run_id"] == run_id)

    def outputs_dir(self, given: Loc | None, default: Loc) -> Loc:
        """Where the last run wrote its files: `given` (the outputs were moved), else the
        folder the run recorded, else the default `out/`."""
        recorded = self.record.get("out_dir")
        return given or (storage.location(recorded) if recorded else default)

    def output_file(self, stem: str, given: Loc | None, default: Loc) -> Loc:
        """A file of the last run's outputs (`scores`, `segments/NAME`), after checking that
        the folder holds that run's outputs and not another's."""
        out = self.outputs_dir(given, default)
        ref = self.ref
        try:
            run_json = committed_file(out, ref.run_id, "run.json")
            found = json.loads(run_json.read_text(encoding="utf-8")).get("run_id")
        except (OSError, ValueError, AttributeError):
            found = None
        if found != ref.run_id:
            held = f"holds run {found}'s outputs" if found else "holds no run.json"
            raise StateError(
                f"{out} {held}, not those of the last committed {ref.label()}: pass "
                "--out with the folder that run wrote to, or run `segcli run` again"
            )
        fmt = self.record.get("format")
        order = [fmt] if fmt in ("parquet", "csv") else ["parquet", "csv"]
        for ext in order:
            path = committed_file(out, ref.run_id, f"{stem}.{ext}")
            if path.is_file():
                return path
        raise StateError(f"{out} lacks {stem}.{order[0]} of the last committed {ref.label()}")


def last_run(state: StateDir, key: str, timezone: str) -> LastRun:
    """The state's last committed run; StateError when there is none yet."""
    manifest = state.read_manifest()
    if not manifest.runs:
        raise StateError(f"no committed run in {state.path}: run `segcli run` first")
    return LastRun(state, manifest, key, timezone)


def read_frame(path: Loc) -> pl.DataFrame:
    """An output file, Parquet or CSV by its extension."""
    with storage.source(path) as at:
        return pl.read_parquet(at) if path.suffix == ".parquet" else pl.read_csv(at)
