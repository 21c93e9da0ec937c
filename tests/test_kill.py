"""Killing segcli at any moment loses nothing (SPEC §3).

A project of a few thousand contacts and eleven segments of every kind runs nightly on a
changing export. Each night a real `segcli run` subprocess is SIGKILLed after a delay spread
over a run's measured duration; then the state must be exactly the last committed one or the
new one, its snapshots must read, and a retry of the night (which takes over the dead
process's lock) must produce exactly what a never-killed reference sequence produced.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from segcli import api
from segcli.demo.sample import generate
from segcli.state.store import StateDir

SEGCLI = Path(sys.executable).with_name("segcli")
NIGHTS = 20
DAY0 = datetime(2026, 11, 20, tzinfo=UTC)

SPEC = """\
version: 1
timezone: UTC
sources:
  contacts: {path: contacts.parquet, key: contact_id}
  email: {path: email_events.parquet, key: contact_id, time: occurred_at, type: event_type}
  web: {path: web_events.parquet, key: contact_id, time: occurred_at, type: event_type}
state: {keep_runs: 4}
segments:
  vps: {kind: static, where: {field: title, matches: "^(VP|Vice President)"}}
  vps_semi: {kind: semi_dynamic, where: {field: title, matches: "^(VP|Vice President)"}}
  us: {where: {field: country, eq: US}, include_file: lists/vip.csv, exclude_file: lists/dne.csv}
  clickers_7d: {where: {event: {source: email, type: click, within: 7d}}}
  clickers_semi:
    kind: semi_dynamic
    where: {event: {source: email, type: click, within: 7d, count: {gte: 2}}}
  mql: {where: {field: lifecycle_stage, in: [mql, sql]}}
  web_active: {where: {event: {source: web, type: page_view, within: 30d, count: {gte: 3}}}}
  customers:
    kind: static
    where: {field: lifecycle_stage, eq: customer}
    include_file: lists/vip.csv
  mql_not_customer: {where: {segment: mql}, exclude: {segment: customers}}
  hot: {kind: semi_dynamic, where: {all: [{segment: clickers_7d}, {segment: mql}]}}
  oldest_us: {where: {segment: us}, top: {n: 50, by: {field: age}}}
"""


class Exports:
    """Night i's exports: the base sample with ~2% of contacts deleted (a different 2% each
    night, so some come back), ~5% changing stage and ~3% title, clicks added every night."""

    def __init__(self, root: Path) -> None:
        self.root = root
        generate(root, contacts=3000, email_events=30_000, web_events=20_000, fmt="parquet")
        self.contacts = pl.read_parquet(root / "contacts.parquet")
        self.email = pl.read_parquet(root / "email_events.parquet")
        (root / "lists").mkdir(exist_ok=True)

    def write(self, night: int) -> datetime:
        at = DAY0 + timedelta(days=night)
        rng = np.random.default_rng(1000 + night)
        ids = self.contacts["contact_id"].to_numpy()
        gone = rng.choice(ids, size=60, replace=False)
        stage = pl.DataFrame(
            {
                "contact_id": rng.choice(ids, size=150, replace=False),
                "new_stage": rng.choice(["mql", "sql", "customer", "lead"], size=150),
            }
        )
        title = pl.DataFrame(
            {
                "contact_id": rng.choice(ids, size=90, replace=False),
                "new_title": rng.choice(["VP Sales", "Engineer"], size=90),
            }
        )
        contacts = (
            self.contacts.filter(~pl.col("contact_id").is_in(gone.tolist()))
            .join(stage, on="contact_id", how="left")
            .join(title, on="contact_id", how="left")
            .with_columns(
                pl.coalesce("new_stage", "lifecycle_stage").alias("lifecycle_stage"),
                pl.coalesce("new_title", "title").alias("title"),
            )
            .drop("new_stage", "new_title")
        )
        clicks = [self.email]
        for j in range(1, night + 1):  # clicks accumulate across exports
            r = np.random.default_rng(5000 + j)
            n = 80
            when = DAY0 + timedelta(days=j)
            clicks.append(
                pl.DataFrame(
                    {
                        "contact_id": r.choice(ids, size=n),
                        "occurred_at": [
                            when - timedelta(hours=float(h)) for h in r.uniform(0, 60, n)
                        ],
                        "event_type": ["click"] * n,
                        "campaign_id": ["cmp-kill"] * n,
                        "url": ["/pricing"] * n,
                    },
                    schema=self.email.schema,
                )
            )
        contacts.write_parquet(self.root / "contacts.parquet")
        pl.concat(clicks).write_parquet(self.root / "email_events.parquet")
        for name, k in (("vip", 6), ("dne", 6)):
            keys = rng.choice(ids, size=k, replace=False)
            pl.DataFrame({"contact_id": keys}).write_csv(self.root / "lists" / f"{name}.csv")
        return at


def snapshots(state: Path) -> dict[str, pl.DataFrame]:
    """Every segment's current snapshot, read through the manifest."""
    sd = StateDir(state)
    manifest = sd.read_manifest()
    return {
        n: sd.read_snapshot(c["snapshot"], "contact_id").sort("contact_id")
        for n, c in manifest.current.items()
    }


