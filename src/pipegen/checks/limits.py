"""Limits that depend on more than one value: a field's range where a backend narrows it (pipegen.spec.LIMITS)."""

from __future__ import annotations

from collections.abc import Iterator

from pipegen.checks import CheckContext, check
from pipegen.diagnostics import Diagnostic, diag
from pipegen.durations import parse_duration
from pipegen.spec import LIMITS, SageMakerBackend
from pipegen.spec.limits import outside


@check
def sagemaker_timeouts(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A step on a SageMaker backend times out within what SageMaker takes as MaxRuntimeInSeconds."""
    limit = LIMITS["sagemaker.timeout"]
    for i, step in enumerate(ctx.spec.steps):
        body = step.task or step.train
        name = body.backend if body is not None else None
        if name is None or not isinstance(ctx.spec.backends.get(name), SageMakerBackend):
            continue
        # Every target passes the step's timeout (its own, else the default) to the training job.
        timeout, where = (
            (step.timeout, ("steps", i, "timeout"))
            if step.timeout
            else (ctx.spec.defaults.timeout, ("defaults", "timeout"))
        )
        if timeout is not None and parse_duration(timeout) > limit.high:
            shown = f"{timeout!r} of step '{step.name}' on SageMaker backend '{name}'"
            message, hint = outside(limit, shown, parse_duration(timeout))
            yield diag("PG210", message, ctx.at(*where), hint)
