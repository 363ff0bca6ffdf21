"""Lowering a resolved pipeline to the View the module template lays out."""

from __future__ import annotations

from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend, RayBackend, SparkBackend
from pipegen.targets.base import command_request, header_lines, promote_request
from pipegen.targets.cluster_jobs import cluster_request
from pipegen.targets.kfp.checks import skip_conditions, uses_run_context
from pipegen.targets.kfp.close_run import RunClosers
from pipegen.targets.kfp.containers import ContainerSteps
from pipegen.targets.kfp.launcher import KIND, launch_request, launches, rbac_lines
from pipegen.targets.kfp.names import RUN_DATE, RUN_KEY, SPEC, WAIT_STARTED, escaped_json, ident
from pipegen.targets.kfp.notify import ExitNotification
from pipegen.targets.kfp.options import KfpOptions
from pipegen.targets.kfp.view import Call, Component, View


def lean(spec: dict[str, object]) -> dict[str, object]:
    """A command step's spec without what the runtime reads as absent anyway (None values, an empty env, and
    None in its job): each task carries its spec in the IR, so every byte counts once per step."""
    out = {k: v for k, v in spec.items() if v is not None and not (k == "env" and v == {})}
    job = out.get("job")
    if isinstance(job, dict):
        out["job"] = {k: v for k, v in job.items() if v is not None}
    return out


