"""Faults on the state and output side: foreign content, files where directories should be,
full disks, read-only directories. Each case: exit code, message, nothing foreign changed,
and out/ and the state exactly as the last committed run left them."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.common import assert_clean, assert_untouched, invoke, tree
from tests.test_state import click, contact, make_project, write_export

AS_OF = ["--as-of", "2026-03-01"]


def project(root: Path) -> Path:
    cfg = make_project(root)
    write_export(
        root,
        [contact(1, "VP Sales"), contact(2), contact(3)],
        [click(2, "2026-02-20T10:00:00"), click(2, "2026-02-21T10:00:00")],
        {"vip": [3]},
    )
    return cfg


# ------------------------------------------------------------------ foreign content


def test_state_dot_is_refused_and_foreign_runs_folders_survive(tmp_path: Path) -> None:
    """`--state .` in a folder that already has a runs/ folder of its own: refused, and
    nothing deleted (it used to delete every subfolder of runs/, exit 0)."""
    project(tmp_path)
    (tmp_path / "runs" / "2025-q4").mkdir(parents=True)
    (tmp_path / "runs" / "2025-q4" / "notes.txt").write_text("precious")
    before = tree(tmp_path)
    res = invoke(["run", *AS_OF, "--state", "."], tmp_path)
    assert_clean(res, 4, "holds files segcli did not create", "runs", ".segcli-state")
    assert tree(tmp_path) == before


def test_foreign_out_dir_is_refused(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<p>mine</p>")
    before = tree(tmp_path)
    res = invoke(["run", *AS_OF, "--out", "site"], tmp_path)
    assert_clean(res, 4, "output directory", "site", "index.html", "segcli did not create")
    assert_untouched(before, tmp_path, own=(".segcli",))


def test_out_dot_is_refused(tmp_path: Path) -> None:
    project(tmp_path)
    before = tree(tmp_path)
    res = invoke(["run", *AS_OF, "--out", "."], tmp_path)
    assert_clean(res, 4, "segments.yaml")
    assert_untouched(before, tmp_path, own=(".segcli",))


def test_foreign_files_in_segcli_runs_folder_are_never_removed(tmp_path: Path) -> None:
    """Inside segcli's own state, cleanup removes only segcli's snapshot files: a foreign
    file in a stray run folder, and a foreign folder, stay."""
    project(tmp_path)
    assert_clean(invoke(["run", *AS_OF], tmp_path), 0)
    runs = tmp_path / ".segcli" / "runs"
    (runs / "keep-me").mkdir()
    (runs / "keep-me" / "a.parquet").write_bytes(b"x")
    stray = runs / "0123456789ab"  # looks like a killed run's folder
    stray.mkdir()
    (stray / "vp_dyn.parquet").write_bytes(b"x")
    (stray / "README").write_text("mine")
    assert_clean(invoke(["run", "--as-of", "2026-03-02"], tmp_path), 0)
    assert (runs / "keep-me" / "a.parquet").read_bytes() == b"x"
    assert sorted(p.name for p in stray.iterdir()) == ["README"]


def test_empty_and_new_dirs_are_accepted_and_marked(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "empty").mkdir()
    res = invoke(["run", *AS_OF, "--out", "empty", "--state", "st/ate"], tmp_path)
    assert_clean(res, 0)
    assert (tmp_path / "empty" / ".segcli-out").is_file()
    assert (tmp_path / "st" / "ate" / ".segcli-state").is_file()
    # Marked, they are segcli's from now on.
    assert_clean(invoke(["run", "--as-of", "2026-03-02", "--out", "empty"], tmp_path), 0)


# ------------------------------------------------------------------ files for directories


@pytest.mark.parametrize("flag", ["--out", "--state"])
def test_dir_option_pointing_at_a_file(tmp_path: Path, flag: str) -> None:
    project(tmp_path)
    (tmp_path / "afile").write_text("mine")
    before = tree(tmp_path)
    res = invoke(["run", *AS_OF, flag, "afile"], tmp_path)
    assert_clean(res, 4, "afile", "is a file, not a directory")
    assert_untouched(before, tmp_path, own=(".segcli",))


# ------------------------------------------------------------------ full disk, read-only


def committed(root: Path) -> dict[str, dict[str, str]]:
    """A committed project's out/ and state, to compare after a failed run."""
    assert_clean(invoke(["run", *AS_OF], root), 0)
    write_export(root, [contact(1, "Analyst"), contact(2, "VP Eng"), contact(3)])
    return {"out": tree(root / "out"), "state": tree(root / ".segcli")}


def enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize(
    "target",
    [
        "segcli.outputs.files.pl.DataFrame.write_parquet",
        "segcli.outputs.files.atomic_write_bytes",
        "segcli.state.store.atomic_write_bytes",
        "segcli.state.store.pl.DataFrame.write_parquet",
    ],
)
def test_full_disk_leaves_out_and_state_as_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    project(tmp_path)
    before = committed(tmp_path)
    monkeypatch.setattr(target, enospc)
    res = invoke(["run", "--as-of", "2026-03-02"], tmp_path)
    monkeypatch.undo()
    assert_clean(res, 4, "no space left", str(tmp_path))
    assert {"out": tree(tmp_path / "out"), "state": tree(tmp_path / ".segcli")} == before
    assert not (tmp_path / ".segcli" / "lock").exists()
    assert_clean(invoke(["run", "--as-of", "2026-03-02"], tmp_path), 0)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".segcli-stage")]


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root); unmounted afterwards."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_really_full_disk(tmp_path: Path, tiny_fs: Path) -> None:
    """A real file system that fills up: the run fails cleanly, naming the path, and the
    output directory on it is exactly as the last committed run left it."""
    project(tmp_path)
    out = tiny_fs / "out"
    assert_clean(invoke(["run", *AS_OF, "--out", str(out)], tmp_path), 0)
    write_export(tmp_path, [contact(i, "VP") for i in range(1, 3000)])
    ballast = tiny_fs / "ballast"
    free = subprocess.run(["df", "-B1", "--output=avail", str(tiny_fs)], capture_output=True,
                          text=True).stdout.split()[-1]  # fmt: skip
    ballast.write_bytes(b"\0" * max(0, int(free) - 20_000))
    before = tree(out)
    res = invoke(["run", "--as-of", "2026-03-02", "--out", str(out)], tmp_path)
    assert_clean(res, 4, "no space left", str(out))
    assert tree(out) == before
    ballast.unlink()
    assert_clean(invoke(["run", "--as-of", "2026-03-02", "--out", str(out)], tmp_path), 0)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A read-only bind mount of a fresh folder (needs root: chmod does not stop root)."""
    src, mnt = tmp_path / "ro-src", tmp_path / "ro"
    src.mkdir()
    mnt.mkdir()
    ok = subprocess.run(["mount", "--bind", str(src), str(mnt)], capture_output=True)
    if ok.returncode != 0:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        yield src
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("flag", ["--out", "--state"])
def test_read_only_directory(tmp_path: Path, read_only: Path, flag: str) -> None:
    project(tmp_path)
    mnt = tmp_path / "ro"
    assert_clean(invoke(["run", *AS_OF, flag, str(mnt)], tmp_path), 0)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True)
    before = tree(tmp_path)
    res = invoke(["run", "--as-of", "2026-03-02", flag, str(mnt)], tmp_path)
    assert_clean(res, 4, "read-only file system", str(mnt))
    assert_untouched(before, tmp_path, own=(".segcli",) if flag == "--out" else ())


# ------------------------------------------------------------------ a state at a URI


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("nosuch://bucket/state", "no file system for nosuch://"),
        ("file://otherhost/state", "file:///path"),
    ],
)
def test_a_state_uri_nothing_can_open_is_exit_2(tmp_path: Path, uri: str, needle: str) -> None:
    """A scheme no installed library reads, or a file:// URI naming another host: exit 2
    saying why, before anything is written (it used to be a path `nosuch:/bucket/state`
    made in the working directory)."""
    project(tmp_path)
    before = tree(tmp_path)
    result = invoke(["run", *AS_OF, "--state", uri], tmp_path)
    assert_clean(result, 2, needle)
    assert_untouched(before, tmp_path)


def test_a_store_that_fails_is_exit_4_naming_the_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An object store's own error (here: memory:// raising what a cloud SDK raises for
    missing credentials) is exit 4 naming the URI, not an internal error; the local
    project is untouched."""
    from segcli import storage

    project(tmp_path)
    before = tree(tmp_path)

    class NoCredentialsError(Exception):
        pass

    def refuse(*args: object, **kwargs: object) -> object:
        raise NoCredentialsError("Unable to locate credentials")

    real = storage.location

    def location(text: str | Path) -> storage.Loc:
        loc = real(text)
        if isinstance(loc, storage.Remote):
            monkeypatch.setattr(loc.fs.fs, "exists", refuse)
            monkeypatch.setattr(loc.fs.fs, "cat_file", refuse)
        return loc

    monkeypatch.setattr(storage, "location", location)
    uri = "memory://segcli-fault/state"
    result = invoke(["run", *AS_OF, "--state", uri, "--out", "memory://segcli-fault/o"], tmp_path)
    assert_clean(result, 4, uri, "NoCredentialsError: Unable to locate credentials")
    assert "internal error" not in result.output
    assert_untouched(before, tmp_path)


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_an_ever_column_that_changes_type_restarts_its_history(tmp_path: Path, engine: str) -> None:
    """A column an `ever: true` leaf reads was text, then numbers: the next run compared
    the stored text values with the number literal and stopped with an internal error
    (exit 4). Now its history restarts, said in a note, and the run commits (exit 0)."""
    leaf = "}}\nsegments:\n  was: {where: {field: stage, ne: %s, ever: true}}\n"
    head = "version: 1\ntimezone: UTC\nsources:\n  contacts: {path: c.csv, key: id, columns: {"
    for kind, value, at in (("str", "'9'", "2026-11-01"), ("int", "9", "2026-11-08")):
        (tmp_path / "segments.yaml").write_text(head + f"stage: {kind}" + leaf % value)
        (tmp_path / "c.csv").write_text("id,stage\n1,1\n2,5\n")
        result = invoke(["run", "--as-of", at, "--engine", engine], tmp_path)
        assert_clean(result, 0)
    assert "column 'stage' changed type: its stored history (ever: true) restarts" in (
        result.output.replace("\n", " ")
    )
