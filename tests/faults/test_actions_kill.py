"""Killing segcli at any moment loses no delivery and never resends a done one (SPEC §2.9).

Each night a real `segcli run` subprocess, whose `mql` segment has an on_enter webhook and
export and an on_leave webhook, is SIGKILLed at a planned moment: during start-up, while
evaluating, during the commit, just as delivery starts, or once the (slow) endpoint on
127.0.0.1 has received a given number of batches. Then either `segcli deliver` or the next
night's run picks up what is pending; a last `segcli deliver` ends the test. Afterwards:

- every batch of every committed run was received at least once (exports: written), with
  the same body on every resend, and together the batches hold the run's changed contacts;
- no batch was received after its `done_at` (the endpoint's receive times are compared with
  the done markers), and nothing of a run that never committed was sent;
- nothing is left pending.

The checks are deterministic; only the phase each kill lands in depends on timing, and the
test prints where they landed, with the number of deliveries and resends.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from segcli.outputs import webhook
from segcli.outputs.delivery import pending
from segcli.state import outbox
from segcli.state.outbox import Delivery
from tests.actions_project import cli, write_contacts, write_spec
from tests.actions_server import Behaviour, Endpoint, Received

SEGCLI = Path(sys.executable).with_name("segcli")
NIGHTS = 10  # two kills per group: about 30 s on a loaded 2-core machine
CONTACTS = 40
BATCH = 4
DELAY = 0.08  # the endpoint answers every request this late


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook, "BACKOFF", 0.05)  # for the in-process `deliver`


def spec(root: Path, url: str) -> Path:
    hook = f'{{webhook: {{url: "{url}", batch: {BATCH}, columns: [email]}}}}'
    export = '{export: {path: "exports/{segment}-{change}-{run_id}.csv", columns: [email]}}'
    return write_spec(
        root,
        on_enter=f"[{hook}, {export}]",
        on_leave=f"[{hook}]",
        extra="state: {keep_runs: 100}\n",  # keep every run's done markers for the checks
    )


def night_contacts(root: Path, night: int) -> str:
    """Night `night`'s export (a different half of 32 contacts are MQLs); its as_of."""
    rng = random.Random(7000 + night)
    write_contacts(root, mqls=rng.sample(range(1, 33), 16), n=CONTACTS)
    return f"2026-11-{night + 1:02d}"