def outputs(out: Path, kind: str) -> dict[str, pl.DataFrame]:
    return {p.stem: pl.read_parquet(p) for p in sorted((out / kind).glob("*.parquet"))}


def files_state(out: Path) -> dict[str, int]:
    """Every output file's mtime, leaving out a run's staging folder."""
    return (
        {
            str(p): p.stat().st_mtime_ns
            for p in out.rglob("*")
            if p.is_file() and not p.relative_to(out).parts[0].startswith(".segcli-stage-")
        }
        if out.exists()
        else {}
    )


def measure(cfg: Path, at: datetime) -> tuple[float, float, float]:
    """One uninterrupted subprocess run: seconds until it reads the state (holding the lock),
    until it starts committing the state, and until it exits."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(SEGCLI), "run", "-c", str(cfg), "--as-of", at.isoformat()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    marks: dict[str, float] = {}
    for line in proc.stderr:
        for mark in ("reading state", "committing state"):
            if line.startswith(mark):
                marks.setdefault(mark, time.monotonic() - t0)
    assert proc.wait() == 0
    return marks["reading state"], marks["committing state"], time.monotonic() - t0


def phase_of(
    rc: int | None,
    state: Path,
    prev_manifest: bytes,
    out: Path,
    at: datetime,
    pid: int,
) -> str:
    """Where the kill landed, told from what the killed run left behind."""
    if rc is not None:
        return "10 finished before the kill"
    lock = state / "lock"
    held = lock.exists() and json.loads(lock.read_text()).get("pid") == pid
    if (state / "manifest.json").read_bytes() != prev_manifest:
        return "8 after the manifest replace, cleaning up" if held else "9 released, exiting"
    known = {r["run_id"] for r in json.loads(prev_manifest)["runs"]}
    dirs = [p.name for p in (state / "runs").iterdir()]
    if any(not d.startswith(".") and d not in known for d in dirs):
        return "7 snapshots in place, manifest not yet replaced"
    if any(d.startswith(".tmp-") for d in dirs):
        return "6 writing snapshots"
    stages = list(out.glob(".segcli-stage-*"))
    if stages and (stages[0] / "run.json").exists():
        return "5 outputs written, state not yet committed"
    if stages:
        return "4 writing outputs"
    if held:
        return "3 holding the lock: reading state, evaluating"
    return "2 starting up (no lock yet)"


def check_manifest(state: Path, prev: dict[str, Any], prev_bytes: bytes, at: datetime) -> bool:
    """The manifest is the previous commit or the new one, never anything in between;
    every snapshot it names reads. Returns whether the killed run committed."""
    raw = (state / "manifest.json").read_bytes()
    manifest = json.loads(raw)
    committed = raw != prev_bytes
    if committed:
        new_run = manifest["runs"][-1]
        assert datetime.fromisoformat(new_run["as_of"]) == at
        assert new_run["run_id"] not in {r["run_id"] for r in prev["runs"]}
        old_ids = [r["run_id"] for r in manifest["runs"][:-1]]
        prev_ids = [r["run_id"] for r in prev["runs"]]
        assert old_ids == [i for i in prev_ids if i in old_ids]  # only pruning removed runs
        assert all(c["run_id"] == new_run["run_id"] for c in manifest["current"].values())
    sd = StateDir(state)
    parsed = sd.read_manifest()  # validates the shape
    for r in parsed.runs:
        for name in r["segments"]:
            assert (state / "runs" / r["run_id"] / f"{name}.parquet").is_file()
    for c in parsed.current.values():
        sd.read_snapshot(c["snapshot"], "contact_id")
    return committed


def test_kill_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t_start = time.monotonic()
    root = tmp_path / "project"
    exports = Exports(root)
    cfg = root / "segments.yaml"
    cfg.write_text(SPEC, encoding="utf-8")
    state, out = root / ".segcli", root / "out"
    ref_state, ref_out = tmp_path / "ref_state", tmp_path / "ref_out"

    at = exports.write(0)
    # How long the state commit itself takes (snapshots, fsyncs, manifest): it is short.
    commit, spent = StateDir.commit, []

    def timed_commit(self: StateDir, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return commit(self, *args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t)

    monkeypatch.setattr(StateDir, "commit", timed_commit)
    api.run(api.load(cfg), as_of=at, state_dir=ref_state, out_dir=ref_out)
    monkeypatch.undo()
    t_lock, t_commit, t_end = measure(cfg, at)
    t_manifest = spent[0]
    # Kill points: a few during start-up (timed from the spawn), the rest timed from the
    # run's own progress lines, so that start-up jitter does not decide where they land:
    # spread over the part holding the lock, and over the commit (short, and where a kill
    # matters most). Each group is stratified, so the spread does not depend on luck.
    rnd = random.Random(20261120)
    groups = [
        (None, t_lock, NIGHTS // 6),
        ("reading state", t_commit - t_lock + t_manifest, NIGHTS // 2 - NIGHTS // 6),
        ("committing state", 1.2 * t_manifest, NIGHTS - NIGHTS // 2),
    ]
    plan = [(mark, span * (k + rnd.random()) / n) for mark, span, n in groups for k in range(n)]
    rnd.shuffle(plan)
    phases: Counter[str] = Counter()
    committed_by_killed = 0
    took_over = 0

    for night in range(1, NIGHTS + 1):
        at = exports.write(night)
        api.run(api.load(cfg), as_of=at, state_dir=ref_state, out_dir=ref_out)
        prev_bytes = (state / "manifest.json").read_bytes()
        prev = json.loads(prev_bytes)
        out_before = files_state(out)
        mark, delay = plan[night - 1]
        proc = subprocess.Popen(
            [str(SEGCLI), "run", "-c", str(cfg), "--as-of", at.isoformat()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        if mark is not None:
            for line in proc.stderr:
                if line.startswith(mark):
                    break
        time.sleep(delay)
        rc = proc.poll()
        if rc is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
        phases[phase_of(rc, state, prev_bytes, out, at, proc.pid)] += 1

        committed = check_manifest(state, prev, prev_bytes, at)
        if not committed:  # out/ is exactly as the last committed run left it
            assert files_state(out) == out_before, night
        committed_by_killed += committed
        lock_left = (state / "lock").exists()
        if lock_left:
            assert json.loads((state / "lock").read_text())["pid"] == proc.pid

        # The retry of the night: takes over the dead process's lock and says so.
        result = api.run(api.load(cfg), as_of=at)
        notes = [w for w in result.warnings if "stale lock" in w]
        assert (len(notes) == 1 and f"pid {proc.pid}" in notes[0]) if lock_left else not notes
        took_over += bool(notes)

        # Nothing a killed run left behind survives a successful run.
        manifest = json.loads((state / "manifest.json").read_text())
        ids = {r["run_id"] for r in manifest["runs"]}
        assert {p.name for p in (state / "runs").iterdir()} == ids
        assert sorted(p.name for p in state.iterdir()) == [".segcli-state", "manifest.json", "runs"]
        assert not list(out.glob(".segcli-stage-*"))
        # out/ holds exactly the files the last committed run names, nothing half-moved.
        assert (
            json.loads((out / "run.json").read_text())["run_id"] == manifest["runs"][-1]["run_id"]
        )
        assert len(manifest["runs"]) <= 4 + 1  # keep_runs (+ a run still holding a snapshot)

        # Exactly what the never-killed sequence has.
        got, want = snapshots(state), snapshots(ref_state)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name].equals(want[name]), (night, name)
        got_seg, want_seg = outputs(out, "segments"), outputs(ref_out, "segments")
        assert got_seg.keys() == want_seg.keys()
        for name in want_seg:
            assert got_seg[name].equals(want_seg[name]), (night, name)
        if not committed:  # a committed kill makes the retry a no-change re-run
            for name, df in outputs(ref_out, "changes").items():
                assert outputs(out, "changes")[name].equals(df), (night, name)

    stray_outputs = [p.name for p in out.rglob(".*tmp*")]
    report = {
        "nights": NIGHTS,
        "run seconds (to lock, to commit, to exit; commit)": [
            round(t, 3) for t in (t_lock, t_commit, t_end, t_manifest)
        ],
        "kill phases": dict(sorted(phases.items())),
        "killed runs that had committed": committed_by_killed,
        "locks taken over": took_over,
        "stray temporary output files": len(stray_outputs),
        "test seconds": round(time.monotonic() - t_start, 1),
    }
    print("\nkill loop:", json.dumps(report, indent=2))
    assert stray_outputs == []
    assert sum(phases.values()) == NIGHTS
    assert sum(n for p, n in phases.items() if p[0] in "345678") >= 2