class Lowering(ContainerSteps, ExitNotification, RunClosers):
    """Builds the View; user strings reach the module only through py() and escaped_json()."""

    def __init__(self, pipeline: Pipeline, options: KfpOptions) -> None:
        self.p = pipeline
        self.options = options
        self.uses_kubernetes = False
        self.uses_clock = False
        self.param_names = sorted(pipeline.spec.params)
        # The container form's runtime steps take the run's id and date from their arguments: then only
        # kubernetes steps read the context task's outputs.
        self.has_context = uses_run_context(pipeline) and (
            options.runtime_components == "python"
            or any(isinstance(s.backend, KubernetesBackend) for s in pipeline.steps)
        )
        self.actions: dict[str, Component] = {}

    # ---- module -----------------------------------------------------------------------------
    def view(self) -> View:
        spec = self.p.spec
        components = [self._start_run_component()] if any(s.kind == "train" for s in self.p.steps) else []
        if self.has_context:
            components.insert(0, self._context_component())
        calls: list[Call] = []
        conditions = skip_conditions(self.p)
        for step in self.p.steps:
            known = set(self.actions)
            made, container = self._step(step)
            # Each runtime action's component where a step first calls it; a kubernetes step's own, in its place.
            components.extend(c for name, c in self.actions.items() if name not in known)
            components.extend(container)
            depth = len(conditions[step.name])
            for call in made:
                call.depth = depth
            calls.extend(made)
        if self.uses_clock:
            components.insert(int(self.has_context), self._clock_component())
        self._open_conditions(calls, conditions)
        exit_task = None
        if spec.notify.on_failure or spec.notify.on_success:
            # Only then: a pipeline without notifications keeps its steps at the top level, byte for byte.
            components.append(self._notify_component())
            exit_task = self._notify_call()
            for call in calls:
                call.depth += 1
        kinds = {bool: "bool", int: "int", float: "float", str: "str"}
        params = [f"{name}: {kinds[type(v)]} = {py(v)}" for name, v in sorted(spec.params.items())]
        pipeline_kwargs = [("name", py(self.p.name))]
        if spec.description:
            # kfp writes a tab in the description as a raw tab in IR YAML, which YAML parsers then reject.
            pipeline_kwargs.append(("description", py(spec.description.expandtabs(4))))
        if self.has_context:
            arguments = (
                ""
                if self._container_form
                else "pipegen_run_key=dsl.PIPELINE_JOB_ID_PLACEHOLDER, "
                "pipegen_schedule_time=dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER"
            )
            prologue = [
                f"context = pipegen_context({arguments})",
                "context.set_caching_options(False)",
                f"run_key, run_date = context.outputs[{py('run_id')}], context.outputs[{py('run_date')}]",
            ]
        else:
            prologue = ["run_key, run_date = dsl.PIPELINE_JOB_ID_PLACEHOLDER, ''"]
        return View(
            header=header_lines(self.p) + rbac_lines(self.p, self.options),
            docstring=py(spec.description or f"The {self.p.name} pipeline."),
            uses_kubernetes=self.uses_kubernetes,
            constants=self._constants(components),
            components=components,
            pipeline_kwargs=pipeline_kwargs,
            params=params,
            prologue=prologue,
            calls=calls,
            exit_task=exit_task,
            exit_handler=self._exit_handler() if exit_task is not None else "",
        )

    def _constants(self, components: list[Component]) -> list[tuple[str, str]]:
        # Unset only when no component needs it (checks.runtime_image).
        out = [("BASE_IMAGE", py(self.options.base_image))] if self.options.base_image else []
        if any("args=RUNTIME_ARGS," in line for c in components for line in c.body):
            # Every runtime container's arguments: kfp's executor input, then the run's id, schedule time and
            # creation time (pipegen.runtime.kfp_executor derives ${run.date} from them, the same in every task).
            args = "PIPELINE_JOB_ID_PLACEHOLDER, PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER, PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER"
            out.append(("RUNTIME_ARGS", "['{{$}}', " + ", ".join(f"dsl.{a}" for a in args.split(", ")) + "]"))
        return out

    def _open_conditions(self, calls: list[Call], conditions: dict[str, list[str]]) -> None:
        """Mark where each dsl.If opens: when a call's condition stack grows past the previous one's."""
        previous: list[str] = []
        for call in calls:
            wanted = conditions[call.step]
            common = 0
            while common < min(len(previous), len(wanted)) and previous[common] == wanted[common]:
                common += 1
            call.condition_opens = [
                f"with dsl.If({ident(name)}_task.output == True, name={py(name.replace('_', '-') + '-passed')}):"
                for name in wanted[common:]
            ]
            previous = wanted

    # ---- shared pieces -------------------------------------------------------------------------
    def _common_kwargs(self) -> list[tuple[str, str]]:
        return [(RUN_KEY, "run_key"), (RUN_DATE, "run_date")] + [(n, n) for n in self.param_names]

    def _call(self, step: ResolvedStep, mlflow_from: str | None, extra: list[tuple[str, str]] | None = None) -> Call:
        """A step's call of its own component (kubernetes): the run's id, date and params as inputs."""
        var = f"{ident(step.name)}_task"
        kwargs = self._common_kwargs()
        if mlflow_from is not None:
            kwargs += [
                ("pipegen_mlflow_run_id", f"{mlflow_from}.outputs['run_id']"),
                ("pipegen_mlflow_experiment_id", f"{mlflow_from}.outputs['experiment_id']"),
            ]
        kwargs += extra or []
        # The step's name as written, in the KFP UI: a runtime step's task is named after its action's component.
        settings = [f"{var}.set_display_name({py(step.name)})", *self._settings(step, var)]
        settings += [f"{var}.after({ident(u)}_task)" for u in step.upstream]
        return Call(var, ident(step.name), kwargs, settings, step=step.name)

    def _action_call(
        self,
        step: ResolvedStep,
        kind: str,
        spec: dict[str, object],
        mlflow_from: str | None,
        extra: list[tuple[str, str]] | None = None,
    ) -> Call:
        """A runtime step's call of its action's shared component, its settings as the constant spec input."""
        call = self._call(step, mlflow_from, extra)
        call.component = self._use_action(kind, mlflow_from is not None)
        call.kwargs = [(SPEC, py(escaped_json(spec, compact=True))), *call.kwargs]
        if self._container_form:
            # The container takes the run's id and date from its arguments (RUNTIME_ARGS), not from a task.
            call.kwargs = [kv for kv in call.kwargs if kv[0] not in (RUN_KEY, RUN_DATE)]
        return call

    def _tracking(self) -> str:
        return self.p.spec.mlflow.tracking_uri or ""

    # ---- per kind --------------------------------------------------------------------------
    def _step(self, step: ResolvedStep) -> tuple[list[Call], list[Component]]:
        """The step's calls, and its own component when it runs in its own container (kubernetes)."""
        body = step.body
        if step.kind == "gate":
            return self._gate(step), []
        if step.kind == "evaluate":
            spec: dict[str, object] = {
                "thresholds": list(body.thresholds),
                "on_fail": body.on_fail,
                "tracking_uri": self._tracking(),
            }
            if step.champion is not None:
                spec["champion"] = step.champion
            if step.policy.retries:
                # set_retry cannot tell a failed judgement from an unreachable server (TaskSettings._settings).
                spec["retry"] = step.policy.runtime_retry()
            return [self._action_call(step, "evaluate", spec, f"{ident(body.run_of)}_run")], []
        if step.kind == "promote":
            return [self._action_call(step, "promote", promote_request(self.p, step), f"{ident(body.run_of)}_run")], []
        return self._command_step(step)

    def _gate(self, step: ResolvedStep) -> list[Call]:
        assert step.gate is not None
        spec: dict[str, object] = {"gate": step.gate}
        if "wait" not in step.gate:
            return [self._action_call(step, "gate", spec, None)]
        # The wait's anchor: a time taken by a task of its own before the gate's first attempt. KFP passes a
        # retried task the same inputs, so a retry resumes the wait (or fails at once past its deadline).
        clock = Call(
            f"{ident(step.name)}_clock",
            "pipegen_clock",
            [],
            [
                f"set_display_name({py(step.name + ' clock')})",
                "set_caching_options(False)",
                *(f"after({ident(u)}_task)" for u in step.upstream),
            ],
            step=step.name,
        )
        clock.settings = [f"{clock.var}.{s}" for s in clock.settings]
        self.uses_clock = True
        return [clock, self._action_call(step, "gate", spec, None, [(WAIT_STARTED, f"{clock.var}.output")])]

    def _command_step(self, step: ResolvedStep) -> tuple[list[Call], list[Component]]:
        calls: list[Call] = []
        mlflow_from = None
        start: dict[str, object] = {}
        if step.kind == "train":
            run_var = f"{ident(step.name)}_run"
            start = {
                "pipeline": self.p.name,
                "step": step.name,
                "spec_sha256": self.p.spec_sha256,
                "experiment": self.p.experiment,
                "tracking_uri": self._tracking(),
            }
            kwargs = self._common_kwargs()
            if self._container_form:
                kwargs = [kv for kv in kwargs if kv[0] not in (RUN_KEY, RUN_DATE)]  # RUNTIME_ARGS
            run_call = Call(
                run_var,
                "pipegen_start_run",
                [(SPEC, py(escaped_json(start, compact=True))), *kwargs],
                [
                    f"{run_var}.set_display_name({py(step.name + ' run')})",
                    f"{run_var}.set_caching_options(False)",
                    *self._mlflow_env(run_var),
                    *self._runtime_secret_env(run_var, self._tracking_secrets()),
                ]
                + [f"{run_var}.after({ident(u)}_task)" for u in step.upstream],
                step=step.name,
            )
            calls.append(run_call)
            mlflow_from = run_var
        backend = step.backend
        if launches(step):
            # Kubernetes objects (pipegen.k8s) the runtime's launcher creates and waits for: KFP has no ResourceOp.
            call = self._action_call(step, KIND, launch_request(self.p, self.options, step), mlflow_from)
            if mlflow_from:
                call.settings.append(f"{call.var}.after({mlflow_from})")
            return [*calls, call], []
        if isinstance(backend, KubernetesBackend):
            component, extra = self._container(step, backend, mlflow_from is not None)
            call = self._call(step, mlflow_from, extra)
            call.kwargs = [kv for kv in call.kwargs if kv[0] not in (RUN_KEY, RUN_DATE, *self.param_names)]
            call.settings += self._kubernetes_settings(step, backend, call.var)
            if mlflow_from:
                call.settings.append(f"{call.var}.after({mlflow_from})")
                # The user's image ends the run only if it gets that far: the closer ends what it left RUNNING.
                return [*calls, call, self._close_run_call(step, start, call.var)], [component]
            return [*calls, call], [component]
        if isinstance(backend, SparkBackend | RayBackend):
            kind, spec = cluster_request(self.p, step)  # spark-submit or a Ray job, submitted and waited for
        else:
            kind, spec = command_request(self.p, step)
            spec = lean(spec)
        if mlflow_from:
            # The job's MLFLOW_TRACKING_URI, rendered in this task (checks.tracking_secret keeps secrets out of AWS jobs).
            spec["tracking_uri"] = self._tracking()
        call = self._action_call(step, kind, spec, mlflow_from)
        if mlflow_from:
            call.settings.append(f"{call.var}.after({mlflow_from})")
        return [*calls, call], []
