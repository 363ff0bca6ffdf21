"""Checks on the shape of the step list: names, dependencies, cycles, timings."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from pipegen.checks import CheckContext, check
from pipegen.diagnostics import Diagnostic, Location, diag, did_you_mean
from pipegen.durations import parse_duration

RESERVED_PREFIX = "pipegen"


@check
def duplicate_step_names(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Every step name is unique."""
    for i, step in enumerate(ctx.spec.steps):
        first = ctx.index[step.name]
        if first != i:
            line = ctx.step_at(first, "name").line
            yield diag(
                "PG300", f"duplicate step name '{step.name}' (first defined at line {line})", ctx.step_at(i, "name")
            )


@check
def reserved_step_names(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Generated helper tasks are named 'pipegen_*'; user steps may not take those names."""
    for i, step in enumerate(ctx.spec.steps):
        if step.name.startswith(RESERVED_PREFIX):
            yield diag(
                "PG601", f"step name '{step.name}' uses the reserved prefix '{RESERVED_PREFIX}'", ctx.step_at(i, "name")
            )


@check
def unknown_dependencies(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Every name in 'after' is a step."""
    for i, step in enumerate(ctx.spec.steps):
        for j, dep in enumerate(step.after or []):
            if dep not in ctx.index:
                yield diag(
                    "PG301",
                    f"step '{step.name}' runs after unknown step '{dep}'{did_you_mean(dep, ctx.index)}",
                    ctx.step_at(i, "after", j),
                )


@check
def dependency_cycles(ctx: CheckContext) -> Iterator[Diagnostic]:
    """The steps form no cycle; each is reported at the 'after' entry that closes it."""
    for cycle in ctx.graph.cycles:
        yield diag("PG302", f"dependency cycle: {' -> '.join(cycle)}", _cycle_location(ctx, cycle))


def _cycle_location(ctx: CheckContext, cycle: tuple[str, ...]) -> Location:
    for before, name in itertools.pairwise(cycle):
        i = ctx.index[name]
        after = ctx.spec.steps[i].after
        if after is not None and before in after:
            return ctx.step_at(i, "after", after.index(before))
    return ctx.step_at(ctx.index[cycle[0]], "name")


@check
def wait_fits_timeout(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A gate's wait checks at least once before it times out (each bound alone is pipegen.spec.LIMITS')."""
    for i, step in enumerate(ctx.spec.steps):
        wait = step.gate.wait if step.gate is not None else None
        if wait is not None and parse_duration(wait.interval) > parse_duration(wait.timeout):
            yield diag(
                "PG400",
                f"gate '{step.name}' waits {wait.timeout} but checks only every {wait.interval}",
                ctx.step_at(i, "gate", "wait", "interval"),
                "make the interval shorter than the timeout",
            )
