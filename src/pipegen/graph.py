"""The step graph: who runs after whom, in one deterministic order."""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING

from pipegen.spec import Spec, Step

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True)
class StepGraph:
    """Steps and their direct dependencies (edge u -> v: v runs after u), with cycles found up front."""

    preds: dict[str, tuple[str, ...]]
    cycles: tuple[tuple[str, ...], ...]

    def order(self) -> list[str]:
        """Steps in topological order, ties broken by name (needs an acyclic graph)."""
        sorter = TopologicalSorter(self.preds)
        sorter.prepare()
        ready = list(sorter.get_ready())
        heapq.heapify(ready)
        out = []
        while ready:
            name = heapq.heappop(ready)
            out.append(name)
            sorter.done(name)
            for nxt in sorter.get_ready():
                heapq.heappush(ready, nxt)
        return out

    @cached_property
    def graph(self) -> nx.DiGraph[str]:
        """The graph as a networkx DiGraph, for tools that want graph algorithms (imports networkx)."""
        return _digraph(self.preds)

    def edges(self) -> list[tuple[str, str]]:
        """Every (dependency, step) pair."""
        return _edges(self.preds)

    def upstream(self, name: str) -> list[str]:
        """Direct dependencies of a step, sorted."""
        return sorted(self.preds[name])

    def ancestors(self, name: str) -> set[str]:
        """Every step that must finish before this one."""
        seen: set[str] = set()
        queue = deque(self.preds[name])
        while queue:
            dep = queue.popleft()
            if dep not in seen:
                seen.add(dep)
                queue.extend(self.preds[dep])
        return seen


def dependencies(steps: list[Step], index: int) -> list[str]:
    """A step's declared dependencies: its 'after', or else the step above it."""
    step = steps[index]
    if step.after is not None:
        return list(step.after)
    return [steps[index - 1].name] if index > 0 else []


def build_graph(spec: Spec) -> StepGraph:
    """Build the step graph; unknown names in 'after' are left to the checks."""
    first: dict[str, int] = {}
    for i, step in enumerate(spec.steps):
        first.setdefault(step.name, i)
    steps = list(spec.steps)
    preds = {name: tuple(dict.fromkeys(d for d in dependencies(steps, i) if d in first)) for name, i in first.items()}
    return StepGraph(preds, _cycles(preds))


def _cycles(preds: dict[str, tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    """One cycle per strongly connected component, starting at its smallest name."""
    try:
        TopologicalSorter(preds).prepare()
    except CycleError:
        # Only a spec with a cycle pays for networkx (~0.1 s to import), which reports every cycle.
        return _all_cycles(preds)
    return ()


def _digraph(preds: dict[str, tuple[str, ...]]) -> nx.DiGraph[str]:
    import networkx as nx

    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(preds)
    graph.add_edges_from(_edges(preds))
    return graph


def _edges(preds: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    return [(dep, name) for name, deps in preds.items() for dep in deps]


def _all_cycles(preds: dict[str, tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    import networkx as nx

    graph = _digraph(preds)
    found = []
    for component in nx.strongly_connected_components(graph):
        start = min(component)
        if len(component) == 1 and not graph.has_edge(start, start):
            continue
        edges = nx.find_cycle(graph.subgraph(component), source=start)
        found.append(tuple([edges[0][0], *(v for _, v in edges)]))
    return tuple(sorted(found))
