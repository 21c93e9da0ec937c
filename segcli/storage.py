"""Where the state and the outputs live: a local folder, or a folder named by a URI.

`location(text)` turns what a user gave (`--state`, `--out`, a manifest's `out_dir`) into a
`Loc`: a `pathlib.Path` for a local folder (a plain path or a `file://` URI), or a `Remote`
for any other URI (`s3://bucket/segcli/state`, `gs://…`, `abfs://…`, `memory://…`), read and
written through fsspec (installed with the extra that names the store: `segcli[s3]`,
`segcli[gcs]`, `segcli[azure]`). A Remote answers the few pathlib questions segcli's state
and outputs code asks (`/`, `name`, `exists`, `iterdir`, `glob`, `read_text`, `open`…), so
that code is written once for both.

What differs is what object stores cannot do, and the module-level helpers below hide it:
- no rename: `replace` copies then deletes (each object still appears whole: a PUT is
  atomic), so a reader of a remote folder may see some files moved and others not yet; the
  state's manifest, rewritten by one PUT, stays the commit point;
- no fsync (`fs.fsync_all`, `fs.fsync_dir` skip remote places: a finished PUT is durable);
- no hard link for the lock: `create_exclusive` is a conditional create (S3's
  `If-None-Match: *`, GCS's generation precondition), which fsspec's `"xb"` mode sends;
- no empty folders: `mkdir` does nothing there.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import unquote, urlparse

from segcli.errors import UsageError

# The extra that brings each store's fsspec implementation.
_EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "abfs": "azure",
    "abfss": "azure",
    "az": "azure",
}


def is_uri(text: str) -> bool:
    """Whether `text` names a place by a URI (`scheme://…`) rather than a local path."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme.replace("+", "").isalnum()


class _Failing:
    """Calls into an fsspec file system whose failures are OSErrors naming the URI.

    fsspec and the stores' SDKs raise their own errors for what a local disk reports as
    OSError (missing credentials, a refused connection, a forbidden bucket); segcli's state
    and outputs code handles OSError (a clear exit 4 naming the place), so they become one.
    FileNotFoundError and FileExistsError pass as they are: callers act on them.
    """

    def __init__(self, fs: Any, uri: str) -> None:
        self.fs, self.uri = fs, uri

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.fs, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except OSError:
                raise
            except Exception as exc:
                raise store_error(exc, self.uri) from exc

        return call


