"""What Step Functions cannot run: located diagnostics for jobs, history events and the definition's size."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import parse_template
from pipegen.resolve import Pipeline
from pipegen.spec import AwsBatchBackend, KubernetesBackend, SageMakerBackend
from pipegen.targets.eventbridge import schedule_problems
from pipegen.targets.stepfunctions.layout import definition_text
from pipegen.targets.stepfunctions.nodes import node_checks
from pipegen.targets.stepfunctions.options import StepFunctionsOptions
from pipegen.targets.stepfunctions.spark import spark_checks
from pipegen.targets.tracking_secret import tracking_secret

# The service caps a definition at 1 MiB, and the API request carrying it (as an escaped JSON string,
# beside the name, role, logging and tags, for which some room is kept) at 1 MiB too.
MAX_DEFINITION_BYTES = 1_048_576
MAX_REQUEST_BYTES = 1_048_576
REQUEST_ROOM = 8_192


def limits(pipeline: Pipeline, options: StepFunctionsOptions) -> Iterator[Diagnostic]:
    """Jobs, secrets and node selectors the state machine cannot run or would write into its history."""
    yield from schedule_problems(pipeline)
    # prepare puts the rendered URI into a Batch/SageMaker job's Environment (in the execution history).
    yield from tracking_secret(pipeline, "stepfunctions")
    yield from spark_checks(pipeline)
    yield from node_checks(pipeline)
    for step in pipeline.steps:
        backend = step.backend
        if not isinstance(backend, AwsBatchBackend | SageMakerBackend | KubernetesBackend):
            continue
        body = step.body
        for i, arg in enumerate(body.command):
            secrets = [r for r in parse_template(arg).refs if r.namespace == "secret"]
            if secrets:
                yield diag(
                    "PG602",
                    f"target 'stepfunctions' cannot put {secrets[0]} in the command of job step '{step.name}'",
                    pipeline.locate(step, step.kind, "command", i),
                    "a job's command travels through the execution history; read the secret inside the job",
                )
        env = {**getattr(backend, "env", {}), **body.env}
        for key, value in env.items():
            template = parse_template(value)
            secrets = [r for r in template.refs if r.namespace == "secret"]
            whole = template.single_ref is not None and template.single_ref.namespace == "secret"
            if secrets and not (isinstance(backend, KubernetesBackend) and whole):
                where = (step.kind, "env", key) if key in body.env else ()
                yield diag(
                    "PG602",
                    f"target 'stepfunctions' cannot set {secrets[0]} in job step '{step.name}'"
                    + (" except as a whole environment value" if isinstance(backend, KubernetesBackend) else ""),
                    pipeline.locate(step, *where) if where else step.location,
                    "environment values travel through the execution history; use the job definition's secrets"
                    if not isinstance(backend, KubernetesBackend)
                    else "write the value as exactly ${secret.NAME}",
                )
        if isinstance(backend, KubernetesBackend):
            if options.eks_cluster is None:
                yield diag(
                    "PG604",
                    f"target 'stepfunctions' needs the EKS cluster to run kubernetes step '{step.name}'",
                    pipeline.locate(step, step.kind, "backend"),
                    "set targets: {stepfunctions: {eks_cluster: {name: ..., endpoint: ..., certificate_authority: ...}}}",
                )
            for key in backend.node_selector:
                if key.endswith(".$"):
                    yield diag(
                        "PG602",
                        f"target 'stepfunctions' cannot take node selector key '{key}' (a key ending in '.$' is a path)",
                        pipeline.source_map.key(("backends", str(step.backend_name), "node_selector", key)),
                    )
        # A pod's image sits in the eks:runJob request as written (SageMaker's goes through prepare).
        if isinstance(backend, KubernetesBackend) and parse_template(backend.image).refs:
            yield diag(
                "PG602",
                f"target 'stepfunctions' cannot render ${{...}} in the image of backend '{step.backend_name}'",
                pipeline.source_map.value(("backends", str(step.backend_name), "image")),
                "write the image in full",
            )


# A Standard execution's history holds at most 25,000 events. Each state writes its entered/exited
# events, a Task also scheduled/started/succeeded (and submitted for a `.sync` job), a Parallel
# started/succeeded; one more check of a wait loop writes 11 (the Lambda Task's five, the Choice's,
# the Wait's and the counter Pass's entered and exited).
MAX_HISTORY_EVENTS = 25_000
EVENTS_PER_CHECK = 11
EXECUTION_EVENTS = 2  # ExecutionStarted, ExecutionSucceeded (or Failed)


def state_events(states: dict[str, Any]) -> int:
    """Events of passing once through every state, branch states included (an upper bound of one run)."""
    total = 0
    for state in states.values():
        kind = state["Type"]
        if kind == "Task":
            total += 6 if str(state.get("Resource", "")).endswith(".sync") else 5
        elif kind == "Parallel":
            total += 4 + sum(state_events(b["States"]) for b in state["Branches"])
        else:
            total += 2
    return total


def history(pipeline: Pipeline, options: StepFunctionsOptions) -> Iterator[Diagnostic]:
    """A run whose events, at their worst (every wait loop to its last check), would pass the history's limit."""
    once = EXECUTION_EVENTS + state_events(json.loads(definition_text(pipeline, options))["States"])
    loops = []
    for step in pipeline.steps:
        wait = (step.gate or {}).get("wait")
        if wait is not None:
            loops.append((wait["timeout_seconds"] // wait["interval_seconds"] + 1, step))
    waiting = sum((checks - 1) * EVENTS_PER_CHECK for checks, _ in loops)
    if once + waiting <= MAX_HISTORY_EVENTS:
        return
    if loops and waiting:
        checks, step = max(loops, key=lambda pair: pair[0])
        total = sum(c for c, _ in loops)
        yield diag(
            "PG602",
            f"target 'stepfunctions' cannot wait this long this often: the gates' wait loops may make "
            f"{total} checks of {EVENTS_PER_CHECK} history events each, over the "
            f"{MAX_HISTORY_EVENTS}-event limit of an execution with the {once} events of the rest of the run "
            f"('{step.name}' alone makes {checks})",
            pipeline.locate(step, "gate", "wait", "interval"),
            f"check less often: at most {max(0, MAX_HISTORY_EVENTS - once) // EVENTS_PER_CHECK + len(loops)} checks in all",
        )
        return
    yield diag(
        "PG602",
        f"target 'stepfunctions' cannot run pipeline '{pipeline.name}' in one execution: one run writes about "
        f"{once} history events, over the {MAX_HISTORY_EVENTS}-event limit of an execution",
        pipeline.source_map.value(("name",)),
        "split the pipeline into smaller specs",
    )


def size(pipeline: Pipeline, options: StepFunctionsOptions) -> Iterator[Diagnostic]:
    """A definition the service would refuse is a diagnostic, never an output."""
    text = definition_text(pipeline, options)
    size = len(text.encode())
    request = len(json.dumps(text, ensure_ascii=False).encode()) + REQUEST_ROOM
    if size > MAX_DEFINITION_BYTES or request > MAX_REQUEST_BYTES:
        what, limit = (
            (f"the definition takes {size} bytes", MAX_DEFINITION_BYTES)
            if size > MAX_DEFINITION_BYTES
            else (f"the request that uploads it takes about {request} bytes", MAX_REQUEST_BYTES)
        )
        yield diag(
            "PG602",
            f"target 'stepfunctions' cannot hold pipeline '{pipeline.name}' in one state machine: {what}, "
            f"over the service's {limit}",
            pipeline.source_map.value(("name",)),
            "split the pipeline into smaller specs",
        )
