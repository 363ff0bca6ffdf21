"""The step graph: who runs after whom, in one deterministic order."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from pipegen.spec import Spec, Step


@dataclass(frozen=True)
class StepGraph:
    """Steps as a DiGraph (edge u -> v: v runs after u) with cycles found up front."""

    graph: nx.DiGraph[str]
    cycles: tuple[tuple[str, ...], ...]

    def order(self) -> list[str]:
        """Steps in topological order, ties broken by name (needs an acyclic graph)."""
        return list(nx.lexicographical_topological_sort(self.graph))

    def upstream(self, name: str) -> list[str]:
        """Direct dependencies of a step, sorted."""
        return sorted(self.graph.predecessors(name))

    def ancestors(self, name: str) -> set[str]:
        """Every step that must finish before this one."""
        return set(nx.ancestors(self.graph, name))


def dependencies(steps: list[Step], index: int) -> list[str]:
    """A step's declared dependencies: its 'after', or else the step above it."""
    step = steps[index]
    if step.after is not None:
        return list(step.after)
    return [steps[index - 1].name] if index > 0 else []


def build_graph(spec: Spec) -> StepGraph:
    """Build the step graph; unknown names in 'after' are left to the checks."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    first: dict[str, int] = {}
    for i, step in enumerate(spec.steps):
        first.setdefault(step.name, i)
    for name in first:
        graph.add_node(name)
    for name, i in first.items():
        for dep in dependencies(list(spec.steps), i):
            if dep in first:
                graph.add_edge(dep, name)
    return StepGraph(graph, _cycles(graph))


def _cycles(graph: nx.DiGraph[str]) -> tuple[tuple[str, ...], ...]:
    """One cycle per strongly connected component, starting at its smallest name."""
    found = []
    for component in nx.strongly_connected_components(graph):
        start = min(component)
        if len(component) == 1 and not graph.has_edge(start, start):
            continue
        sub = graph.subgraph(component)
        edges = nx.find_cycle(sub, source=start)
        found.append(tuple([edges[0][0], *(v for _, v in edges)]))
    return tuple(sorted(found))
