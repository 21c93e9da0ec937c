"""`segcli ARGS...` that, holding the state lock, stops at the commit until GO exists.

Usage: python slow_run.py READY GO segcli-args...  (READY is created when it stops.)
Used to make one real run deterministically slow for the concurrency tests.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from segcli import cli
from segcli.state import store as state

ready, go = Path(sys.argv[1]), Path(sys.argv[2])
commit = state.StateDir.commit


def held_commit(self: state.StateDir, *args: Any, **kwargs: Any) -> Any:
    ready.touch()
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return commit(self, *args, **kwargs)


state.StateDir.commit = held_commit  # type: ignore[method-assign]
sys.argv = ["segcli", *sys.argv[3:]]
cli.main()
