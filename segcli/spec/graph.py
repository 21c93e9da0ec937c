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


def find_cycle(segments: dict[str, m.Segment]) -> list[str] | None:
    """A reference cycle as a list of names (first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for dep in segment_refs(segments[name]):
            if dep not in segments:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[name] = 2
        return None

    for name in segments:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


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