def store_error(exc: BaseException, uri: str) -> OSError:
    """An object store's own error as an OSError naming the place."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return OSError(f"{uri}: {type(exc).__name__}" + (f": {text}" if text else ""))


def _from_store(exc: BaseException) -> bool:
    """Whether an error comes from an object store's client library (not from segcli's
    own code or Polars), so that it is reported as a failed read or write."""
    root = (type(exc).__module__ or "").split(".")[0]
    return root in (
        "botocore",
        "aiobotocore",
        "s3fs",
        "fsspec",
        "gcsfs",
        "google",
        "adlfs",
        "azure",
        "aiohttp",
    )


class Remote:
    """A file or folder named by a URI, on an fsspec file system (see the module doc)."""

    def __init__(self, fs: Any, path: str, protocol: str) -> None:
        self.path, self.protocol = path.rstrip("/"), protocol
        self.fs = fs if isinstance(fs, _Failing) else _Failing(fs, str(self))

    def __str__(self) -> str:
        # The scheme the user wrote (Spark wants s3a:// where fsspec says s3://); fsspec's
        # in-memory store roots its paths at `/`, a local file system's paths are absolute.
        path = self.path if self.protocol in ("file", "local") else self.path.lstrip("/")
        return f"{self.protocol}://{path}"

    def __repr__(self) -> str:
        return f"Remote({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Remote) and str(other) == str(self)

    def __hash__(self) -> int:
        return hash(str(self))

    def __truediv__(self, name: str) -> Remote:
        return Remote(self.fs.fs, f"{self.path}/{name}", self.protocol)

    def _at(self, path: str) -> Remote:
        return Remote(self.fs.fs, path, self.protocol)

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.path).suffix

    @property
    def parent(self) -> Remote:
        return self._at(str(PurePosixPath(self.path).parent))

    def with_name(self, name: str) -> Remote:
        return self.parent / name

    def is_absolute(self) -> bool:
        return True

    def resolve(self) -> Remote:
        return self

    def relative_to(self, other: Remote) -> PurePosixPath:
        return PurePosixPath(self.path).relative_to(other.path)

    def exists(self) -> bool:
        self.fs.invalidate_cache(self.path)
        return bool(self.fs.exists(self.path))

    def is_dir(self) -> bool:
        self.fs.invalidate_cache(self.path)
        return bool(self.fs.isdir(self.path))

    def is_file(self) -> bool:
        self.fs.invalidate_cache(self.path)
        return bool(self.fs.isfile(self.path))

    def iterdir(self) -> Iterator[Remote]:
        self.fs.invalidate_cache(self.path)
        try:
            found = self.fs.ls(self.path, detail=False)
        except FileNotFoundError:
            return iter(())
        mine = self.path.lstrip("/")
        return iter(
            sorted(
                (self._at(p) for p in found if str(p).strip("/") != mine.strip("/")),
                key=str,
            )
        )

    def glob(self, pattern: str) -> Iterator[Remote]:
        """Children whose name matches `pattern` (one level, as segcli uses it)."""
        return (c for c in self.iterdir() if fnmatch.fnmatchcase(c.name, pattern))

    def read_bytes(self) -> bytes:
        data: bytes = self.fs.cat_file(self.path)
        return data

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> int:
        self.parent.mkdir(parents=True, exist_ok=True)
        self.fs.pipe_file(self.path, data)
        return len(data)

    def open(self, mode: str = "rb") -> IO[Any]:
        if "r" not in mode:
            self.parent.mkdir(parents=True, exist_ok=True)
        handle: IO[Any] = self.fs.open(self.path, mode)
        return handle

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        # Object stores have no folders: one exists once a file is in it (and making one
        # must never create a bucket a typo named). A file system behind fsspec that has
        # folders gets them made.
        if self.protocol in _EXTRAS:
            return
        with contextlib.suppress(FileExistsError):
            self.fs.makedirs(self.path, exist_ok=True)

    def rmdir(self) -> None:
        if any(True for _ in self.iterdir()):
            raise OSError(f"{self} is not empty")
        with contextlib.suppress(FileNotFoundError, NotImplementedError):
            self.fs.rmdir(self.path)


Loc = Path | Remote


def location(text: str | Path) -> Loc:
    """The Loc a user's path or URI names (see the module doc); exit 2 when the store's
    fsspec implementation is not installed."""
    if isinstance(text, Path):
        return text
    if not is_uri(text):
        return Path(text)
    scheme = text.partition("://")[0].lower()
    if scheme == "file":
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise UsageError(f"{text}: a file:// URI names a local path (file:///path)")
        return Path(unquote(parsed.path))
    try:
        import fsspec
    except ImportError as exc:
        raise UsageError(_install_hint(text, scheme)) from exc
    try:
        fs, path = fsspec.core.url_to_fs(text)
    except (ImportError, ValueError) as exc:
        raise UsageError(f"{text}: {_install_hint(text, scheme)} ({exc})") from exc
    return Remote(fs, path, scheme)


def _install_hint(text: str, scheme: str) -> str:
    extra = _EXTRAS.get(scheme)
    if extra:
        return f"reading and writing {scheme}:// needs pip install 'segcli[{extra}]'"
    return (
        f"no file system for {scheme}:// is installed (segcli reaches object stores through "
        "fsspec: pip install 'segcli[s3]', 'segcli[gcs]' or 'segcli[azure]')"
    )


def replace(src: Loc, dst: Loc) -> None:
    """Move a file (or a folder) onto `dst`: a rename on a local disk, a copy then a delete
    on an object store."""
    if isinstance(src, Path) and isinstance(dst, Path):
        os.replace(src, dst)
        return
    assert isinstance(src, Remote) and isinstance(dst, Remote), "one store at a time"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        src.fs.mv(src.path, dst.path, recursive=True)
    else:
        src.fs.mv(src.path, dst.path)


def staging(root: Loc, run_id: str) -> Loc:
    """Where run `run_id` writes its folder under `root` before renaming it into place:
    `.tmp-<run_id>` on a disk; on an object store, which cannot rename a folder, the folder
    itself (nothing reads it before the state's manifest names the run)."""
    return root / (run_id if isinstance(root, Remote) else f".tmp-{run_id}")


def move(src: Loc, dst: Loc) -> None:
    """Move a file, also across local file systems (a copy then a delete)."""
    if isinstance(src, Path) and isinstance(dst, Path):
        shutil.move(src, dst)
    else:
        replace(src, dst)


def rmtree(loc: Loc) -> None:
    """Remove a folder and all it holds; nothing when it is not there (errors ignored)."""
    if isinstance(loc, Path):
        shutil.rmtree(loc, ignore_errors=True)
        return
    with contextlib.suppress(OSError):
        if loc.exists():
            loc.fs.rm(loc.path, recursive=True)


def holds_files(loc: Loc) -> bool:
    """Whether anything but (nested) empty folders is under `loc`; stops at the first."""
    if isinstance(loc, Path):
        return any(files for _, _, files in os.walk(loc))
    loc.fs.invalidate_cache(loc.path)
    return bool(loc.fs.find(loc.path, maxdepth=None, withdirs=False))


def create_exclusive(loc: Loc, data: bytes) -> bool:
    """Create a remote file with its full content in one conditional PUT; False if it
    exists. (Local files: segcli.state.store makes them with a hard link.)"""
    assert isinstance(loc, Remote)
    try:
        with loc.open("xb") as fh:
            fh.write(data)
    except FileExistsError:
        return False
    return True


def local_twin(loc: Remote, what: str) -> Path:
    """A local file standing for a remote place (a lock guard): one per URI and user, in
    the temporary folder, so that processes on this machine can serialise on it."""
    import hashlib
    import tempfile

    digest = hashlib.sha256(str(loc).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"segcli-{what}-{os.getuid()}-{digest}"


@contextlib.contextmanager
def sink(loc: Loc) -> Iterator[Path | IO[bytes]]:
    """What a writer (Polars, pyarrow) writes `loc` through: the path itself, or an open
    remote file (uploaded when the block ends)."""
    with _through(loc, "wb") as target:
        yield target


@contextlib.contextmanager
def source(loc: Loc) -> Iterator[Path | IO[bytes]]:
    """What a reader (Polars, pyarrow) reads `loc` through: the path, or an open remote file."""
    with _through(loc, "rb") as target:
        yield target


@contextlib.contextmanager
def _through(loc: Loc, mode: str) -> Iterator[Path | IO[bytes]]:
    if isinstance(loc, Path):
        yield loc
        return
    try:
        with loc.open(mode) as fh:
            yield fh
    except Exception as exc:
        if _from_store(exc):
            raise store_error(exc, str(loc)) from exc
        raise


def relative(loc: Loc, root: Loc) -> str:
    """`loc`'s path inside `root` (both local, or both on one store), with `/` between names."""
    if isinstance(loc, Path) and isinstance(root, Path):
        return loc.resolve().relative_to(root.resolve()).as_posix()
    assert isinstance(loc, Remote) and isinstance(root, Remote), "one store at a time"
    return str(loc.relative_to(root))


def children(loc: Loc, pattern: str) -> list[Loc]:
    """The files and folders right inside `loc` whose names match `pattern`, sorted."""
    found: list[Loc] = list(loc.glob(pattern))
    return sorted(found, key=str)
