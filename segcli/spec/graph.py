"""The segment reference graph: dependencies, cycles and evaluation order."""

from __future__ import annotations

from collections.abc import Iterator

from segcli.spec import model as m


def children(cond: m.Condition) -> tuple[m.Condition, ...]:
    """The direct sub-conditions of all / any / not (none for leaves)."""
    if isinstance(cond, m.AllCond | m.AnyCond):
        return cond.items
    if isinstance(cond, m.NotCond):
        return (cond.item,)
    return ()


def walk(cond: m.Condition | None) -> Iterator[m.Condition]:
    """Every condition node under `cond`, depth first."""
    if cond is None:
        return
    yield cond
    for c in children(cond):
        yield from walk(c)


def segment_refs(seg: m.Segment) -> list[str]:
    """Names of the segments `seg` refers to (in where and exclude), in order of appearance."""
    out: list[str] = []
    for root in (seg.where, seg.exclude):
        for c in walk(root):
            if isinstance(c, m.SegmentRef) and c.name not in out:
                out.append(c.name)
    return out


def find_cycles(segments: dict[str, m.Segment]) -> list[list[str]]:
    """Every reference cycle found by a depth-first walk, one per edge that closes a loop,
    each as a list of names (first repeated at the end); [] when the graph has none."""
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in segment_refs(segments[name]):
            if dep not in segments:
                continue
            if state.get(dep) == 1:
                found.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in segments:
        if name not in state:
            visit(name)
    return found


def find_cycle(segments: dict[str, m.Segment]) -> list[str] | None:
    """The first reference cycle (see `find_cycles`), or None."""
    cycles = find_cycles(segments)
    return cycles[0] if cycles else None


def order(segments: dict[str, m.Segment], wanted: list[str] | None = None) -> list[str]:
    """Segments in dependency order (dependencies first); `wanted` plus what they depend on."""
    out: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in segment_refs(segments[name]):
            visit(dep)
        out.append(name)

    for name in wanted if wanted is not None else list(segments):
        visit(name)
    return out
