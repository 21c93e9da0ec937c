"""The console script's entry point.

Importing segcli (Polars above all) takes a good part of a second. Ctrl-C in that time used to
end in a Python traceback; here it ends quietly with exit 4, since nothing was started. Once
the command line is parsed, Ctrl-C raises KeyboardInterrupt as usual, so a run unwinds and
releases its lock; the CLI's error boundary reports it as exit 4 ("interrupted"), and so is
an interrupt that Click itself reports ("Aborted!", exit 1).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from types import FrameType

EXIT_INTERRUPTED = 4
_interrupted = False
# Polars' allocator (jemalloc) hands freed pages back to the kernel at once by default; a run
# frees and reallocates hash tables and batches all the time, and the page faults that follow
# cost ~10% of a run's CPU (docs/performance.md). Keeping freed pages for two seconds
# saves most of that. Read by jemalloc when Polars loads: set before the first import, and
# only when the user has not configured it.
ALLOCATOR_CONF = ("_RJEM_MALLOC_CONF", "dirty_decay_ms:2000,muzzy_decay_ms:2000")
YOUNG_OBJECTS = 20_000  # the collector's first threshold once segcli is imported


def _quit_at_start_up(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"interrupted\n")
    os._exit(EXIT_INTERRUPTED)  # nothing to unwind yet: no lock, no file written


def _interrupt(signum: int, frame: FrameType | None) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether Ctrl-C came during this command (the CLI then reports any failure it caused
    as "interrupted": a KeyboardInterrupt raised in Python code that a library (Polars) called
    back can come out as that library's own error)."""
    return _interrupted


def _unraisable(args: sys.UnraisableHookArgs) -> None:
    """Python's hook for exceptions it cannot raise, without the one Ctrl-C makes: when the
    interrupt lands in a library's callback, Python can only print it, as a traceback."""
    if args.exc_type is not None and issubclass(args.exc_type, KeyboardInterrupt):
        return
    sys.__unraisablehook__(args)


def main() -> None:
    """Run the CLI; every way Ctrl-C can end it is exit 4 without a traceback."""
    signal.signal(signal.SIGINT, _quit_at_start_up)
    os.environ.setdefault(*ALLOCATOR_CONF)
    # Importing creates a few hundred thousand objects that live as long as the process; the
    # cyclic garbage collector would walk them again and again (~40 ms of the demo's run).
    # Collect nothing while importing, then set them aside (gc.freeze) for good. A run then
    # makes many short-lived objects (plan nodes, expressions) and few cycles: collecting
    # every 700 allocations cost the demo ~8 ms in 32 collections, every YOUNG_OBJECTS ~3.
    gc.disable()
    try:
        from segcli.cli import main as cli_main
    finally:
        gc.freeze()
        gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])
        gc.enable()

    signal.signal(signal.SIGINT, _interrupt)
    sys.unraisablehook = _unraisable
    try:
        cli_main()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit as exc:
        if _interrupted and exc.code not in (0, None):
            if exc.code != EXIT_INTERRUPTED:  # not already reported by the CLI
                sys.stderr.write("interrupted\n")
            sys.exit(EXIT_INTERRUPTED)
        raise
    finally:
        # The command is done: a Ctrl-C while the interpreter shuts down changes nothing,
        # and must not turn a finished run's exit code into a death by signal.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
