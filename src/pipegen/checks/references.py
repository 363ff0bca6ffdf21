"""Checks that names refer to things that exist and have the right kind, in the right order."""

from __future__ import annotations

from collections.abc import Iterator

from pipegen.checks import CheckContext, check
from pipegen.diagnostics import Diagnostic, diag, did_you_mean
from pipegen.expr import ExpressionError, parse_template
from pipegen.thresholds import parse_threshold

IMPLICIT_BACKEND = "local"


@check
def backends_exist(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Every task and train step names a declared backend (or the implicit 'local')."""
    known = set(ctx.spec.backends) | {IMPLICIT_BACKEND}
    for i, step in enumerate(ctx.spec.steps):
        body = step.task or step.train
        if body is not None and body.backend is not None and body.backend not in known:
            yield diag(
                "PG303",
                f"step '{step.name}' uses unknown backend '{body.backend}'{did_you_mean(body.backend, known)}",
                ctx.step_at(i, step.kind, "backend"),
            )


@check
def run_of_targets(ctx: CheckContext) -> Iterator[Diagnostic]:
    """An evaluate or promote step names an existing train step that runs before it."""
    for i, step in enumerate(ctx.spec.steps):
        body = step.evaluate or step.promote
        if body is None:
            continue
        where = ctx.step_at(i, step.kind, "run_of")
        target = ctx.step(body.run_of)
        if target is None:
            yield diag(
                "PG301",
                f"step '{step.name}' reads unknown step '{body.run_of}'{did_you_mean(body.run_of, ctx.index)}",
                where,
            )
        elif target.kind != "train":
            yield diag(
                "PG304",
                f"'run_of' of step '{step.name}' names {target.kind} step '{body.run_of}', not a train step",
                where,
            )
        elif not ctx.graph.cycles and body.run_of not in ctx.graph.ancestors(step.name):
            yield diag("PG307", f"step '{step.name}' reads the run of '{body.run_of}' but does not run after it", where)


@check
def metrics_declared(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Thresholds and champion metrics are metrics the train step declares it logs."""
    for i, step in enumerate(ctx.spec.steps):
        ev = step.evaluate
        train = ctx.step(ev.run_of) if ev else None
        if ev is None or train is None or train.train is None:
            continue
        declared = train.train.metrics
        used: list[tuple[str, tuple[str | int, ...], str]] = [
            (parse_threshold(t).metric, ("thresholds", j), "threshold") for j, t in enumerate(ev.thresholds)
        ]
        if ev.champion is not None:
            used.append((ev.champion.metric, ("champion", "metric"), "champion"))
        for metric, sub, what in used:
            if metric not in declared:
                yield diag(
                    "PG305",
                    f"{what} metric '{metric}' is not logged by step '{train.name}'{did_you_mean(metric, declared)}",
                    ctx.step_at(i, "evaluate", *sub),
                    f"add '{metric}' to the 'metrics' of step '{train.name}'",
                )


@check
def promote_after_evaluate(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A promote step runs after an evaluate step that judged the same run."""
    if ctx.graph.cycles:
        return
    for i, step in enumerate(ctx.spec.steps):
        pr = step.promote
        if pr is None or ctx.step(pr.run_of) is None:
            continue
        ancestors = ctx.graph.ancestors(step.name)
        judged = any(
            s.evaluate is not None and s.evaluate.run_of == pr.run_of and s.name in ancestors for s in ctx.spec.steps
        )
        if not judged:
            yield diag(
                "PG306",
                f"promote step '{step.name}' has no evaluate step of '{pr.run_of}' before it",
                ctx.smap.key(("steps", i, "promote")),
            )


@check
def champion_has_alias(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A champion comparison needs exactly one model alias to compare against."""
    for i, step in enumerate(ctx.spec.steps):
        ev = step.evaluate
        if ev is None or ev.champion is None:
            continue
        targets = sorted(
            {
                (s.promote.model, s.promote.alias)
                for s in ctx.spec.steps
                if s.promote is not None and s.promote.run_of == ev.run_of
            }
        )
        if not targets:
            yield diag(
                "PG309",
                f"step '{step.name}' compares with a champion, but no step promotes '{ev.run_of}'",
                ctx.step_at(i, "evaluate", "champion"),
            )
        elif len(targets) > 1:
            names = ", ".join(f"{m}@{a}" for m, a in targets)
            yield diag(
                "PG400",
                f"step '{step.name}' compares with a champion, but '{ev.run_of}' is promoted to several"
                f" aliases: {names}",
                ctx.step_at(i, "evaluate", "champion"),
                "promote each run to one model alias",
            )


@check
def params_exist(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Every ${params.X} names a declared parameter."""
    for path, text in ctx.templates:
        try:
            template = parse_template(text)
        except ExpressionError:
            continue
        for ref in template.refs:
            if ref.namespace == "params" and ref.name not in ctx.spec.params:
                yield diag(
                    "PG308",
                    f"unknown parameter '{ref.name}' in {ref}{did_you_mean(ref.name, ctx.spec.params)}",
                    ctx.smap.value(path),
                    f"declare '{ref.name}' under 'params' with a default value",
                )
