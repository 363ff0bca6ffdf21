"""What Step Functions cannot run: located diagnostics for jobs, history events and the definition's size."""

from __future__ import annotations

import json
from collections.abc import Iterator

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import parse_template
from pipegen.resolve import Pipeline
from pipegen.spec import AwsBatchBackend, KubernetesBackend, SageMakerBackend
from pipegen.targets.eventbridge import schedule_problems
from pipegen.targets.stepfunctions.layout import definition_text
from pipegen.targets.stepfunctions.options import StepFunctionsOptions

# The service caps a definition at 1 MiB, and the API request carrying it (as an escaped JSON string,
# beside the name, role, logging and tags, for which some room is kept) at 1 MiB too.
MAX_DEFINITION_BYTES = 1_048_576
MAX_REQUEST_BYTES = 1_048_576
REQUEST_ROOM = 8_192


def limits(pipeline: Pipeline, options: StepFunctionsOptions) -> Iterator[Diagnostic]:
    yield from schedule_problems(pipeline)
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


# A Standard execution's history holds at most 25,000 events; one check of a wait loop writes 11 (the
# Lambda Task's entered, scheduled, started, succeeded, exited; the Choice's, the Wait's and the counter
# Pass's entered and exited). The rest of the pipeline keeps the margin.
MAX_HISTORY_EVENTS = 25_000
EVENTS_PER_CHECK = 11
HISTORY_MARGIN = 1_000


def history(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """Wait loops whose checks, at their worst, would pass the execution history's event limit."""
    loops = []
    for step in pipeline.steps:
        wait = (step.gate or {}).get("wait")
        if wait is not None:
            loops.append((wait["timeout_seconds"] // wait["interval_seconds"] + 1, step))
    events = sum(checks * EVENTS_PER_CHECK for checks, _ in loops)
    if loops and events > MAX_HISTORY_EVENTS - HISTORY_MARGIN:
        checks, step = max(loops, key=lambda pair: pair[0])
        yield diag(
            "PG602",
            f"target 'stepfunctions' cannot wait this long this often: the gates' wait loops may make "
            f"{events // EVENTS_PER_CHECK} checks of {EVENTS_PER_CHECK} history events each, over the "
            f"{MAX_HISTORY_EVENTS}-event limit of an execution ('{step.name}' alone makes {checks})",
            pipeline.locate(step, "gate", "wait", "interval"),
            f"check less often: at most {(MAX_HISTORY_EVENTS - HISTORY_MARGIN) // EVENTS_PER_CHECK} checks in all",
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
