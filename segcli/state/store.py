"""Run state: membership snapshots per run, a manifest, a lock, crash-safe commits.

Layout of the state directory (default `.segcli/` beside the spec):

    manifest.json            schema_version, committed runs (newest last), current snapshot
                             of each segment, ids of runs pruned by keep_runs; rewritten
                             atomically: it is the commit point
    runs/<run_id>/<name>.parquet
                             the segment's snapshot after that run: key, joined_at, source,
                             member, base (rows that are members or in the kept base); for
                             a segment a history option refers to, also ever and left_at
                             and rows for ex-members (segcli.state.history)
    runs/<run_id>/+field-N.parquet
                             values of a column an `ever` field leaf reads, stored at
                             committed runs (key, value, first_at), named in `fields`
    lock                     while a run holds the state: pid, host, start time
    .segcli-state            the marker that makes the directory segcli's (fs.claim_dir)

A run writes its snapshot folder under a temporary name, fsyncs its files and the folder
(all at once, `fs.fsync_all`), renames it into place, then replaces the manifest. Killed
before the manifest is replaced, the state is exactly the last committed one; the stray
folder's snapshot files are removed by the next run.
Only files segcli wrote are ever removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from segcli import storage
from segcli.errors import StateError
from segcli.fs import (
    EngineFrame,
    atomic_write_bytes,
    claim_dir,
    fsync_all,
    fsync_dir,
    problem_of,
    write_error,
)
from segcli.storage import Loc, Remote

SCHEMA_VERSION = 1
STATE_MARKER = ".segcli-state"
# segcli's run ids are 12 hex digits; a run folder being written has `.tmp-` in front.
_RUN_FOLDER = re.compile(r"(\.tmp-)?[0-9a-f]{12}")
SNAPSHOT_COLUMNS = ("joined_at", "source", "member", "base")
_FIELD_FILE = re.compile(r"\+field-[0-9]+\.parquet")


@dataclass
class Lock:
    """The state lock held by this process."""

    path: Loc
    took_over: str | None = None

    def release(self) -> None:
        try:
            with _guard(self.path.parent):
                holder = _read_lock(self.path)
                if holder and holder.get("pid") == os.getpid():
                    self.path.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _guard(state_dir: Loc) -> Iterator[None]:
    """Serialise taking, taking over and releasing the lock: an flock on the state directory.

    Held for milliseconds, never during a run; the kernel drops it when a process dies.
    Without it, two runs that both find a dead holder's lock could each remove it, and the
    second would remove the first one's fresh lock: both would then hold the state.

    A state on an object store has no directory to flock: the guard is a local file named
    after its URI. That is enough, because only a run on the holder's own host ever judges
    a lock stale (`_stale`): the runs that could race to take it over are all on this host.
    Creating the lock itself is a conditional PUT, atomic across hosts.
    """
    if isinstance(state_dir, Remote):
        twin = storage.local_twin(state_dir, "lock-guard")
        fd = os.open(twin, os.O_RDONLY | os.O_CREAT, 0o600)
    else:
        fd = os.open(state_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _create_lock(path: Loc, data: bytes) -> bool:
    """Create the lock file with its full content in one step; False if it exists.

    The content goes to a private temporary file that is hard-linked into place, so no
    reader ever sees an empty or half-written lock. On an object store: a conditional PUT.
    """
    if isinstance(path, Remote):
        return storage.create_exclusive(path, data)
    tmp = path.with_name(f".lock.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _read_lock(path: Loc) -> dict[str, Any] | None:
    """The holder's record; None when the lock is gone; {} when it is unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _stale(holder: dict[str, Any]) -> str | None:
    """Why the holder's lock may be taken over (its process is gone), or None if it is live."""
    if not holder:
        return "removed an unreadable lock file"
    pid = holder.get("pid")
    if isinstance(pid, int) and holder.get("host") == socket.gethostname() and not _alive(pid):
        return (
            f"took over a stale lock left by pid {pid} (started "
            f"{holder.get('started_at', '?')}), which is no longer running"
        )
    return None


