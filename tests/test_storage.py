"""The state and the outputs at a URI (SPEC §3.1): `--state s3://…`, `--out s3://…`.

Runs against moto's S3 server on loopback (the `s3` fixture: a fresh bucket each test): the
demo's runs with state and outputs in the bucket write what runs on local folders write,
file by file; the views read them back; the lock is a conditional create; a failed commit
leaves the state and the outputs as they were; and a store that refuses (no credentials, no
bucket, no fsspec implementation) is a clear exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import s3_env
from test_engines_duckdb import ROOT, _by_order, _frames, _same

from segcli import api, storage
from segcli.errors import StateError, UsageError, WriteError
from segcli.state import store
from segcli.storage import Remote
from segcli.views import commands as views


def _demo(root: Path) -> api.Project:
    shutil.copytree(ROOT / "sample_data", root / "sample_data")
    shutil.copy(ROOT / "segments.yaml", root / "segments.yaml")
    return api.load(root / "segments.yaml")


def _download(uri: str, into: Path) -> Path:
    """A local copy of everything under `uri`."""
    loc = storage.location(uri)
    assert isinstance(loc, Remote)
    loc.fs.get(loc.path + "/", str(into) + "/", recursive=True)
    return into


def _files(out: Path, state: Path) -> dict[str, pl.DataFrame]:
    """Every Parquet file of the outputs and of the state (run folders by position)."""
    order = [r["run_id"] for r in json.loads((state / "manifest.json").read_text())["runs"]]
    found = {f"out/{k}": v for k, v in _frames(out).items()}
    found.update({f"state/{k}": v for k, v in _by_order(_frames(state), order).items()})
    return found


# ------------------------------------------------------------------ naming a place


def test_a_local_path_or_file_uri_is_a_path() -> None:
    assert storage.location("out") == Path("out")
    assert storage.location("/srv/segcli/state") == Path("/srv/segcli/state")
    assert storage.location("file:///srv/seg%20cli") == Path("/srv/seg cli")
    with pytest.raises(UsageError, match="file:///path"):
        storage.location("file://otherhost/srv/state")


def test_a_uri_is_a_remote_that_keeps_its_name() -> None:
    loc = storage.location("memory://segcli-test/state")
    assert isinstance(loc, Remote)
    assert str(loc / "runs" / "x.parquet").endswith("/segcli-test/state/runs/x.parquet")
    assert (loc / "a.parquet").suffix == ".parquet" and (loc / "a").parent == loc


@pytest.mark.parametrize(
    ("uri", "hint"),
    [("nosuch://bucket/state", "no file system for nosuch://"), ("gs://bucket/x", "segcli[gcs]")],
)
def test_a_store_without_its_library_names_the_extra(uri: str, hint: str) -> None:
    if uri.startswith("gs:") and _installed("gcsfs"):
        pytest.skip("gcsfs is installed here")
    with pytest.raises(UsageError, match=hint.replace("[", r"\[").replace("]", r"\]")):
        storage.location(uri)


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ runs on S3


def test_demo_runs_on_s3_write_what_local_runs_write(tmp_path: Path, s3: str) -> None:
    """Two runs of the demo (the second reads the first's snapshots, stored values and
    history from the bucket) write the same members, changes, scores and state snapshots
    as two runs on local folders, file by file, and record the URI as where the outputs
    are."""
    local, remote = _demo(tmp_path / "local"), _demo(tmp_path / "remote")
    state, out = f"{s3}/segcli/state", f"{s3}/segcli/out"
    for at in ("2026-11-13", "2026-11-20"):
        want = api.run(local, as_of=at, actions=False)
        got = api.run(remote, as_of=at, actions=False, state_dir=state, out_dir=out)
        assert [s.summary() for s in got.segments] == [s.summary() for s in want.segments]
        assert str(got.out_dir) == out
    files = _files(tmp_path / "local" / "out", tmp_path / "local" / ".segcli")
    fetched = _files(
        _download(out, tmp_path / "got" / "out"), _download(state, tmp_path / "got" / "state")
    )
    assert sorted(fetched) == sorted(files)
    assert any(k.startswith("state/runs/1/") for k in files)  # both runs compared
    for name in files:
        _same(files[name], fetched[name], name)
    manifest = json.loads((tmp_path / "got" / "state" / "manifest.json").read_text())
    assert manifest["runs"][-1]["out_dir"] == out
    run_json = json.loads((tmp_path / "got" / "out" / "run.json").read_text())
    assert run_json["out_dir"] == out and run_json["run_id"] == got.run_id
    assert not (tmp_path / "remote" / "out").exists()  # nothing written locally instead
    assert not (tmp_path / "remote" / ".segcli").exists()


def test_views_read_the_state_on_s3(tmp_path: Path, s3: str) -> None:
    """show (with scores, read from the run's own outputs in the bucket), diff, history
    and report say the same of a state in a bucket as of the same state on disk."""
    local, remote = _demo(tmp_path / "local"), _demo(tmp_path / "remote")
    state, out = f"{s3}/state", f"{s3}/out"
    for at in ("2026-11-13", "2026-11-20"):
        api.run(local, as_of=at, actions=False)
        api.run(remote, as_of=at, actions=False, state_dir=state, out_dir=out)
    want = views.show(local, "mql", fmt="json", scores=True, limit=10_000)
    got = views.show(remote, "mql", fmt="json", scores=True, limit=10_000, state_dir=state)
    assert got.columns == want.columns and len(got.rows) == len(want.rows) > 0
    for mine, theirs in zip(got.rows, want.rows, strict=True):  # scores within 1e-9
        for x, y in zip(mine, theirs, strict=True):
            assert x == (pytest.approx(y, abs=1e-9) if isinstance(y, float) else y)
    for name in ("mql", "engaged_clickers"):
        a = views.diff(local, name, None, None)
        b = views.diff(remote, name, None, None, state_dir=state)
        assert (a.entered, a.left) == (b.entered, b.left)
        want_rows = [_no_id(r) for r in views.history(local, name)]
        assert len(want_rows) == 2
        assert [_no_id(r) for r in views.history(remote, name, state_dir=state)] == want_rows
    assert views.report(remote, state_dir=state).sizes == views.report(local).sizes


def _no_id(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "run_id"}


def test_a_lock_on_s3_is_taken_once_and_a_dead_holders_lock_is_taken_over(s3: str) -> None:
    state = store.StateDir(storage.location(f"{s3}/state"))
    first = state.lock()
    with pytest.raises(StateError, match=f"locked by another run: pid {os.getpid()}"):
        state.lock()
    first.release()
    assert not (state.path / "lock").exists()
    # A lock left by a process of this host that is gone is taken over, and said so.
    dead = {"pid": _dead_pid(), "host": socket.gethostname(), "started_at": "2026-11-20"}
    (state.path / "lock").write_bytes(json.dumps(dead).encode())
    lock = state.lock()
    assert lock.took_over and "no longer running" in lock.took_over
    holder = json.loads((state.path / "lock").read_text())
    assert holder["pid"] == os.getpid()
    lock.release()


def test_a_lock_of_another_host_is_never_taken_over(s3: str) -> None:
    state = store.StateDir(storage.location(f"{s3}/state"))
    other = {"pid": _dead_pid(), "host": "another-host", "started_at": "2026-11-20"}
    (state.path / ".segcli-state").write_bytes(b"marker\n")
    (state.path / "lock").write_bytes(json.dumps(other).encode())
    with pytest.raises(StateError, match="another-host"):
        state.lock()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_failed_commit_on_s3_leaves_state_and_outputs_as_they_were(
    tmp_path: Path, s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest's PUT is the commit point: when it fails, the run is exit 4, the
    manifest and the outputs are the last committed run's, no staging folder stays, and
    the next run commits and removes the failed run's snapshot folder."""
    project = _demo(tmp_path / "p")
    state, out = f"{s3}/state", f"{s3}/out"
    first = api.run(project, as_of="2026-11-13", actions=False, state_dir=state, out_dir=out)
    loc = storage.location(state)
    manifest = (loc / "manifest.json").read_bytes()
    members = (storage.location(out) / "segments" / "mql.parquet").read_bytes()
    real = store.atomic_write_bytes

    def failing(path: Any, data: bytes) -> None:
        if str(path).endswith("manifest.json"):
            raise OSError("the bucket refused the write (injected)")
        real(path, data)

    monkeypatch.setattr(store, "atomic_write_bytes", failing)
    with pytest.raises(WriteError, match="injected"):
        api.run(project, as_of="2026-11-20", actions=False, state_dir=state, out_dir=out)
    assert (loc / "manifest.json").read_bytes() == manifest
    assert (storage.location(out) / "segments" / "mql.parquet").read_bytes() == members
    assert not [c for c in storage.location(out).iterdir() if c.name.startswith(".segcli-stage")]
    assert [c.name for c in (loc / "runs").iterdir()] == [first.run_id]
    monkeypatch.setattr(store, "atomic_write_bytes", real)
    second = api.run(project, as_of="2026-11-20", actions=False, state_dir=state, out_dir=out)
    assert sorted(c.name for c in (loc / "runs").iterdir()) == sorted([first.run_id, second.run_id])
    assert not (loc / "lock").exists()


def test_state_on_s3_without_credentials_is_exit_4_naming_the_place(
    tmp_path: Path, s3_server: str
) -> None:
    """No credentials (and no instance metadata to ask): exit 4, the URI and the reason on
    one line, no traceback."""
    _demo(tmp_path / "p")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3_env(s3_server))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name)
    env["AWS_SHARED_CREDENTIALS_FILE"] = env["AWS_CONFIG_FILE"] = str(tmp_path / "none")
    args = ["--as-of", "2026-11-20", "--state", "s3://nobody/state", "--out", "s3://nobody/o"]
    res = subprocess.run(
        [sys.executable, "-c", "from segcli.entry import main; main()", "run", *args],
        cwd=tmp_path / "p",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 4, res.stderr
    assert "s3://nobody/state" in res.stderr and "credentials" in res.stderr.lower()
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr


def test_a_missing_bucket_is_exit_4_and_is_not_created(tmp_path: Path, s3: str) -> None:
    project = _demo(tmp_path / "p")
    gone = s3.replace("segcli-", "segcli-gone-")
    with pytest.raises((WriteError, StateError)) as err:
        api.run(project, as_of="2026-11-20", state_dir=f"{gone}/state", out_dir=f"{gone}/o")
    assert err.value.exit_code == 4 and gone in str(err.value)
    loc = storage.location(s3)
    assert isinstance(loc, Remote)
    assert not loc.fs.exists(gone.removeprefix("s3://"))
