"""Lowering a resolved pipeline to a WorkflowTemplate (and a CronWorkflow) as plain dicts.

Runtime steps share templates: one per runtime action and settings (retryStrategy, deadline, env), each task
passing its step's request as the input `spec`, as an Argo user writes a reusable template. A task output
(start_run's result, the run's date, a clock) reaches a template only as an input the task passes: Argo
resolves `tasks.*` in a DAG task's arguments and `when`, never inside the template it calls.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipegen.expr import parse_template
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend, RayBackend, SparkBackend
from pipegen.targets.argo import closing, names
from pipegen.targets.argo.checks import makes_resource
from pipegen.targets.argo.containers import EXPERIMENT_INPUT, RUN_INPUT, kubernetes_template, workflow_namespace
from pipegen.targets.argo.distributed import is_distributed, node_resources
from pipegen.targets.argo.names import runtime_json
from pipegen.targets.argo.options import ArgoOptions
from pipegen.targets.argo.ray import ray_resource
from pipegen.targets.argo.refs import RUN_DATE, RUN_DATE_INPUT, SCHEDULED, input_param, mlflow_run, result_field
from pipegen.targets.argo.runtime import (
    RESULT_OUTPUT,
    clock_container,
    context_json,
    mlflow_env,
    runtime_container,
    step_args,
)
from pipegen.targets.argo.spark import spark_resource
from pipegen.targets.base import (
    command_request,
    gate_deadline_seconds,
    judged_in_runtime_deadline_seconds,
    promote_request,
)
from pipegen.targets.cluster_jobs import cluster_request
from pipegen.targets.kfp.checks import skip_conditions, uses_run_context
from pipegen.targets.kfp.names import step_refs

API_VERSION = "argoproj.io/v1alpha1"
SPEC_INPUT = "spec"
MLFLOW_RUN_INPUT = "mlflow-run"
WAIT_STARTED_INPUT = "wait-started"
_INPUT_REF = re.compile(r"\{\{inputs\.parameters\.([-a-z0-9]+)\}\}")


class Lowering:
    """Builds the documents; spec text reaches them only as runtime JSON or through refs.container_text."""

    def __init__(self, pipeline: Pipeline, options: ArgoOptions) -> None:
        self.p = pipeline
        self.options = options
        self.image = options.runtime_image or ""
        self.with_date = uses_run_context(pipeline)
        self.context = context_json(pipeline, self.with_date)
        self.templates: dict[str, dict[str, Any]] = {}
        # Shared templates by their body (canonical JSON): (runtime kind, body); named once all are known.
        self.shared: dict[str, tuple[str, dict[str, Any]]] = {}
        self.tasks_using: list[tuple[dict[str, Any], str]] = []

    def documents(self) -> list[dict[str, Any]]:
        """The WorkflowTemplate, then the CronWorkflow when the spec has a schedule."""
        docs = [self.workflow_template()]
        if self.p.schedule is not None:
            docs.append(self.cron_workflow())
        return docs

    def _metadata(self, name: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/managed-by": "pipegen"}}
        namespace = workflow_namespace(self.p, self.options)
        if namespace is not None:
            meta["namespace"] = namespace
        annotations = {"pipegen.dev/spec-sha256": self.p.spec_sha256}
        if self.p.spec.description:
            annotations["workflows.argoproj.io/description"] = self.p.spec.description
        meta["annotations"] = annotations
        return meta

    def workflow_template(self) -> dict[str, Any]:
        """The WorkflowTemplate: one DAG template, a template per task, the exit handler."""
        tasks = self._tasks()
        spec: dict[str, Any] = {"entrypoint": names.DAG, "templates": [{"name": names.DAG, "dag": {"tasks": tasks}}]}
        if self.p.spec.params:
            spec["arguments"] = {"parameters": self._parameters()}
        if self.options.service_account:
            spec["serviceAccountName"] = self.options.service_account
        exit_tasks = self._exit_tasks()
        if exit_tasks:
            spec["onExit"] = names.EXIT
            spec["templates"].append({"name": names.EXIT, "dag": {"tasks": exit_tasks}})
        self._name_shared()
        spec["templates"] += [self.templates[k] for k in sorted(self.templates)]
        return {
            "apiVersion": API_VERSION,
            "kind": "WorkflowTemplate",
            "metadata": self._metadata(self.p.name),
            "spec": spec,
        }

    def cron_workflow(self) -> dict[str, Any]:
        """The CronWorkflow submitting the template on the spec's schedule, in its timezone."""
        schedule = self.p.schedule
        assert schedule is not None
        spec: dict[str, Any] = {
            "schedules": [schedule.cron],
            "timezone": schedule.timezone,
            # catchup: false runs only the latest missed time (if still due); Argo's deadline bounds how late a
            # missed run may start. With catchup, a run missed by up to a day still starts.
            "startingDeadlineSeconds": 86400 if schedule.catchup else 0,
            # A second run of a pipeline while one is running would race on the same alias: Argo skips it.
            "concurrencyPolicy": "Forbid",
            "workflowSpec": {"workflowTemplateRef": {"name": self.p.name}},
        }
        return {
            "apiVersion": API_VERSION,
            "kind": "CronWorkflow",
            "metadata": self._metadata(names.cron_name(self.p.name)),
            "spec": spec,
        }

    def _parameters(self) -> list[dict[str, Any]]:
        out = []
        for name, value in sorted(self.p.spec.params.items()):
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            out.append({"name": name, "value": text})
        return out

    # ---- tasks -------------------------------------------------------------------------------
    def _tasks(self) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = []
        if self.with_date:
            timezone = self.p.schedule.timezone if self.p.schedule is not None else "UTC"
            # Argo sets {{workflow.scheduledTime}} in runs a CronWorkflow starts and leaves the text as it is in a
            # manual submit, which the runtime reads as "now" (run_date_from): today in the schedule's timezone.
            args = "{" + f'"scheduled_time": "{SCHEDULED}", "timezone": {names.runtime_json(timezone)}' + "}"
            self._template(names.CONTEXT, runtime_container(self.image, "run_date", args, set()), outputs=True)
            tasks.append({"name": names.CONTEXT, "template": names.CONTEXT})
        conditions = skip_conditions(self.p)
        for step in self.p.steps:
            depends = [names.task_name(u) for u in step.upstream]
            if self.with_date:
                depends = depends or [names.CONTEXT]
            made = self._step(step, depends)
            when = [result_field(names.task_name(e), "passed") for e in conditions[step.name]]
            if when:
                # A skipped step runs none of its tasks: no start_run (whose run nothing would end: it would stay
                # RUNNING), no multi-node Service, no gate clock. The evaluations are ancestors of every one of them.
                for task in made:
                    task["when"] = " && ".join(f"{w} == true" for w in when)
            tasks.extend(made)
        return tasks

    def _task(self, name: str, depends: list[str]) -> dict[str, Any]:
        task: dict[str, Any] = {"name": name, "template": name}
        if depends:
            # A bare name also counts Skipped: only a succeeded upstream lets a task run.
            task["depends"] = " && ".join(f"{d}.Succeeded" for d in sorted(depends))
        return task

    def _template(
        self, name: str, container: dict[str, Any], *, step: ResolvedStep | None = None, outputs: bool = False
    ) -> None:
        self.templates[name] = {"name": name, **self._body(container, step, outputs)}

    def _body(
        self, container: dict[str, Any], step: ResolvedStep | None, outputs: bool, key: str = "container"
    ) -> dict[str, Any]:
        template: dict[str, Any] = {key: container}
        if outputs:
            template["outputs"] = RESULT_OUTPUT
        if step is not None:
            policy = step.policy
            # A failed judgement is final: evaluate retries only infrastructure errors, inside the runtime (its
            # `retry` request), as on KFP; Argo's retryStrategy cannot tell the two apart.
            judged = step.kind == "evaluate"
            deadline = judged_in_runtime_deadline_seconds(step) if judged else gate_deadline_seconds(step)
            if deadline is not None:
                template["activeDeadlineSeconds"] = deadline
            if policy.retries and not judged:
                backoff: dict[str, Any] = {
                    "duration": f"{policy.retry_delay}s",
                    "factor": 2 if policy.backoff == "exponential" else 1,
                }
                if policy.max_retry_delay is not None:
                    # Argo 4: `cap` limits each delay (the spec's max_retry_delay); `maxDuration` would bound all retries.
                    backoff["cap"] = f"{policy.max_retry_delay}s"
                template["retryStrategy"] = {"limit": policy.retries, "retryPolicy": "Always", "backoff": backoff}
        return template

    def _shared_task(
        self, name: str, kind: str, body: dict[str, Any], depends: list[str], arguments: dict[str, str]
    ) -> dict[str, Any]:
        """A task calling the shared template with this body (made once), its inputs given as arguments."""
        return self._calling(self._task(name, depends), kind, body, arguments)

    def _calling(
        self, caller: dict[str, Any], kind: str, body: dict[str, Any], arguments: dict[str, str]
    ) -> dict[str, Any]:
        """caller (a task or a hook) calling the shared template with this body (made once), passing arguments."""
        inputs = sorted(set(_INPUT_REF.findall(json.dumps(body))))
        assert inputs == sorted(arguments), (inputs, arguments)
        if inputs:
            body = {**body, "inputs": {"parameters": [{"name": n} for n in inputs]}}
        key = json.dumps(body, sort_keys=True)
        self.shared.setdefault(key, (kind, body))
        if arguments:
            caller["arguments"] = {"parameters": [{"name": n, "value": arguments[n]} for n in inputs]}
        self.tasks_using.append((caller, key))
        return caller

    def _close_hooks(self, task: dict[str, Any], step: str, *, failed_only: bool = False) -> dict[str, Any]:
        """task with the hooks that end the training step's MLflow run as the task ended (argo/closing.py)."""
        body = self._body(closing.close_container(self.p, self.options, self.image), None, False)
        made: dict[str, Any] = {}
        for name, hook in closing.hooks(task["name"], mlflow_run(step), failed_only=failed_only).items():
            arguments = dict(hook.pop("arguments"))
            if RUN_DATE_INPUT in _INPUT_REF.findall(json.dumps(body)):
                arguments[RUN_DATE_INPUT] = RUN_DATE  # a tracking URI holding ${run.date}
            made[name] = self._calling({**hook, "template": ""}, "close_run", body, arguments)
        task["hooks"] = made
        return task

    def _name_shared(self) -> None:
        """pipegen-<kind> for a kind with one shared template, else pipegen-<kind>-<n> in order of first use."""
        by_kind: dict[str, list[str]] = {}
        for key, (kind, _) in self.shared.items():
            by_kind.setdefault(kind, []).append(key)
        names_of: dict[str, str] = {}
        for kind, keys in by_kind.items():
            base = names.RESERVED + names.task_name(kind)
            for i, key in enumerate(keys, 1):
                names_of[key] = base if len(keys) == 1 else f"{base}-{i}"
                self.templates[names_of[key]] = {"name": names_of[key], **self.shared[key][1]}
        for task, key in self.tasks_using:
            task["template"] = names_of[key]

    def _secrets(self, step: ResolvedStep, mlflow: bool) -> set[str]:
        found = {r.name for r in step_refs(step) if r.namespace == "secret"}
        if mlflow and self.p.tracking_uri is not None:
            found |= {r.name for r in self.p.tracking_uri.refs if r.namespace == "secret"}
        return found

    def _runtime(
        self,
        step: ResolvedStep,
        kind: str,
        spec: dict[str, Any],
        depends: list[str],
        *,
        run_of: str | None = None,
        wait_started: str | None = None,
        name: str | None = None,
        secrets: set[str] | None = None,
        outputs: bool | None = None,
    ) -> dict[str, Any]:
        """A task running one runtime action in the shared template for its settings; its request as input."""
        extra = {"retry": step.policy.runtime_retry()} if kind == "evaluate" and step.policy.retries else {}
        arguments = {SPEC_INPUT: runtime_json(spec)}
        if self.with_date:
            arguments[RUN_DATE_INPUT] = RUN_DATE
        run = None
        if run_of:
            arguments[MLFLOW_RUN_INPUT], run = mlflow_run(run_of), input_param(MLFLOW_RUN_INPUT)
        started = None
        if wait_started is not None:
            arguments[WAIT_STARTED_INPUT], started = wait_started, input_param(WAIT_STARTED_INPUT)
        args = step_args(kind, input_param(SPEC_INPUT), self.context, run, wait_started=started, **extra)
        mlflow = mlflow_env(self.options) if run_of is not None or kind == "start_run" else None
        found = self._secrets(step, run_of is not None) if secrets is None else secrets
        container = runtime_container(self.image, "step", args, found, mlflow)
        body = self._body(container, step, kind in ("evaluate", "start_run") if outputs is None else outputs)
        return self._shared_task(name or names.task_name(step.name), kind, body, depends, arguments)

    def _step(self, step: ResolvedStep, depends: list[str]) -> list[dict[str, Any]]:
        body = step.body
        tracking = self.p.spec.mlflow.tracking_uri or ""
        if step.kind == "gate":
            return self._gate(step, depends)
        if step.kind == "evaluate":
            spec: dict[str, Any] = {
                "thresholds": list(body.thresholds),
                "on_fail": body.on_fail,
                "tracking_uri": tracking,
            }
            if step.champion is not None:
                spec["champion"] = step.champion
            return [self._runtime(step, "evaluate", spec, depends, run_of=body.run_of)]
        if step.kind == "promote":
            return [self._runtime(step, "promote", promote_request(self.p, step), depends, run_of=body.run_of)]
        out: list[dict[str, Any]] = []
        run_of = None
        if step.kind == "train":
            start = names.start_run_name(step.name)
            request = {
                "pipeline": self.p.name,
                "step": step.name,
                "spec_sha256": self.p.spec_sha256,
                "experiment": self.p.experiment,
                "tracking_uri": tracking,
            }
            uri = self.p.tracking_uri
            secrets = {r.name for r in uri.refs if r.namespace == "secret"} if uri is not None else set()
            out.append(self._runtime(step, "start_run", request, depends, name=start, secrets=secrets))
            depends, run_of = [start], step.name
        backend = step.backend
        if is_distributed(step):
            return [*out, *self._nodes(step, depends, run_of)]
        if isinstance(backend, KubernetesBackend):
            name = names.task_name(step.name)
            container, extra = kubernetes_template(self.p, step, backend, run_of)
            if run_of is not None:
                # The tracking settings as the image reads them; the step's own env wins over them.
                taken = {e["name"] for e in container.get("env", [])}
                added = [e for e in mlflow_env(self.options) if e["name"] not in taken]
                if added:
                    container["env"] = sorted(container.get("env", []) + added, key=lambda e: str(e["name"]))
            self._template(name, container, step=step)
            self.templates[name] |= extra
            return [*out, self._container_task(name, depends, run_of)]
        if makes_resource(step):
            # A custom resource the step creates and waits for (argo/spark.py, argo/ray.py).
            build = spark_resource if isinstance(backend, SparkBackend) else ray_resource
            made, values = build(self.p, self.options, step, run_of is not None)
            name = names.task_name(step.name)
            self.templates[name] = {"name": name, **self._body(made, step, False, key="resource")}
            also = {RUN_DATE_INPUT} if values.uses_run_date else set()
            return [*out, self._container_task(name, depends, run_of, also)]
        if isinstance(backend, SparkBackend | RayBackend):
            # spark-submit or a job on a running Ray cluster, submitted and waited for in the runtime container (as
            # KFP and Prefect do); the step's timeout travels in the request, so the runtime stops the job itself.
            kind, job = cluster_request(self.p, step)
        else:
            kind, job = command_request(self.p, step)
        if run_of is not None:
            job["tracking_uri"] = tracking
        return [*out, self._runtime(step, kind, job, depends, run_of=run_of)]

    def _nodes(self, step: ResolvedStep, depends: list[str], run_of: str | None) -> list[dict[str, Any]]:
        """A multi-node step: its JobSet, or its headless Service and then its Indexed Job (argo/distributed.py)."""
        made = node_resources(self.p, self.options, step, run_of is not None)
        out: list[dict[str, Any]] = []
        if made.service is not None:
            # Created once per run, without retries (a second create of the run's Service would find it there).
            service = names.service_name(step.name)
            self.templates[service] = {"name": service, "resource": made.service}
            task = self._task(service, depends)
            # No Service, no job: the run start_run made ends FAILED, as when the job itself fails.
            out.append(self._close_hooks(task, run_of, failed_only=True) if run_of is not None else task)
            depends = [service]
        name = names.task_name(step.name)
        self.templates[name] = {"name": name, **self._body(made.main, step, False, key="resource")}
        also = {RUN_DATE_INPUT} if made.values.uses_run_date else set()
        return [*out, self._container_task(name, depends, run_of, also)]

    def _container_task(
        self, name: str, depends: list[str], run_of: str | None, also: set[str] | None = None
    ) -> dict[str, Any]:
        """A task of a job Argo runs itself (a container or a resource), passing the task outputs its template reads
        as the template's inputs; a training job's task ends its MLflow run as it ended (argo/closing.py).

        run_of: the training step whose run the job logs into. also: inputs the template reads inside expressions
        (`inputs.parameters['run-date']`), beside its `{{...}}`.
        """
        template = self.templates[name]
        values = {RUN_DATE_INPUT: RUN_DATE}
        if run_of is not None:
            start = names.start_run_name(run_of)
            values |= {EXPERIMENT_INPUT: result_field(start, "experiment_id"), RUN_INPUT: result_field(start, "run_id")}
        inputs = sorted(set(_INPUT_REF.findall(json.dumps(template))) | (also or set()))
        task = self._task(name, depends)
        if inputs:
            template["inputs"] = {"parameters": [{"name": n} for n in inputs]}
            task["arguments"] = {"parameters": [{"name": n, "value": values[n]} for n in inputs]}
        return self._close_hooks(task, run_of) if run_of is not None else task

    def _gate(self, step: ResolvedStep, depends: list[str]) -> list[dict[str, Any]]:
        assert step.gate is not None
        if "wait" not in step.gate:
            return [self._runtime(step, "gate", {"gate": step.gate}, depends)]
        # The wait's anchor: a time taken by a task of its own before the gate's first attempt. Argo gives every
        # retry of a task the same arguments, so a retried gate resumes its wait (or fails at once past it).
        clock = names.clock_name(step.name)
        clock_task = self._shared_task(clock, "clock", self._body(clock_container(self.image), None, True), depends, {})
        started = f"{{{{tasks.{clock}.outputs.parameters.result}}}}"
        gate = self._runtime(step, "gate", {"gate": step.gate}, [clock], wait_started=started)
        return [clock_task, gate]

    # ---- the exit handler ------------------------------------------------------------------------
    def _exit_tasks(self) -> list[dict[str, Any]]:
        out = []
        notify = self.p.spec.notify
        for hooks, event, name, test in (
            (notify.on_failure, "failed", names.NOTIFY_FAILURE, "!="),
            (notify.on_success, "succeeded", names.NOTIFY_SUCCESS, "=="),
        ):
            if not hooks:
                continue
            spec = {"webhooks": [n.webhook for n in hooks], "message": {"pipeline": self.p.name, "event": event}}
            # The exit handler runs after the DAG: no task output is read, so the date is not computed again.
            context = context_json(self.p, with_date=False)
            args = step_args("notify", input_param(SPEC_INPUT), context)
            secrets = {r.name for n in hooks for r in parse_template(n.webhook).refs if r.namespace == "secret"}
            body = self._body(runtime_container(self.image, "step", args, secrets), None, False)
            task = self._shared_task(name, "notify", body, [], {SPEC_INPUT: runtime_json(spec)})
            # workflow.status is set by Argo itself (Succeeded, Failed or Error): no spec text reaches this `when`.
            task["when"] = "{{workflow.status}} " + test + " Succeeded"
            out.append(task)
        return out
