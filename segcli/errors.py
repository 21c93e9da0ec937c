"""Errors and diagnostics: every user-facing failure is a SegcliError with an exit code."""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_CHECK = 1
EXIT_SPEC = 2
EXIT_DATA = 3
EXIT_STATE = 4
EXIT_PENDING = 5


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a spec file, located by file, line and column (1-based)."""

    code: str
    message: str
    file: str
    line: int = 0
    col: int = 0
    path: str = ""
    help: str | None = None
    end_col: int | None = None

    def to_json(self) -> dict[str, object]:
        """The diagnostic as a JSON-ready mapping."""
        return {
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "path": self.path,
            "help": self.help,
        }


class SegcliError(Exception):
    """Base of every error the CLI turns into a message and an exit code."""

    exit_code = EXIT_SPEC

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(SegcliError):
    """Bad command-line usage (unknown segment name, bad option value)."""

    exit_code = EXIT_SPEC


@dataclass
class SpecError(SegcliError):
    """A spec file has one or more problems; all of them are carried."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.diagnostics)
        super().__init__(f"{n} error{'s' if n != 1 else ''} in spec")

    exit_code = EXIT_SPEC


class DataError(SegcliError):
    """An input file is missing, malformed, or violates the contract (exit 3)."""

    exit_code = EXIT_DATA


class StateError(SegcliError):
    """The state directory is locked, corrupt, or ahead of the requested run (exit 4)."""

    exit_code = EXIT_STATE


class CheckFailedError(SegcliError):
    """A data check or a segment expectation failed (exit 1)."""

    exit_code = EXIT_CHECK


class WriteError(StateError):
    """A file of the state or the outputs could not be written (full disk, read-only, a file
    where a directory should be): exit 4, naming the path; nothing was committed."""