def acquire_lock(state_dir: Loc) -> Lock:
    """Take the lock or fail at once (exit 4) naming the holder; take over a dead holder's lock."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "lock"
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    data = json.dumps(me).encode()
    took_over = None
    # Everything that creates, judges or removes the lock file happens under the guard, so
    # what was read is still there when it is acted on (a live holder cannot release, and a
    # third run cannot create, between our read and our unlink).
    with _guard(state_dir):
        for _ in range(3):
            if _create_lock(path, data):
                return Lock(path, took_over)
            holder = _read_lock(path)
            if holder is None:
                continue  # removed by hand meanwhile: try again
            reason = _stale(holder)
            if reason is None:
                raise StateError(
                    f"state {state_dir} is locked by another run: pid {holder.get('pid')} on "
                    f"{holder.get('host')}, started {holder.get('started_at')} "
                    f"(lock file: {path})"
                )
            path.unlink()
            took_over = reason
    raise StateError(f"could not take the lock {path}")


@dataclass
class Manifest:
    """The committed history: runs (oldest first) and each segment's current snapshot."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    current: dict[str, dict[str, Any]] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)  # ids of runs removed by keep_runs
    # column -> {run_id, snapshot, since}: stored values for property history (SPEC §2.6)
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def last_as_of(self) -> datetime | None:
        return datetime.fromisoformat(self.runs[-1]["as_of"]) if self.runs else None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "runs": self.runs,
            "current": self.current,
            "pruned": self.pruned,
            "fields": self.fields,
        }


def _corrupt(path: Loc, problem: str) -> StateError:
    return StateError(
        f"state file {path} is corrupt ({problem}); restore it from a backup or "
        "move the state directory away to start afresh"
    )


def _manifest_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a parsed manifest's shape (None when it can be used as is)."""
    runs, current, pruned = data.get("runs"), data.get("current"), data.get("pruned", [])
    if not isinstance(runs, list) or not isinstance(current, dict):
        return "'runs' must be a list and 'current' an object"
    if not isinstance(pruned, list) or not all(isinstance(r, str) for r in pruned):
        return "'pruned' must be a list of run ids"
    counts = ("size", "entered", "left")
    for i, r in enumerate(runs):
        if not isinstance(r, dict) or not _is_name(r.get("run_id")):
            return f"runs[{i}] has no valid run_id"
        try:
            at = datetime.fromisoformat(r["as_of"])
        except (KeyError, TypeError, ValueError):
            return f"run {r['run_id']} has no valid as_of"
        if at.tzinfo is None:
            return f"run {r['run_id']} has an as_of without a time zone"
        problem = _outputs_problem(r)
        if problem:
            return problem
        segs = r.get("segments")
        if not isinstance(segs, dict) or not all(
            isinstance(v, dict) and "kind" in v and all(c in v for c in counts)
            for v in segs.values()
        ):
            return f"run {r['run_id']} has malformed 'segments'"
    ids = {r["run_id"] for r in runs}
    for name, cur in current.items():
        if not isinstance(cur, dict) or not isinstance(cur.get("snapshot"), str):
            return f"current['{name}'] names no snapshot"
        expected = f"runs/{cur.get('run_id')}/{name}.parquet"
        if cur.get("run_id") not in ids or cur["snapshot"] != expected:
            return f"current['{name}'] names a snapshot of no committed run"
    fields = data.get("fields", {})
    if not isinstance(fields, dict):
        return "'fields' must be an object"
    for column, entry in fields.items():
        ok = isinstance(entry, dict) and entry.get("run_id") in ids
        ok = ok and entry.get("snapshot") == f"runs/{entry.get('run_id')}/{entry.get('file')}"
        ok = ok and bool(_FIELD_FILE.fullmatch(str(entry.get("file"))))
        try:
            ok = ok and datetime.fromisoformat(entry["since"]).tzinfo is not None
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            return f"fields['{column}'] names no stored values of a committed run"
    return None


