"""Ctrl-C (a real SIGINT to a real `segcli run` process) at random moments, start-up
included: the exit code is 0 (finished first) or 4 ("interrupted"), there is never a
traceback, the lock is always released, and the state and out/ are the last committed run's
or the new one's, never anything in between."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from segcli.state.store import StateDir
from tests.faults.common import ENV
from tests.test_state import click, contact, make_project, write_export

SEGCLI = Path(sys.executable).with_name("segcli")
PROBES = 10
KILLS = 4


def spawn(cfg: Path, night: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SEGCLI), "run", "-c", str(cfg), "--as-of", f"2026-03-{night:02d}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV},
    )  # fmt: skip


def published(out: Path) -> dict[str, bytes]:
    """out/'s files outside a run's staging folder, with their content."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in out.rglob("*")
        if p.is_file() and not p.relative_to(out).parts[0].startswith(".segcli-stage-")
    }


def test_ctrl_c_at_random_moments(tmp_path: Path) -> None:
    cfg = make_project(tmp_path)
    write_export(
        tmp_path,
        [contact(i, "VP Sales" if i % 3 else "Analyst") for i in range(1, 400)],
        [click(i, "2026-02-20T10:00:00") for i in range(1, 400, 2)],
        {"vip": [3]},
    )
    state, out = tmp_path / ".segcli", tmp_path / "out"
    t0 = time.monotonic()
    first = spawn(cfg, 1)
    assert first.wait() == 0, first.communicate()
    span = time.monotonic() - t0
    rnd = random.Random(14)
    # Stratified over a whole run (start-up included), plus one at once.
    delays = [0.0] + [span * (k + rnd.random()) / (PROBES - 1) for k in range(PROBES - 1)]
    delays[1] = max(delays[1], 0.15)  # one surely in segcli's own start-up (imports)
    codes: dict[int, int] = {}
    for night, delay in enumerate(delays, start=2):
        before = (state / "manifest.json").read_bytes()
        proc = spawn(cfg, night)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        codes[proc.returncode] = codes.get(proc.returncode, 0) + 1
        # -SIGINT or Python's own "Fatal Python error: init...": the signal came while the
        # interpreter itself was starting (before any segcli code) or finishing (after
        # segcli's last line): Python's default action ends it, as for any program. The
        # checks below still hold.
        python_own = proc.returncode == -signal.SIGINT or "Fatal Python error: init" in stderr
        if not python_own:
            assert proc.returncode in (0, 4), (delay, proc.returncode, stderr)
            assert "Traceback" not in stdout + stderr, (delay, stderr)
        if proc.returncode == 4:
            assert "interrupted" in stderr, (delay, stderr)
        assert not (state / "lock").exists(), (delay, stderr)
        manifest = StateDir(state).read_manifest()
        committed = (state / "manifest.json").read_bytes() != before
        last = manifest.runs[-1]
        # out/ is the last committed run's, whole: its run.json, no staging folder left.
        run_json = json.loads((out / "run.json").read_text())
        assert run_json["run_id"] == last["run_id"], (delay, committed)
        assert not list(out.glob(".segcli-stage-*"))
    assert sum(codes.values()) == PROBES
    assert codes.get(4, 0) >= KILLS, codes  # most probes did interrupt a run
    print("\nCtrl-C probes by exit code:", codes)


def test_kill_at_random_moments(tmp_path: Path) -> None:
    """SIGKILL (nothing can be held back): the state is the last commit or the new one, out/
    never holds a half-moved run once the next run has started, and that next run takes over
    the dead process's lock and ends with out/ naming the run the state committed."""
    cfg = make_project(tmp_path)
    write_export(
        tmp_path,
        [contact(i, "VP Sales" if i % 3 else "Analyst") for i in range(1, 400)],
        [click(i, "2026-02-20T10:00:00") for i in range(1, 400, 2)],
        {"vip": [3]},
    )
    state, out = tmp_path / ".segcli", tmp_path / "out"
    t0 = time.monotonic()
    assert spawn(cfg, 1).wait() == 0
    span = time.monotonic() - t0
    rnd = random.Random(1414)
    for k, night in enumerate(range(2, 2 + KILLS)):
        before = (state / "manifest.json").read_bytes()
        out_before = published(out)
        proc = spawn(cfg, night)
        time.sleep(span * (0.3 + 0.7 * (k + rnd.random()) / (KILLS)))
        proc.kill()
        proc.communicate()
        manifest = StateDir(state).read_manifest()  # never corrupt
        committed = (state / "manifest.json").read_bytes() != before
        if not committed:  # out/ is exactly as the last committed run left it
            assert published(out) == out_before
        retry = spawn(cfg, night)
        _, stderr = retry.communicate(timeout=60)
        assert retry.returncode == 0, stderr
        assert not (state / "lock").exists()
        last = StateDir(state).read_manifest().runs[-1]
        assert json.loads((out / "run.json").read_text())["run_id"] == last["run_id"]
        assert not list(out.glob(".segcli-stage-*"))
        assert manifest.runs[-1]["run_id"] in {
            r["run_id"] for r in StateDir(state).read_manifest().runs
        }


ALLOCATOR_PROBE = """
import os, sys
import segcli
import segcli.entry as entry
assert "polars" not in sys.modules, "polars imported before the allocator is configured"
sys.argv = ["segcli", "--version"]
try:
    entry.main()
except SystemExit:
    pass
print(os.environ["_RJEM_MALLOC_CONF"])
"""


def test_the_allocator_is_configured_before_polars_loads_unless_the_user_did() -> None:
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    run = subprocess.run(
        [sys.executable, "-c", ALLOCATOR_PROBE], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    # Polars puts its own defaults first; the last setting of a key wins (jemalloc's rule).
    conf = run.stdout.strip().splitlines()[-1]
    assert conf.endswith(",dirty_decay_ms:2000,muzzy_decay_ms:2000"), conf
    env["_RJEM_MALLOC_CONF"] = "dirty_decay_ms:0"
    run = subprocess.run(
        [sys.executable, "-c", ALLOCATOR_PROBE], env=env, capture_output=True, text=True
    )
    conf = run.stdout.strip().splitlines()[-1]
    assert conf.endswith(",dirty_decay_ms:0") and "2000" not in conf, conf
