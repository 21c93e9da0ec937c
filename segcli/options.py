"""Command-line values without Pydantic: typer (0.29) coerces every given option through a
Pydantic TypeAdapter, and importing Pydantic and building the adapters costs ~60 ms of every
command's start-up (more than the demo's plan). segcli's options are plain: `str`, `int`,
`Path` and `list[str]`, with no constraints. For those, a value in the ordinary form is
coerced here to exactly what the adapter gives (typer's own path checks still run); anything
else (an `int` written `+5`, an empty path, a type segcli does not use) goes to typer's
adapter as before, so its messages are unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_INT = re.compile(r"-?[0-9]{1,18}")


def _plain(value: Any, annotation: Any, info: Any) -> Any:
    """The coerced value, or NotImplemented when typer's adapter should decide."""
    if getattr(info, "parser", None) is not None:
        return NotImplemented
    if annotation is str and isinstance(value, str):
        return value
    unconstrained = info.min is None and info.max is None
    if annotation is int and isinstance(value, str) and _INT.fullmatch(value) and unconstrained:
        return int(value)
    plain_list = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    if annotation == list[str] and plain_list:
        return list(value)
    return NotImplemented


class _Coercion:
    """typer's runtime parameter for one option: the plain path first, the adapter (built
    only when needed) otherwise."""

    def __init__(self, descriptor: Any, build: Any) -> None:
        self.descriptor = descriptor
        self._build = build
        self._real: Any = None

    def real(self) -> Any:
        if self._real is None:
            self._real = self._build(self.descriptor)
        return self._real

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        d = self.descriptor
        multi = param.multiple or param.nargs == -1
        if value is None and d.file_annotation is None:
            return () if multi else None
        if d.file_annotation is None and not (multi and isinstance(value, str)):
            out = _plain(value, d.annotation, d.parameter_info)
            if out is not NotImplemented:
                return out
            if d.annotation is Path and isinstance(value, str | Path) and str(value):
                return _path(Path(value), d.parameter_info, param, ctx)
        return self.real().coerce(value, param=param, ctx=ctx)


def _path(value: Path, info: Any, param: Any, ctx: Any) -> Any:
    from typer._param_types import coerce_cli_path

    path_type = info.path_type or Path
    return coerce_cli_path(value, info, path_type=path_type, param=param, ctx=ctx)


def install() -> None:
    """Make typer coerce plain option values without Pydantic (when this typer has the
    runtime parameters it is written for; otherwise nothing changes)."""
    try:
        import typer.core as core
    except ImportError:  # pragma: no cover - typer is a dependency
        return
    param_class = getattr(core, "_TyperParameter", None)
    build = getattr(core, "build_runtime_param", None)
    if param_class is None or build is None or not hasattr(param_class, "get_runtime_param"):
        return

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            self._runtime_param = _Coercion(self.type_descriptor, build)
        return self._runtime_param

    param_class.get_runtime_param = get_runtime_param
