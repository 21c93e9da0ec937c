"""The fault-injection suite's shared checks: an exit code of 0-5 with a clear message, no
traceback without --debug, and nothing outside segcli's own files changed.

Each area keeps its cases in its own file (tests/faults/test_<area>.py) and uses these helpers.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from typer.testing import CliRunner, Result

from segcli.cli import app

ENV = {"NO_COLOR": "1", "COLUMNS": "100", "TERM": "dumb"}


def invoke(args: list[str], cwd: Path) -> Result:
    """Run the CLI in-process with `cwd` as the working directory."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, args, env=ENV)
    finally:
        os.chdir(old)


def assert_clean(result: Result, code: int, *needles: str) -> None:
    """Exit `code` (one of 0-5), no traceback, and every needle in the output."""
    out = result.output
    assert result.exit_code in range(6), f"exit {result.exit_code} outside 0-5:\n{out}"
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}:\n{out}"
    assert "Traceback" not in out, out
    # An uncaught exception inside CliRunner is a crash even when it prints nothing.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {result.exception!r}:\n{out}")
    for needle in needles:
        assert needle in out, f"{needle!r} not in output:\n{out}"


def tree(path: Path) -> dict[str, str]:
    """Every file and folder under `path` with a digest of its content (folders: 'dir')."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "special"
    return out


def assert_untouched(before: dict[str, str], path: Path, own: tuple[str, ...] = ()) -> None:
    """Nothing under `path` changed, except entries whose path starts with one of `own`."""
    after = tree(path)

    def foreign(d: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in d.items() if not any(k.startswith(o) for o in own)}

    assert foreign(after) == foreign(before)