def _outputs_problem(run: dict[str, Any]) -> str | None:
    """What is wrong with where a run record says its outputs are (older records have none)."""
    rid = run["run_id"]
    if "out_dir" in run and not (
        isinstance(run["out_dir"], str)
        and (storage.is_uri(run["out_dir"]) or Path(run["out_dir"]).is_absolute())
    ):
        return f"run {rid} has an out_dir that is not an absolute path or a URI"
    files = run.get("files", [])
    if not isinstance(files, list) or not all(
        isinstance(f, str) and f and not Path(f).is_absolute() and ".." not in Path(f).parts
        for f in files
    ):
        return f"run {rid} has 'files' that are not paths inside its out_dir"
    return None


def _is_name(value: object) -> bool:
    """A run id usable as a folder name."""
    return isinstance(value, str) and bool(value) and "/" not in value and value[0] != "."


class StateDir:
    """Read and commit the state directory."""

    def __init__(self, path: Loc) -> None:
        self.path = path

    @property
    def manifest_path(self) -> Loc:
        return self.path / "manifest.json"

    def read_manifest(self) -> Manifest:
        """The committed manifest (empty when there is none yet); StateError when corrupt."""
        p = self.manifest_path
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            return Manifest()
        except OSError as exc:
            raise StateError(f"could not read the state file {p}: {problem_of(exc)}") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise _corrupt(p, str(exc)) from exc
        if not isinstance(data, dict):
            raise _corrupt(p, f"expected a JSON object, found {type(data).__name__}")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise StateError(
                f"state file {p} has schema_version {data.get('schema_version')!r}; this "
                f"segcli reads version {SCHEMA_VERSION}"
            )
        problem = _manifest_problem(data)
        if problem:
            raise _corrupt(p, problem)
        return Manifest(
            data["runs"], data["current"], data.get("pruned", []), data.get("fields", {})
        )

    def lock(self) -> Lock:
        """Claim the directory as segcli's state (refusing foreign content), then take the
        lock (exit 4 when held)."""
        claim_dir(self.path, STATE_MARKER, "state directory", _legacy_state)
        try:
            return acquire_lock(self.path)
        except OSError as exc:
            raise write_error(exc, "take the lock in", self.path) from exc

    def read_snapshot(self, rel: str, key: str) -> pl.DataFrame:
        """A snapshot file named by the manifest; StateError when missing or unreadable."""
        p = self.path / rel
        df = _snapshot_read(p, key, pl.read_parquet)
        assert isinstance(df, pl.DataFrame)
        return df

    def read_snapshots(self, rels: list[str], key: str) -> list[pl.DataFrame]:
        """Several snapshot files named by the manifest (a nightly run reads every
        segment's), in one Polars call: one query plan per file, run side by side, instead
        of one eager read after another. StateError as `read_snapshot` gives, naming the
        first missing or unreadable file."""
        if len(rels) < 2 or isinstance(self.path, Remote):
            return [self.read_snapshot(rel, key) for rel in rels]
        paths = [self.path / rel for rel in rels]
        try:
            frames = pl.collect_all([pl.scan_parquet(p, cache=False) for p in paths])
        except (OSError, pl.exceptions.PolarsError):
            # Polars' error may not say which file: read them one by one, so it is named.
            return [self.read_snapshot(rel, key) for rel in rels]
        for p, df in zip(paths, frames, strict=True):
            _columns_checked(p, key, df)
        return frames

    def snapshot_path(self, rel: str, key: str) -> Loc:
        """A snapshot file named by the manifest, checked by its schema only (for an engine
        that reads it itself); StateError when missing, unreadable or lacking a column."""
        p = self.path / rel
        _snapshot_read(p, key, pl.read_parquet_schema)
        return p

    def clean_strays(self, manifest: Manifest) -> None:
        """Remove what segcli itself left behind: snapshot folders of pruned runs and of runs
        killed before their commit (named like segcli's run ids, `.tmp-*` ones included),
        half-written manifests, and lock files being made by processes that are gone.
        Nothing else is touched: in a run folder only its snapshot files are removed, and a
        folder still holding anything else stays. Called while holding the lock."""
        for tmp in self.path.glob(f".{self.manifest_path.name}.tmp-*"):
            tmp.unlink(missing_ok=True)
        for tmp in self.path.glob(".lock.*"):
            pid = tmp.name.split(".")[2]
            if pid.isdigit() and not _alive(int(pid)):
                tmp.unlink(missing_ok=True)
        runs = self.path / "runs"
        if not runs.is_dir():
            return
        known = {r["run_id"] for r in manifest.runs}
        known |= {c["run_id"] for c in manifest.current.values()}
        known |= {f["run_id"] for f in manifest.fields.values()}
        for child in runs.iterdir():
            if child.name not in known and _RUN_FOLDER.fullmatch(child.name) and child.is_dir():
                _remove_snapshots(child)

    def _commit_failed(self, tmp: Loc) -> None:
        if tmp.is_dir():
            _remove_snapshots(tmp)

    def commit(
        self,
        manifest: Manifest,
        run: dict[str, Any],
        snapshots: dict[str, pl.DataFrame | EngineFrame],
        keep_runs: int | None,
        hold: set[str] | None = None,
        fields: Mapping[str, tuple[pl.DataFrame | EngineFrame, str]] | None = None,
    ) -> Manifest:
        """Write the run's snapshots, then the manifest (the commit point), then prune.

        Runs named in `hold` (those with deliveries still pending) are never pruned.
        `fields`: per column an `ever` leaf reads, the values to store and since when they
        are stored (ISO time); columns not given are no longer stored."""
        run_id = run["run_id"]
        tmp = storage.staging(self.path / "runs", run_id)
        try:
            return self._commit(
                manifest, run, snapshots, keep_runs, tmp, hold or set(), fields or {}
            )
        except (OSError, pl.exceptions.PolarsError) as exc:
            self._commit_failed(tmp)
            raise write_error(exc, "commit the run to the state directory", self.path) from exc

    def _commit(
        self,
        manifest: Manifest,
        run: dict[str, Any],
        snapshots: dict[str, pl.DataFrame | EngineFrame],
        keep_runs: int | None,
        tmp: Loc,
        hold: set[str],
        fields: Mapping[str, tuple[pl.DataFrame | EngineFrame, str]],
    ) -> Manifest:
        run_id = run["run_id"]
        runs = tmp.parent
        runs.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        final = runs / run_id
        stored: dict[str, dict[str, Any]] = {}
        files: dict[str, pl.DataFrame | EngineFrame] = dict(snapshots)
        for i, (column, (frame, since)) in enumerate(sorted(fields.items())):
            name = f"+field-{i}"
            files[name] = frame
            snapshot = f"runs/{run_id}/{name}.parquet"
            stored[column] = {"run_id": run_id, "snapshot": snapshot, "since": since}
            stored[column]["file"] = f"{name}.parquet"

        def write(item: tuple[str, pl.DataFrame | EngineFrame]) -> Loc:
            target = tmp / f"{item[0]}.parquet"
            if isinstance(item[1], pl.DataFrame):
                with storage.sink(target) as into:
                    item[1].write_parquet(into, compression="lz4")
            else:  # written by its engine (Spark), never collected here
                item[1].write(target)
            return target

        with ThreadPoolExecutor(max_workers=4) as pool:
            written = list(pool.map(write, files.items()))
        # Every snapshot file, and the folder naming them, is durable before the folder is
        # renamed into place and the manifest replaced: fsynced all at once, side by side.
        fsync_all(written, [tmp])
        if tmp != final:
            storage.replace(tmp, final)
        fsync_dir(runs)
        new = Manifest([*manifest.runs, run], dict(manifest.current), list(manifest.pruned), stored)
        for name in snapshots:
            new.current[name] = {
                "run_id": run_id,
                "snapshot": f"runs/{run_id}/{name}.parquet",
                "fingerprint": run["segments"][name]["fingerprint"],
                "kind": run["segments"][name]["kind"],
            }
        if keep_runs is not None:
            new = self._prune(new, keep_runs, hold)
        data = json.dumps(new.to_json(), indent=2).encode()
        try:
            atomic_write_bytes(self.manifest_path, data)
        except BaseException:
            # Not committed: the run's folder goes too (no reader could name it).
            if tmp != final:
                storage.replace(final, tmp)
            raise
        # Committed. Tidying up is best effort: a failure there must not report the run
        # as failed (the next run tidies again).
        try:
            fsync_dir(self.path)
            self.clean_strays(new)
        except OSError:
            pass
        return new

    def _prune(self, manifest: Manifest, keep_runs: int, hold: set[str]) -> Manifest:
        """Keep the newest `keep_runs` runs and every older run holding a snapshot that one of
        them still uses (a segment run less often, with --segment), so that `diff` works
        between any two kept runs and every current snapshot stays."""
        runs = manifest.runs
        cut = len(runs) - keep_runs
        needed = {c["run_id"] for c in manifest.current.values()} | hold
        needed |= {f["run_id"] for f in manifest.fields.values()}
        latest: dict[str, str] = {}  # segment -> run holding its snapshot as of run i
        for i, r in enumerate(runs):
            latest.update(dict.fromkeys(r["segments"], r["run_id"]))
            if i >= cut:
                needed.update(latest.values())
        kept = [r for i, r in enumerate(runs) if i >= cut or r["run_id"] in needed]
        ids = {r["run_id"] for r in kept}
        gone = [r["run_id"] for r in runs if r["run_id"] not in ids]
        return Manifest(kept, manifest.current, [*manifest.pruned, *gone], manifest.fields)


