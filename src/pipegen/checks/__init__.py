"""The check registry: small functions that each return every problem of one kind."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pipegen.diagnostics import Diagnostic, Location
from pipegen.graph import StepGraph
from pipegen.loader import PathKey, SourceMap
from pipegen.spec import Spec, Step


@dataclass
class CheckContext:
    """What a check may look at: the validated spec, its raw data, locations and the graph."""

    spec: Spec
    data: dict[str, Any]
    smap: SourceMap
    graph: StepGraph
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, step in enumerate(self.spec.steps):
            self.index.setdefault(step.name, i)

    @cached_property
    def templates(self) -> list[tuple[PathKey, str]]:
        """Every template string in the spec with its data path, walked once for all the checks that read them."""
        from pipegen.walk import iter_templates

        return list(iter_templates(self.spec))

    def at(self, *path: str | int) -> Location:
        """The location of the value at a data path."""
        return self.smap.value(tuple(path))

    def step_at(self, step_index: int, *path: str | int) -> Location:
        """The location of a value inside step number step_index."""
        return self.smap.value(("steps", step_index, *path))

    def step(self, name: str) -> Step | None:
        """The first step with this name, if any."""
        i = self.index.get(name)
        return self.spec.steps[i] if i is not None else None


Check = Callable[[CheckContext], Iterable[Diagnostic]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    """Register a check function."""
    CHECKS.append(fn)
    return fn


def run_checks(ctx: CheckContext) -> list[Diagnostic]:
    """Run every registered check and return all diagnostics."""
    out: list[Diagnostic] = []
    for fn in CHECKS:
        out.extend(fn(ctx))
    return out


def path_of(*parts: str | int) -> PathKey:
    """A data path from its parts."""
    return tuple(parts)


# Importing the modules registers their checks.
from pipegen.checks import (  # noqa: E402,F401
    credentials,
    distributed,
    limits,
    references,
    structure,
    target_options,
    usage,
)
