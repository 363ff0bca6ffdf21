"""The AWS Step Functions target: an Amazon States Language definition per spec (+ an EventBridge schedule).

Steps run in the spec's dependency order, independent ones side by side in Parallel states (`plan`
decides the nesting, `lowering` the states, `jobs` the job Tasks). Runtime steps (gates, evaluate,
promote, notifications) are `lambda:invoke` Tasks calling pipegen's Lambda handler; jobs use the
services' `.sync` integrations. The state machine's data is small: `$.pipegen` (params, run id, run
date), then per step only what a later state reads; a job's result is dropped (its id is in the
execution history), and a Parallel keeps only the few values later steps read from its branches, so
a long pipeline's state data stays far below the service's 256 KiB.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from pipegen.diagnostics import Diagnostic, has_errors
from pipegen.emit import Output
from pipegen.resolve import Pipeline
from pipegen.targets.base import Support, Target
from pipegen.targets.eventbridge import scheduler_schedule
from pipegen.targets.stepfunctions.checks import (
    MAX_DEFINITION_BYTES,
    MAX_REQUEST_BYTES,
    REQUEST_ROOM,
    history,
    limits,
    size,
)
from pipegen.targets.stepfunctions.infra import template
from pipegen.targets.stepfunctions.layout import definition_text
from pipegen.targets.stepfunctions.options import (
    DONE,
    FAILED,
    LAMBDA_MAX_SECONDS,
    LAMBDA_RETRIER,
    NOTIFY_FAILURE,
    NOTIFY_SUCCESS,
    EksCluster,
    StepFunctionsOptions,
)
from pipegen.targets.stepfunctions.spark import VARIANTS

__all__ = [
    "DONE",
    "FAILED",
    "LAMBDA_MAX_SECONDS",
    "LAMBDA_RETRIER",
    "MAX_DEFINITION_BYTES",
    "MAX_REQUEST_BYTES",
    "NOTIFY_FAILURE",
    "NOTIFY_SUCCESS",
    "REQUEST_ROOM",
    "TARGET",
    "EksCluster",
    "StepFunctionsOptions",
    "StepFunctionsTarget",
]


class StepFunctionsTarget(Target):
    """AWS Step Functions state machines (Amazon States Language)."""

    name = "stepfunctions"
    title = "AWS Step Functions"
    support = Support(
        backends={
            "aws_batch": "batch:submitJob.sync",
            "sagemaker": "sagemaker:createTrainingJob.sync",
            "kubernetes": "eks:runJob.sync (targets.stepfunctions.eks_cluster names the cluster)",
            "spark": "the platform's .sync integration: EMR, EMR Serverless, EMR on EKS, Glue (not spark-submit"
            " or the Spark Operator: no Step Functions integration runs them)",
        },
        variants=VARIANTS,
        gates={
            "partition_exists": "runtime Lambda (a wait is a Wait/Choice loop)",
            "freshness": "runtime Lambda (a wait is a Wait/Choice loop)",
            "row_count": "runtime Lambda (a wait is a Wait/Choice loop)",
            "sql": "runtime Lambda (a wait is a Wait/Choice loop)",
        },
        features={
            "query language": "JSONPath (default) or JSONata: targets.stepfunctions.query_language",
            "schedule": "EventBridge Scheduler schedule beside the definition (<name>.schedule.json)",
            "deploy": "CloudFormation template (<name>.template.json): the state machine, its role with a policy"
            " derived from its states, the schedule and its role",
            "params": 'execution input {"params": {...}} merged over the spec\'s defaults',
            "step order": "dependency order; independent steps run side by side in Parallel states (a part of the graph that is not series-parallel runs in waves)",
            "retries/backoff": "Retry (IntervalSeconds, MaxAttempts, BackoffRate, MaxDelaySeconds)",
            "timeout": "TimeoutSeconds",
            "evaluate": "runtime Lambda + Choice (skip: later steps skipped, run succeeds; fail: Fail state)",
            "promote": "runtime Lambda",
            "notify.on_failure": "Catch on every task -> runtime Lambda notification -> Fail",
            "notify.on_success": "every successful end (a skipped promotion's too) -> runtime Lambda notification"
            " -> Succeed (a failed notification is caught: the run still succeeds)",
            "${run.id} / ${run.date}": "execution name / scheduled time's date in the schedule's timezone (start date"
            " for manual runs; a runtime Lambda state when the timezone is not UTC)",
            "${params.X} / ${env.X}": "rendered by the runtime Lambda (env: the Lambda's environment)",
            "distributed": "sagemaker: InstanceCount = nodes; aws_batch: a multi-node parallel job (NodeOverrides on"
            " the backend's multinode job definition); kubernetes: distributed_runtime indexed_job, an Indexed Job"
            " (eks:runJob.sync) between its headless Service's creation and deletion (eks:call)",
            "kubernetes.tolerations": "the pods' tolerations (eks:runJob's Job)",
            "${secret.X}": "runtime Lambda: AWS Secrets Manager secret pipegen/<X> (PIPEGEN_SECRET_<X> as a fallback); kubernetes: secret as a whole env value",
        },
    )
    options_model = StepFunctionsOptions

    def check(self, pipeline: Pipeline, options: BaseModel) -> list[Diagnostic]:
        """Shared checks plus what Step Functions cannot express."""
        assert isinstance(options, StepFunctionsOptions)
        problems = [*_with_ray_advice(pipeline, super().check(pipeline, options)), *limits(pipeline, options)]
        if not has_errors(problems):
            # Both measure the definition, which only a spec without errors can be lowered to.
            problems.extend([*history(pipeline, options), *size(pipeline, options)])
        return problems

    def render(self, pipeline: Pipeline, options: BaseModel) -> list[Output]:
        """The state machine definition, the EventBridge schedule when the spec has one, and the deploy template."""
        assert isinstance(options, StepFunctionsOptions)
        outputs = [Output(f"stepfunctions/{pipeline.name}.asl.json", definition_text(pipeline, options))]
        if pipeline.schedule is not None:
            schedule = scheduler_schedule(pipeline, options.state_machine_arn, options.scheduler_role_arn)
            outputs.append(Output(f"stepfunctions/{pipeline.name}.schedule.json", _json(schedule)))
        outputs.append(Output(f"stepfunctions/{pipeline.name}.template.json", _json(template(pipeline, options))))
        return outputs


TARGET = StepFunctionsTarget()


def _with_ray_advice(pipeline: Pipeline, problems: list[Diagnostic]) -> list[Diagnostic]:
    """The shared PG602 of a Ray step, with the way to run it from Step Functions (no integration runs Ray)."""
    at = {pipeline.locate(s, s.kind, "backend") for s in pipeline.steps if s.backend and s.backend.type == "ray"}
    advice = (
        "; Step Functions has no Ray integration: submit the Ray job from a Batch job (aws_batch backend running"
        " `ray job submit`) or run the pipeline on a target that runs Ray"
    )
    return [replace(d, hint=d.hint + advice) if d.code == "PG602" and d.location in at else d for d in problems]


def _json(value: Any) -> str:
    """Pretty, deterministic JSON: key order is the order the lowering builds (the order AWS documents)."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
