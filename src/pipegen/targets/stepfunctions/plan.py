"""Which steps run side by side: the step graph as nested sequences and Parallel branches.

A graph whose order is series-parallel becomes exactly that: `Seq` of parts where every step of a
part runs after every step of the parts before it, `Par` of parts that share no dependency. A part
that is neither (its order holds an "N": a->c, b->c, b->d but not a->d) runs in waves by dependency
depth: that only adds waits (a step may wait for a step it does not need), never drops one.

Everything here is linear in steps plus dependencies per nesting level, and the nesting is bounded
(MAX_NESTING), so a 10,000-step chain costs what it looks like: one pass.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

# Deeper nesting than this (a "comb" of side steps hanging off a long chain) runs in waves instead:
# it bounds the work per step, and Parallel states nested thousands deep help nobody read the machine.
MAX_NESTING = 32


@dataclass
class Seq:
    """Items that run one after another. exact: each item depends (transitively) on every item before it."""

    items: list[str | Par]
    exact: bool = True


@dataclass
class Par:
    """Branches that run at the same time."""

    branches: list[Seq]
    # Why this Parallel serialises more than the graph says (the waves of a non-series-parallel part).
    note: str | None = None
    # Set by the lowering: the Parallel state's name.
    name: str = ""


def plan(order: Sequence[str], upstream: dict[str, Sequence[str]]) -> Seq:
    """The steps (in topological order) as one sequence of steps and Parallel states."""
    downstream: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for up in upstream[name]:
            downstream[up].append(name)
    return _as_seq(_decompose(list(order), upstream, downstream, 0))


def _as_seq(item: str | Par | Seq) -> Seq:
    return item if isinstance(item, Seq) else Seq([item])


def _decompose(
    nodes: list[str], up: dict[str, Sequence[str]], down: dict[str, list[str]], depth: int
) -> str | Par | Seq:
    if len(nodes) == 1:
        return nodes[0]
    members = set(nodes)
    parts = _components(nodes, members, up, down)
    if len(parts) > 1:
        if depth >= MAX_NESTING:
            return _waves(nodes, members, up, f"nested more than {MAX_NESTING} Parallel states deep")
        return Par([_as_seq(_decompose(p, up, down, depth + 1)) for p in parts])
    cuts = _series_cuts(nodes, members, up, down)
    if not cuts:
        return _waves(nodes, members, up, "not series-parallel")
    bounds = [0, *cuts, len(nodes)]
    items: list[str | Par] = []
    for start, end in itertools.pairwise(bounds):
        part = _decompose(nodes[start:end], up, down, depth)
        assert not isinstance(part, Seq)  # a part has no series cut of its own
        items.append(part)
    return Seq(items)


def _components(
    nodes: list[str], members: set[str], up: dict[str, Sequence[str]], down: dict[str, list[str]]
) -> list[list[str]]:
    """Weakly connected parts of nodes, each in topological order, ordered by their first step."""
    root: dict[str, str] = {}

    def find(x: str) -> str:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    for name in nodes:
        root[name] = name
    for name in nodes:
        for u in up[name]:
            if u in members:
                a, b = find(u), find(name)
                if a != b:
                    root[b] = a
    groups: dict[str, list[str]] = {}
    for name in nodes:
        groups.setdefault(find(name), []).append(name)
    return list(groups.values())


def _series_cuts(
    nodes: list[str], members: set[str], up: dict[str, Sequence[str]], down: dict[str, list[str]]
) -> list[int]:
    """Positions p where every step before p is an ancestor of every step from p on.

    Walks the topological order once, keeping the prefix's sinks, the suffix's sources and the number
    of edges from a sink to a source: p is a cut when those edges join every sink to every source
    (each step before p reaches a sink, each step after is reached from a source). Each step changes
    status at most twice and each change scans its edges once: linear.
    """
    preds = {n: [u for u in up[n] if u in members] for n in nodes}
    succs = {n: [d for d in down[n] if d in members] for n in nodes}
    in_prefix: set[str] = set()
    out_in_prefix = dict.fromkeys(nodes, 0)
    in_suffix = {n: len(preds[n]) for n in nodes}
    sinks = 0
    sources = sum(1 for n in nodes if in_suffix[n] == 0)
    links = 0

    def is_sink(x: str) -> bool:
        return x in in_prefix and out_in_prefix[x] == 0

    def is_source(x: str) -> bool:
        return x not in in_prefix and in_suffix[x] == 0

    cuts = []
    for p, v in enumerate(nodes[:-1], start=1):
        # v leaves the suffix (as a source: its predecessors are all before it) ...
        links -= sum(1 for u in preds[v] if is_sink(u))
        sources -= 1
        in_suffix[v] = -1  # counted out: no longer a source for the updates below
        for u in preds[v]:
            out_in_prefix[u] += 1
            if out_in_prefix[u] == 1:  # u has a successor in the prefix now: no longer a sink
                links -= sum(1 for w in succs[u] if is_source(w))
                sinks -= 1
        for w in succs[v]:
            in_suffix[w] -= 1
            if in_suffix[w] == 0:
                sources += 1
                links += sum(1 for u in preds[w] if is_sink(u))
        # ... and joins the prefix as a sink (its successors are all after it).
        in_prefix.add(v)
        sinks += 1
        links += sum(1 for w in succs[v] if is_source(w))
        if links == sinks * sources:
            cuts.append(p)
    return cuts


def _waves(nodes: list[str], members: set[str], up: dict[str, Sequence[str]], why: str) -> Par:
    """Steps by dependency depth, each wave after the whole wave before it: sound, but it may add waits.

    Returned as a one-branch Parallel whose Comment says so, so the definition shows where and why.
    """
    level: dict[str, int] = {}
    for name in nodes:
        level[name] = max((level[u] + 1 for u in up[name] if u in members), default=0)
    waves: list[list[str]] = [[] for _ in range(max(level.values()) + 1)]
    for name in nodes:
        waves[level[name]].append(name)
    items: list[str | Par] = [w[0] if len(w) == 1 else Par([Seq([n]) for n in w]) for w in waves]
    shown = ", ".join(nodes[:6]) + (", ..." if len(nodes) > 6 else "")
    note = (
        f"Steps {shown} are {why}: they run in {len(waves)} waves by dependency depth, so a step may "
        "wait for steps it does not depend on (never the other way round)."
    )
    return Par([Seq(items, exact=False)], note=note)
