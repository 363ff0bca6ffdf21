"""Warnings for things declared but never used."""

from __future__ import annotations

from collections.abc import Iterator

from pipegen.checks import CheckContext, check
from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import ExpressionError, parse_template


@check
def unused_backends(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A declared backend that no step uses."""
    used = {body.backend for s in ctx.spec.steps if (body := s.task or s.train) is not None}
    for name in ctx.spec.backends:
        if name not in used:
            yield diag("PG700", f"backend '{name}' is not used by any step", ctx.smap.key(("backends", name)))


@check
def unused_params(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A declared parameter that no expression references."""
    used: set[str] = set()
    for _, text in ctx.templates:
        try:
            used.update(r.name for r in parse_template(text).refs if r.namespace == "params")
        except ExpressionError:
            continue
    for name in ctx.spec.params:
        if name not in used:
            yield diag("PG701", f"parameter '{name}' is not referenced by any step", ctx.smap.key(("params", name)))