def _snapshot_read(path: Loc, key: str, read: Any) -> Any:
    """`read(path)` (the rows, or only the schema) of a snapshot file; StateError when it is
    missing, unreadable or lacks one of the snapshot's columns."""
    try:
        with storage.source(path) as at:
            got = read(at)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise StateError(f"state snapshot {path} is missing or corrupt ({exc})") from exc
    return _columns_checked(path, key, got)


def _columns_checked(path: Loc, key: str, got: Any) -> Any:
    """`got` (a snapshot's rows or schema), or StateError when it lacks a snapshot column."""
    missing = [c for c in (key, *SNAPSHOT_COLUMNS) if c not in got]
    if missing:
        raise StateError(f"state snapshot {path} lacks column(s) {', '.join(missing)}")
    return got


def _legacy_state(path: Loc) -> bool:
    """A state directory made before the marker: everything in it is named as segcli names
    its files (a lock, a manifest that is segcli's, run folders named like run ids)."""
    for entry in path.iterdir():
        name = entry.name
        if name == "manifest.json":
            try:
                data = json.loads(entry.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return False
            if not (isinstance(data, dict) and "schema_version" in data and "runs" in data):
                return False
        elif name == "runs":
            if not entry.is_dir() or not all(
                _RUN_FOLDER.fullmatch(c.name) for c in entry.iterdir()
            ):
                return False
        elif name != "lock" and not name.startswith((".lock.", ".manifest.json.tmp-")):
            return False
    return True


def _remove_snapshots(folder: Loc) -> None:
    """Remove a run folder's snapshot files (`NAME.parquet`, the only files segcli writes
    there) and the folder if that empties it; anything else in it stays."""
    for f in folder.iterdir():
        if f.is_file() and f.suffix == ".parquet":
            f.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # it holds something segcli did not write: leave it
        folder.rmdir()
