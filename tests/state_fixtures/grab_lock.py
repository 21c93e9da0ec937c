"""Wait until START (epoch seconds), try to take STATE's lock; on success create WON.

Usage: python grab_lock.py STATE START WON. Exit 0 on success, 4 when the lock is held.
WON holds "acquired released" (epoch seconds): holders must never overlap in time.
Checking whether the holder is alive is slowed down, so that every racer has read the
stale lock before any of them removes it: without a guard they would all "win".
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from segcli.errors import StateError
from segcli.state import store as state

alive = state._alive


def slow_alive(pid: int) -> bool:
    time.sleep(0.3)
    return alive(pid)


state._alive = slow_alive
path, start, won = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
try:
    lock = state.acquire_lock(path)
except StateError:
    sys.exit(4)
acquired = time.time()
time.sleep(1.0)  # hold it while the others try
released = time.time()
won.write_text(f"{acquired} {released} {os.getpid()}")
lock.release()
