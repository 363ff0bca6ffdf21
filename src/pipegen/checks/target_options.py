"""Checks on the `targets:` section: known target names and valid options for each."""

from __future__ import annotations

from collections.abc import Iterator

from pipegen.checks import CheckContext, check
from pipegen.diagnostics import Diagnostic, diag, did_you_mean


@check
def target_options(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Each key under `targets:` names an available target, and its options validate."""
    from pipegen.parse import validate_model
    from pipegen.targets import available

    targets = available()
    for name, options in ctx.spec.targets.items():
        target = targets.get(name)
        if target is None:
            known = ", ".join(targets) or "none"
            yield diag(
                "PG603",
                f"unknown target '{name}'{did_you_mean(name, targets)}",
                ctx.smap.key(("targets", name)),
                f"available targets: {known}",
            )
            continue
        _, diags = validate_model(target.options_model, options, ctx.smap, ("targets", name))
        yield from diags
