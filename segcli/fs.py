"""Atomic file writes, shared by the state and the outputs: readers never see half a file.

Also the two things every writer needs: a failed write reported as a clear error naming the
path (a full disk says "no space left"), and Ctrl-C held back during the few steps that must
not be cut in half (taking or releasing the lock, the commit).
"""

from __future__ import annotations

import errno
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Protocol

from segcli import storage
from segcli.errors import StateError, WriteError
from segcli.storage import Loc, Remote

# What the OS says, by errno, and the same found in the text of errors that carry no errno
# (Polars reports "No space left on device (os error 28)" inside a ComputeError).
_PROBLEMS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "no space left (disk quota exceeded)",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a path component is a file, not a directory",
    errno.EISDIR: "it is a directory",
    errno.EEXIST: "it already exists",
    errno.ENAMETOOLONG: "the name is too long",
}
_OS_ERROR = re.compile(r"os error (\d+)")


class EngineFrame(Protocol):
    """Rows that their engine writes itself, never collected here (a Spark DataFrame:
    segcli.engines.spark_state.SparkFrame). `write` makes one Parquet file at `path` and
    raises OSError when it cannot."""

    def write(self, path: Loc) -> None: ...


def problem_of(exc: BaseException) -> str:
    """A short, plain account of why a file operation failed."""
    code = getattr(exc, "errno", None)
    if not isinstance(code, int):
        found = _OS_ERROR.search(str(exc))
        code = int(found.group(1)) if found else None
    if code in _PROBLEMS:
        return _PROBLEMS[code]
    if code is not None:
        return os.strerror(code).lower()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def write_error(exc: BaseException, doing: str, path: Loc | str) -> WriteError:
    """The error to raise when writing `path` failed: what, where, why (exit 4)."""
    problem = problem_of(exc).removeprefix(f"{path}: ")  # a store's error names it already
    return WriteError(f"could not {doing} {path}: {problem}")


@contextmanager
def atomic_path(path: Loc, sync: bool = True) -> Iterator[Loc]:
    """Yield a temporary path beside `path`; once written, fsync it and rename it into place,
    so readers never see a half-written file (a failure leaves `path` as it was, and removes
    the temporary file). On an object store the file itself is yielded: an upload appears
    whole or not at all, and a failed one leaves the old object.

    With `sync` false the file is renamed without its fsync: only for a file no reader can
    name yet (in a run's staging folder), whose writer makes it durable with `fsync_all`
    before anything names it (the commit)."""
    if isinstance(path, Remote):
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        if sync:
            _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# fsync blocks in the kernel with the GIL released; a journaling file system (ext4, xfs)
# makes the files fsynced at the same time durable in a few shared journal commits, so many
# small files cost about what a few do when their fsyncs are side by side.
FSYNC_THREADS = 32


def _fsync_path(path: Path) -> None:
    """fsync one local file; an error names the file."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        raise


def fsync_all(files: Sequence[Loc], folders: Sequence[Loc] = ()) -> None:
    """Make written files durable, and the folders holding their names (best effort, as
    `fsync_dir`), side by side on up to FSYNC_THREADS threads: one step for all of a run's
    files instead of one fsync after each. An OSError names its file (`filename`). On an
    object store there is nothing to flush (a finished upload is durable)."""
    local = [f for f in files if isinstance(f, Path)]
    dirs = [d for d in folders if isinstance(d, Path)]
    jobs: list[Callable[[], None]] = [partial(_fsync_path, f) for f in local]
    jobs += [partial(fsync_dir, d) for d in dirs]
    if len(jobs) <= 1:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(max_workers=min(FSYNC_THREADS, len(jobs))) as pool:
        for done in [pool.submit(job) for job in jobs]:
            done.result()


def fsync_dir(path: Loc) -> None:
    """fsync a folder, so the renames into it survive a crash (best effort: some file
    systems cannot open a folder for it; an object store has nothing to flush)."""
    if isinstance(path, Remote):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Loc, data: bytes) -> None:
    """Write bytes to `path` atomically (on an object store: one PUT, see `atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) for the duration: it is raised as KeyboardInterrupt when the
    block ends. Used where being cut in half would leave a lock or a half-made commit behind.
    Only the main thread can handle signals; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def claim_dir(
    path: Loc,
    marker: str,
    what: str,
    legacy: Callable[[Loc], bool] | None = None,
    create: bool = True,
) -> None:
    """Make sure `path` is a directory segcli may write in, or refuse (exit 4).

    It is segcli's when it does not exist yet, holds no files (empty folders do not count),
    or holds the `marker` file that segcli leaves in every directory it starts using (or
    passes the `legacy` test: what older versions of segcli left there, before the marker).
    Anything else holds someone else's files, which segcli must never overwrite or clean
    up. With `create` false it only checks, and writes nothing.
    """
    try:
        if path.exists() and not path.is_dir():
            raise StateError(f"the {what} {path} is a file, not a directory")
        entries = sorted(p.name for p in path.iterdir()) if path.exists() else []
        if marker in entries or (entries and legacy is not None and legacy(path)):
            if marker not in entries and create:
                atomic_write_bytes(path / marker, _marker_text(what))
            return
        if entries and storage.holds_files(path):
            shown = ", ".join(entries[:5]) + (
                f" and {len(entries) - 5} more" if len(entries) > 5 else ""
            )
            raise StateError(
                f"the {what} {path} holds files segcli did not create ({shown}); segcli writes "
                f"only into an empty directory or one it made (marked by {marker}): give a "
                "new or empty directory"
            )
        if create:
            path.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path / marker, _marker_text(what))
    except OSError as exc:
        raise write_error(exc, f"use the {what}", path) from exc


def _marker_text(what: str) -> bytes:
    return (
        f"This directory is segcli's {what}. segcli writes and cleans up here; keep other "
        "files elsewhere.\n"
    ).encode()
