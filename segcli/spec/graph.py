"""The segment reference graph: dependencies, cycles and evaluation order."""

from __future__ import annotations

from collections.abc import Iterator

from segcli.spec import model as m


def children(cond: m.Condition) -> tuple[m.Condition, ...]:
    """The direct sub-conditions of all / any / at_least / not / account (none for leaves)."""
    if isinstance(cond, m.AllCond | m.AnyCond | m.AtLeastCond):
        return cond.items
    if isinstance(cond, m.NotCond):
        return (cond.item,)
    if isinstance(cond, m.AccountCond):
        return (cond.where,)  # judged on the account's contacts, but a condition all the same
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
    each as a list of names (first repeated at the end); [] when the graph has none.

    The walk keeps its own stack: a chain of thousands of segments must not hit Python's
    recursion limit."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[list[str]] = []
    for root in segments:
        if root in state:
            continue
        state[root] = 1
        path, todo = [root], [iter(segment_refs(segments[root]))]
        while todo:
            dep = next(todo[-1], None)
            if dep is None:
                state[path.pop()] = 2
                todo.pop()
            elif dep not in segments:
                continue
            elif state.get(dep) == 1:
                found.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                state[dep] = 1
                path.append(dep)
                todo.append(iter(segment_refs(segments[dep])))
    return found


def find_cycle(segments: dict[str, m.Segment]) -> list[str] | None:
    """The first reference cycle (see `find_cycles`), or None."""
    cycles = find_cycles(segments)
    return cycles[0] if cycles else None


def order(segments: dict[str, m.Segment], wanted: list[str] | None = None) -> list[str]:
    """Segments in dependency order (dependencies first); `wanted` plus what they depend on.

    Depth first with its own stack, like `find_cycles`."""
    out: list[str] = []
    seen: set[str] = set()
    for root in wanted if wanted is not None else list(segments):
        if root in seen:
            continue
        seen.add(root)
        path, todo = [root], [iter(segment_refs(segments[root]))]
        while todo:
            dep = next(todo[-1], None)
            if dep is None:
                out.append(path.pop())
                todo.pop()
            elif dep not in seen:
                seen.add(dep)
                path.append(dep)
                todo.append(iter(segment_refs(segments[dep])))
    return out
