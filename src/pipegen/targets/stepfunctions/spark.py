"""Spark steps on Step Functions: EMR, EMR Serverless, EMR on EKS and Glue `.sync` Tasks, and what they refuse.

The request body comes from runtime.spark_aws (one builder for the compiler and the runtime Lambda). A step
whose values are all literal gets it in the definition; a train step (its MLflow run is started first) or a
step with `${...}` gets it from a prepare Lambda state, like a Batch job's command (jobs.py), and the Task
reads the rendered fields. Retries, timeout and failure handling are the step's policy, as for every job.
Stopping the Task (timeout, a stopped execution) has Step Functions cancel the step/job run (iam.py grants it).
`submit` and `kubernetes` platforms and Ray have no Step Functions integration: PG602 (base and __init__.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import parse_template
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.runtime.spark_aws import spark_request, spark_service_request
from pipegen.spec import SparkBackend
from pipegen.targets.stepfunctions.jobs import LoweringParts, literal

EMR_SYNC = "arn:aws:states:::elasticmapreduce:addStep.sync"
EMR_SERVERLESS_SYNC = "arn:aws:states:::emr-serverless:startJobRun.sync"
EMR_ON_EKS_SYNC = "arn:aws:states:::emr-containers:startJobRun.sync"
GLUE_SYNC = "arn:aws:states:::glue:startJobRun.sync"
RESOURCES = {"emr": EMR_SYNC, "emr_serverless": EMR_SERVERLESS_SYNC, "emr_on_eks": EMR_ON_EKS_SYNC, "glue": GLUE_SYNC}
VARIANTS = {
    "spark.emr": "elasticmapreduce:addStep.sync (command-runner.jar spark-submit --deploy-mode cluster; env as"
    " spark.yarn.appMasterEnv.*)",
    "spark.emr_serverless": "emr-serverless:startJobRun.sync (settings as spark-defaults properties; env as"
    " spark.emr-serverless.driverEnv.*; the step's timeout also as ExecutionTimeoutMinutes)",
    "spark.emr_on_eks": "emr-containers:startJobRun.sync (settings as spark-defaults properties; env as"
    " spark.kubernetes.driverEnv.*)",
    "spark.glue": "glue:startJobRun.sync of the existing job, whose script must be the step's application; args"
    " as `--key value` Arguments, env as `--NAME value` arguments (a Glue run has no environment), the timeout"
    " also as Timeout; no conf, packages or driver/executor sizes (the job's WorkerType/NumberOfWorkers)",
}
# Glue reads run arguments as `--key value` (getResolvedOptions); a key is a name, never a reference.
GLUE_KEY = re.compile(r"--[A-Za-z_][A-Za-z0-9_.-]*\Z")
TRAINING_ENV = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI")


def settings(backend: SparkBackend) -> dict[str, Any]:
    """The backend's Spark settings as runtime.spark_aws takes them (spec text: `${...}` not yet rendered)."""
    out: dict[str, Any] = {"conf": dict(sorted(backend.conf.items()))}
    for key in ("driver", "executors"):
        part = getattr(backend, key)
        if part is not None:
            out[key] = part.model_dump(exclude_none=True)
    if backend.main_class:
        out["main_class"] = backend.main_class
    for key in ("py_files", "jars", "packages"):
        if getattr(backend, key):
            out[key] = list(getattr(backend, key))
    return out


