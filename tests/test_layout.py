"""The package is laid out as its pipeline, and imports flow one way (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SEGCLI = Path(__file__).resolve().parents[1] / "segcli"

# Each layer may import the layers before it, never one after it.
ORDER = ["base", "spec", "planning", "engines", "state", "outputs", "api", "demo", "views", "cli"]
BASE = {"errors", "fs", "storage"}
# The package root re-exports the library facade (lazily); `python -m segcli` and the
# console script's entry point (entry.py) and its option values (options.py) are the CLI.
SPECIAL = {"__init__": "api", "__main__": "cli", "entry": "cli", "options": "cli"}
# The demo is a side branch: it may use the spec, nothing of the run pipeline.
DEMO_MAY_IMPORT = {"base", "spec", "demo"}


def layer(module: str) -> str:
    """The layer of a dotted module name under segcli (e.g. segcli.planning.compile -> planning)."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    if head in BASE:
        return "base"
    return SPECIAL.get(head, head)


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("segcli"):
            if node.module == "segcli":
                found += [f"segcli.{a.name}" for a in node.names if a.name != "__version__"]
            else:
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("segcli")]
    return found


def test_every_module_belongs_to_a_layer() -> None:
    for path in SEGCLI.rglob("*.py"):
        rel = path.relative_to(SEGCLI.parent).with_suffix("")
        name = ".".join(rel.parts)
        assert layer(name) in ORDER, f"{name} is in no layer of the pipeline"


def test_imports_flow_one_way() -> None:
    bad = []
    for path in SEGCLI.rglob("*.py"):
        rel = path.relative_to(SEGCLI.parent).with_suffix("")
        me = layer(".".join(rel.parts))
        for target in imports(path):
            other = layer(target)
            if me == "demo":
                ok = other in DEMO_MAY_IMPORT
            elif other == "demo":
                ok = me in ("views", "cli")
            else:
                ok = ORDER.index(other) <= ORDER.index(me)
            if not ok:
                bad.append(f"{rel}: {me} imports {target} ({other})")
    assert not bad, "imports against the pipeline's direction:\n" + "\n".join(bad)


def test_the_check_can_fail() -> None:
    # The rule itself: a later stage imported from an earlier one is refused.
    assert ORDER.index(layer("segcli.views.report")) > ORDER.index(layer("segcli.spec.model"))
    assert layer("segcli.errors") == "base"
