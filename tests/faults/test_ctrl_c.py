"""Ctrl-C at each step of a run, in-process (fast and exact; the random real-SIGINT and
SIGKILL probes are in tests/test_interrupt.py): exit 4 "interrupted", no traceback, the lock
released, and out/ and the state as the last committed run left them, or, once the commit is
under way, the new run's, whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from segcli.state.store import StateDir
from tests.faults.common import ENV, assert_clean, invoke, tree
from tests.faults.test_state import project

STEPS = {
    # where Ctrl-C lands -> whether the run is committed afterwards
    "taking the lock": ("segcli.state.store.acquire_lock", False),
    "reading the state": ("segcli.state.store.StateDir.read_manifest", False),
    "evaluating": ("segcli.api.execute", False),
    "writing outputs": ("segcli.outputs.files.write_frame", False),
    "writing run.json": ("segcli.api.write_json", False),
    "committing": ("segcli.state.store.StateDir.commit", False),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_ctrl_c_at_each_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    project(tmp_path)
    assert_clean(invoke(["run", "--as-of", "2026-03-01"], tmp_path), 0)
    before = tree(tmp_path)
    target, _ = STEPS[step]
    calls = {"n": 0}

    def interrupted(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        raise KeyboardInterrupt

    if step == "reading the state":  # the first read is the run's own, after the lock
        real = StateDir.read_manifest

        def read_then_interrupt(self: StateDir) -> object:
            calls["n"] += 1
            if calls["n"] == 1:
                raise KeyboardInterrupt
            return real(self)

        monkeypatch.setattr(target, read_then_interrupt)
    else:
        monkeypatch.setattr(target, interrupted)
    res = invoke(["run", "--as-of", "2026-03-02"], tmp_path)
    monkeypatch.undo()
    assert calls["n"] >= 1, "the step was never reached"
    assert_clean(res, 4, "interrupted")
    assert tree(tmp_path) == before  # out/, state, lock: all as committed
    assert_clean(invoke(["run", "--as-of", "2026-03-02"], tmp_path), 0)


def test_ctrl_c_during_the_commit_is_held_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGINT that arrives while the commit is under way waits until the commit and the
    move of the outputs are done: the run is then whole, and reported as interrupted."""
    project(tmp_path)
    assert_clean(invoke(["run", "--as-of", "2026-03-01"], tmp_path), 0)
    real = StateDir.commit

    def commit_with_sigint(self: StateDir, *args: object, **kwargs: object) -> object:
        os.kill(os.getpid(), signal.SIGINT)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(StateDir, "commit", commit_with_sigint)
    res = invoke(["run", "--as-of", "2026-03-02"], tmp_path)
    monkeypatch.undo()
    assert_clean(res, 4, "interrupted")
    state = StateDir(tmp_path / ".segcli")
    last = state.read_manifest().runs[-1]
    assert last["as_of"].startswith("2026-03-02")
    assert (tmp_path / "out" / "run.json").read_text().count(last["run_id"]) == 1
    assert not list((tmp_path / "out").glob(".segcli-stage-*"))
    assert not (tmp_path / ".segcli" / "lock").exists()


def test_ctrl_c_during_start_up_has_no_traceback(tmp_path: Path) -> None:
    """A real process, interrupted while it imports: exit 4, `interrupted`, no traceback."""
    project(tmp_path)
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("segcli")), "run", "--as-of", "2026-03-01"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **ENV, "PYTHONPROFILEIMPORTTIME": "1"},
    )  # fmt: skip
    assert proc.stderr is not None
    # -X importtime lines show segcli's own imports have begun: then interrupt.
    deadline = time.monotonic() + 30
    for line in proc.stderr:
        if "segcli.cli" in line or "polars" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 4, rest
    assert "interrupted" in rest and "Traceback" not in rest
    assert not (tmp_path / ".segcli" / "lock").exists()
    assert not (tmp_path / "out").exists()


# A library's callback (Polars calling Python: a plugin, a dtype) interrupted by Ctrl-C: the
# KeyboardInterrupt cannot propagate there, so Python prints it as "Exception ignored" with a
# traceback, and the library fails with an error of its own (seen once in CI: "TypeError:
# '<unprintable str object>' is not a Polars data type", reported as an internal error).
CALLBACK_PROBE = """
import os, signal, sys, time
from segcli import api

class Callback:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C lands while the library runs our code
        time.sleep(0.05)

def execute(*args, **kwargs):
    Callback()  # gone at once: its KeyboardInterrupt cannot be raised, only printed
    raise ERROR

from segcli.errors import DataError
ERROR = {error}

api.execute = execute
sys.argv = ["segcli", "run", "--as-of", "2026-03-02"]
from segcli.entry import main
main()
"""


@pytest.mark.parametrize(
    "error",
    [
        "TypeError(\"'<unprintable str object>' is not a Polars data type\")",  # as seen
        "DataError('evaluating the plan failed: a callback failed')",  # a Polars error, wrapped
    ],
)
def test_ctrl_c_inside_a_library_callback_is_interrupted_not_another_error(
    tmp_path: Path, error: str
) -> None:
    project(tmp_path)
    assert_clean(invoke(["run", "--as-of", "2026-03-01"], tmp_path), 0)
    before = tree(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", CALLBACK_PROBE.replace("{error}", error)],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **ENV}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "interrupted", proc.stderr
    assert "Traceback" not in proc.stderr and "error" not in proc.stderr, proc.stderr
    assert tree(tmp_path) == before  # nothing committed, the lock released


def test_other_unraisable_errors_are_still_printed(capsys: pytest.CaptureFixture[str]) -> None:
    from segcli import entry

    class Broken:
        def __del__(self) -> None:
            raise ValueError("a bug in a finaliser")

    old = sys.unraisablehook
    sys.unraisablehook = entry._unraisable
    try:
        Broken()
    finally:
        sys.unraisablehook = old
    assert "a bug in a finaliser" in capsys.readouterr().err