def spawn(cfg: Path, as_of: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SEGCLI), "run", "-c", str(cfg), "--as-of", as_of],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(proc: subprocess.Popen[str], mark: str) -> None:
    """Read the run's progress lines until `mark` (or its end)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith(mark):
            return


def measure(cfg: Path, as_of: str) -> dict[str, float]:
    """One uninterrupted run: seconds from the spawn to each progress mark and to the exit."""
    t0 = time.monotonic()
    proc = spawn(cfg, as_of)
    assert proc.stderr is not None
    marks: dict[str, float] = {}
    for line in proc.stderr:
        marks.setdefault(line.split(":")[0].strip(), time.monotonic() - t0)
    assert proc.wait() == 0
    marks["exit"] = time.monotonic() - t0
    return marks


def committed_runs(state: Path) -> list[dict[str, Any]]:
    return list(json.loads((state / "manifest.json").read_text())["runs"])


def done_at(state: Path, d: Delivery) -> dict[int, float]:
    """When each batch of `d` was recorded as delivered."""
    where = outbox.folder(state, d.run_id) / "done"
    return {
        b: float(json.loads((where / f"{d.id}.{b}").read_text())["done_at"])
        for b in outbox.done(state, d)
    }


def outcome(rc: int | None, state: Path, prev: bytes, since: float, sent: list[Received]) -> str:
    """What the killed run (spawned at `since`, wall clock) left behind."""
    if rc is not None:
        return "finished before the kill"
    if (state / "manifest.json").read_bytes() == prev:
        assert sent == []  # nothing is delivered before the commit
        return "not committed: state as before, nothing sent"
    marks = {
        (d.key(b), d.kind): at
        for d in outbox.deliveries(committed_runs(state))
        for b, at in done_at(state, d).items()
    }
    owed = sum(d.batches for d in outbox.deliveries(committed_runs(state)))
    by_it = sum(at >= since for at in marks.values())
    in_flight = any((r.key, "webhook") not in marks for r in sent)
    if len(marks) == owed:
        where = "committed, everything delivered"
    elif by_it == 0:
        where = "committed, nothing marked done yet"
    else:
        where = "committed, delivery cut short after some batches were marked done"
    return where + (" (a batch was received but not marked: it is sent again)" if in_flight else "")


def test_killed_runs_deliver_every_batch_and_never_after_done(tmp_path: Path) -> None:
    t_start = time.monotonic()
    root = tmp_path
    state = root / ".segcli"
    with Endpoint(Behaviour(delay=DELAY), lifetime=120.0) as ep:
        cfg = spec(root, ep.url)
        t = measure(cfg, night_contacts(root, 0))
        # Kill points, stratified within each group so the spread does not depend on luck:
        # (what to wait for, the span of the random delay after it).
        rnd = random.Random(20261101)
        groups: list[tuple[str | None, float]] = [
            (None, t["reading state"]),  # start-up: from the spawn, before the lock
            ("evaluating the plan", t["committing state"] - t["evaluating the plan"]),
            ("committing state", 1.2 * (t["delivering"] - t["committing state"])),
            ("delivering", 0.0),  # committed, delivery about to start
            ("received", 1.5 * DELAY),  # mid-delivery: after the endpoint got k = 2 or 3 batches
        ]
        per = NIGHTS // len(groups)
        plan = [
            (mark, span * (k + rnd.random()) / per, k + 2)
            for mark, span in groups
            for k in range(per)
        ]
        rnd.shuffle(plan)
        aimed: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        recovered_by: Counter[str] = Counter()

        for night in range(1, NIGHTS + 1):
            as_of = night_contacts(root, night)
            prev = (state / "manifest.json").read_bytes()
            mark, delay, k = plan[night - 1]
            seen, since = len(ep.received), time.time()
            proc = spawn(cfg, as_of)
            if mark == "received":
                wait_for(proc, "delivering")
                while proc.poll() is None and len(ep.received) < seen + k:
                    time.sleep(0.002)
            elif mark is not None:
                wait_for(proc, mark)
            time.sleep(delay)
            rc = proc.poll()
            if rc is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate()
            aimed[mark or "start-up"] += 1
            time.sleep(DELAY * 1.5)  # let the endpoint log a request the kill cut short
            outcomes[outcome(rc, state, prev, since, ep.received[seen:])] += 1
            if night % 2:  # `segcli deliver` now; otherwise the next night's run does it
                r = cli(root, "deliver")
                assert r.exit_code == 0, r.output
                recovered_by["segcli deliver"] += 1
            else:
                recovered_by["the next run"] += 1

        r = cli(root, "deliver")
        assert r.exit_code == 0, r.output
        time.sleep(DELAY * 1.5)
        received = list(ep.received)

    runs = committed_runs(state)
    assert pending(state, runs) == []
    assert "nothing pending" in cli(root, "deliver", "--list").stdout
    ds = outbox.deliveries(runs)
    by_key: dict[str, list[Received]] = {}
    for q in received:
        by_key.setdefault(q.key, []).append(q)
    batches = exports = late = 0
    expected_keys: set[str] = set()
    for d in ds:
        marks = done_at(state, d)
        assert sorted(marks) == list(range(1, d.batches + 1)), d.id
        payload = outbox.read_payload(state, d)["contact_id"].to_list()
        if d.kind == "export":
            exports += 1
            written = pl.read_csv(d.action["path"])
            assert written["contact_id"].to_list() == payload, d.id
            assert written.columns == ["contact_id", "email"]
            continue
        got: list[int] = []
        for b in range(1, d.batches + 1):
            key = d.key(b)
            expected_keys.add(key)
            batches += 1
            copies = by_key.get(key, [])
            assert any(200 <= q.status < 300 for q in copies), f"{key} never delivered"
            # Never received after its success was recorded; the same body on every resend.
            late += sum(q.at >= marks[b] for q in copies)
            assert len({q.body for q in copies}) == 1, key
            got += [c["contact_id"] for c in copies[0].json["contacts"]]
        assert got == payload, d.id
    # Nothing was sent that no committed run owes (a killed, uncommitted run sends nothing).
    assert set(by_key) == expected_keys

    resent = {k: len(v) - 1 for k, v in by_key.items() if len(v) > 1}
    report = {
        "kill points tried": NIGHTS,
        "aimed at": dict(sorted(aimed.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "recovered by": dict(recovered_by),
        "committed runs": len(runs),
        "webhook batches owed": batches,
        "exports written": exports,
        "webhook requests received": len(received),
        "batches received more than once (at least once allows it)": len(resent),
        "extra copies": sum(resent.values()),
        "received after done": late,
        "run seconds (uninterrupted)": round(t["exit"], 2),
        "test seconds": round(time.monotonic() - t_start, 1),
    }
    print("\nactions kill loop:", json.dumps(report, indent=2))
    assert late == 0
    assert sum(outcomes.values()) == NIGHTS
    # The point of the test: kills after the commit that left the run's deliveries undone.
    undone = ("committed, nothing", "committed, delivery cut short")
    assert sum(n for o, n in outcomes.items() if o.startswith(undone)) >= 3