def spark_checks(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """What a Spark step on Step Functions cannot take: secrets in the request, keys read as paths, Glue's limits."""
    for step in pipeline.steps:
        backend = step.backend
        if not isinstance(backend, SparkBackend) or backend.platform not in RESOURCES:
            continue
        yield from _secrets(pipeline, step, backend)
        at = ("backends", str(step.backend_name))
        platform_ids = getattr(backend, backend.platform)
        if platform_ids.region is not None:
            yield diag(
                "PG702",
                f"target 'stepfunctions' runs step '{step.name}' in the state machine's region: region "
                f"'{platform_ids.region}' is not applied",
                pipeline.source_map.value((*at, backend.platform, "region")),
                "deploy the state machine in that region (the region key is for the targets that call AWS themselves)",
            )
        if step.body.resources is not None:
            yield diag(
                "PG702",
                f"target 'stepfunctions' does not apply the resources of Spark step '{step.name}': Spark sizes the"
                " driver and executors",
                pipeline.source_map.key((*step.path, step.kind, "resources")),
                f"set driver and executors on backend '{step.backend_name}' instead",
            )
        if backend.platform == "emr_on_eks":
            for i, arg in enumerate(step.body.command[1:], start=1):
                if not arg.strip():
                    yield diag(
                        "PG602",
                        f"target 'stepfunctions' cannot pass a blank argument to EMR on EKS (step '{step.name}')",
                        pipeline.locate(step, step.kind, "command", i),
                        "EMR on EKS refuses entry point arguments without a visible character",
                    )
        if backend.platform in ("emr_serverless", "emr_on_eks"):
            for key in backend.conf:
                if key.endswith(".$"):
                    yield diag(
                        "PG602",
                        f"target 'stepfunctions' cannot take Spark conf key '{key}' (a key ending in '.$' is a path)",
                        pipeline.source_map.key((*at, "conf", key)),
                    )
        if backend.platform == "glue":
            yield from _glue(pipeline, step, backend)


def _secrets(pipeline: Pipeline, step: ResolvedStep, backend: SparkBackend) -> Iterator[Diagnostic]:
    hint = "the job's request travels through the execution history; read the secret inside the job"
    body = step.body
    for i, arg in enumerate(body.command):
        refs = [r for r in parse_template(arg).refs if r.namespace == "secret"]
        if refs:
            yield diag(
                "PG602",
                f"target 'stepfunctions' cannot put {refs[0]} in the command of Spark step '{step.name}'",
                pipeline.locate(step, step.kind, "command", i),
                hint,
            )
    places: list[tuple[tuple[str | int, ...], str, bool]] = [
        ((step.kind, "env", k), v, True) for k, v in body.env.items()
    ]
    places += [(("conf", k), v, False) for k, v in backend.conf.items()]
    places += [((key, i), v, False) for key in ("py_files", "jars") for i, v in enumerate(getattr(backend, key))]
    for path, value, in_step in places:
        refs = [r for r in parse_template(value).refs if r.namespace == "secret"]
        if refs:
            where = (
                pipeline.locate(step, *path)
                if in_step
                else pipeline.source_map.value(("backends", str(step.backend_name), *path))
            )
            yield diag("PG602", f"target 'stepfunctions' cannot set {refs[0]} in Spark step '{step.name}'", where, hint)


def _glue(pipeline: Pipeline, step: ResolvedStep, backend: SparkBackend) -> Iterator[Diagnostic]:
    at = ("backends", str(step.backend_name))
    for key, why in (
        ("driver", "Glue sizes a run by the job's WorkerType and NumberOfWorkers: set them on the job"),
        ("executors", "Glue sizes a run by the job's WorkerType and NumberOfWorkers: set them on the job"),
        ("conf", "Glue reserves --conf: set Spark settings in the job's script or its default arguments"),
        ("packages", "Glue takes no Maven packages per run: add the jars with `jars` (--extra-jars)"),
    ):
        if getattr(backend, key):
            yield diag(
                "PG602",
                f"target 'stepfunctions' cannot pass '{key}' to Glue job '{backend.glue.job_name if backend.glue else ''}'"
                f" of step '{step.name}'",
                pipeline.source_map.key((*at, key)),
                why,
            )
    args = list(step.body.command[1:])
    keys: dict[str, int] = {}
    for i in range(0, len(args), 2):
        key = args[i]
        if not GLUE_KEY.match(key) or i + 1 == len(args):
            yield diag(
                "PG602",
                "target 'stepfunctions' can pass Glue job arguments only as '--key value' pairs: "
                + (f"'{key}' is not a --key" if not GLUE_KEY.match(key) else f"'{key}' has no value")
                + f" (step '{step.name}')",
                pipeline.locate(step, step.kind, "command", i + 1),
                "write the application's arguments as --name value pairs (the script reads them with getResolvedOptions)",
            )
            return
        keys[key] = i + 1
    reserved = {"--extra-py-files": "py_files", "--extra-jars": "jars", "--class": "main_class"}
    env = [*step.body.env, *(TRAINING_ENV if step.kind == "train" else ())]
    taken = {f"--{name}": f"env {name}" for name in env} | {k: v for k, v in reserved.items() if getattr(backend, v)}
    for key, index in keys.items():
        if key in taken:
            yield diag(
                "PG602",
                f"target 'stepfunctions' passes {taken[key]} to Glue as argument '{key}' too (step '{step.name}')",
                pipeline.locate(step, step.kind, "command", index),
                "rename the argument",
            )


class SparkStates(LoweringParts):
    """The Spark part of the lowering (mixed into it, like JobStates)."""

    _tracking: Callable[[], dict[str, str]]  # JobStates'

    def _spark(self, step: ResolvedStep, after: dict[str, Any]) -> None:
        """A Spark step: its `.sync` Task, after a Lambda state that renders the request when it must."""
        backend = step.backend
        assert isinstance(backend, SparkBackend)
        body, name, platform = step.body, step.name, backend.platform
        config = settings(backend)
        command, env = list(body.command), dict(sorted(body.env.items()))
        texts = [
            *command,
            *env.values(),
            *config["conf"].values(),
            *config.get("py_files", ()),
            *config.get("jars", ()),
        ]
        static = spark_request(platform, config, literal(command), {k: literal(v) for k, v in env.items()}, literal)
        lists = [v for v in static.values() if isinstance(v, list)]
        dynamic = (
            step.kind == "train"
            or any(parse_template(t).refs for t in texts)
            # A literal the query language cannot write in a list (JSONPath: an empty or multi-line one).
            or not all(self.d.in_list(item) for items in lists for item in items)
        )
        job_state = name
        fields: dict[str, Any] = static
        if dynamic:
            request: dict[str, Any] = {"service": "spark", "platform": platform, "spark": config, "command": command}
            request["env"] = env
            if step.kind == "train":
                request["start_run"] = {
                    "pipeline": self.p.name,
                    "step": name,
                    "spec_sha256": self.p.spec_sha256,
                    "experiment": self.p.experiment,
                }
                request |= self._tracking()
            what = "start its MLflow run and render" if step.kind == "train" else "render"
            select = {"job": "job", "run": "run"} if step.kind == "train" else {"job": "job"}
            prepare = self._runtime_task(
                step, "prepare", request, select, self._own("prepared", name), f"Step '{name}': {what} the Spark job."
            )
            self.states[name] = prepare | {"Next": f"{name}.job"}
            job_state = f"{name}.job"
            # The fields the rendered request has: a train step's MLflow variables always add properties/arguments.
            stand_in = {k: "" for k in TRAINING_ENV} if step.kind == "train" else {}
            shape = spark_request(platform, config, command, {**env, **stand_in})
            rendered = self._own("prepared", name, "job")
            fields = {key: rendered.field(key) for key in shape}
        comment = f"Step '{name}' on backend '{step.backend_name}': Spark application {command[0]}"
        if platform == "glue":
            comment += " (it must be the Glue job's own script)"
        params = _request(self.p, step, backend, fields)
        task: dict[str, Any] = {"Type": "Task", "Comment": comment + ".", "Resource": RESOURCES[platform]}
        task |= self.d.task_io(params, {}, None)
        self._end_job(step, job_state, task, self._policy(step, lambda_task=False), after)


def _request(pipeline: Pipeline, step: ResolvedStep, backend: SparkBackend, fields: dict[str, Any]) -> dict[str, Any]:
    """The Task's parameters (runtime.spark_aws builds them, so `pipegen run` sends the same); fields: values or slots."""
    ids = getattr(backend, backend.platform).model_dump(exclude_none=True)
    return spark_service_request(backend.platform, ids, f"{pipeline.name}-{step.name}", step.policy.timeout, fields)
