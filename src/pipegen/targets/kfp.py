"""The Kubeflow Pipelines v2 target: a kfp 2.17 pipeline module per spec (optionally its compiled IR)."""

from __future__ import annotations

import contextlib
import json
import keyword
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from pipegen import __version__
from pipegen.diagnostics import Diagnostic, diag
from pipegen.emit import Output
from pipegen.expr import Lit, Ref, parse_template
from pipegen.render import py, render
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.runtime.templating import secret_env_name
from pipegen.spec import AwsBatchBackend, KubernetesBackend, LocalBackend, SageMakerBackend
from pipegen.targets.base import Support, Target, kubernetes_name, promote_request
from pipegen.targets.resources import batch_resources

# Inputs every generated component takes; user parameter names may not collide with them.
RUN_KEY, RUN_DATE = "pipegen_run_key", "pipegen_run_date"
MLFLOW_INPUTS = ("pipegen_mlflow_run_id", "pipegen_mlflow_experiment_id", "pipegen_mlflow_tracking_uri")
_TAKEN = {"dsl", "kubernetes", "NamedTuple", "BASE_IMAGE", "pipeline", "pipegen_start_run", "pipegen_context", "json"}


class KfpOptions(BaseModel):
    """`targets: {kfp: {...}}` in a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # The image runtime components run in; it must have `pipegen[runtime]` installed.
    base_image: str = "python:3.11-slim"
    # kfp installs itself into each lightweight component's container unless the image already has it.
    install_kfp_package: bool = True


def escaped_json(value: object) -> str:
    """Canonical JSON in which every brace inside a string is a \\u escape.

    KFP launchers substitute `{{$...}}` placeholders anywhere in a component's command, including the
    embedded source; with braces escaped, no user text can form one. Structural braces stay as they are
    (JSON objects never open with `{{`).
    """
    if isinstance(value, dict):
        return "{" + ", ".join(f"{escaped_json(str(k))}: {escaped_json(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(escaped_json(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("{", "\\u007b").replace("}", "\\u007d")
    return json.dumps(value)


def ident(name: str) -> str:
    """A Python identifier for a step's component function."""
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in _TAKEN:
        return name + "_"
    return name


@dataclass
class Component:
    """A component function definition: name, signature inputs, docstring and body (pre-rendered)."""

    name: str
    kind: str  # "lightweight" | "container"
    inputs: list[tuple[str, str]]
    returns: str
    doc: str
    body: list[str]


@dataclass
class Call:
    """A task in the pipeline body, with its settings, nested under its dsl.If conditions."""

    var: str
    component: str
    kwargs: list[tuple[str, str]]
    settings: list[str]
    step: str = ""
    depth: int = 0
    condition_opens: list[str] = field(default_factory=list)


@dataclass
class View:
    """Everything the module template lays out."""

    header: list[str]
    docstring: str
    uses_kubernetes: bool
    constants: list[tuple[str, str]]
    components: list[Component]
    pipeline_kwargs: list[tuple[str, str]]
    params: list[str]
    prologue: list[str]
    calls: list[Call]


class KfpTarget(Target):
    """Kubeflow Pipelines v2 (kfp 2.17) pipeline modules."""

    name = "kfp"
    title = "Kubeflow Pipelines v2"
    support = Support(
        backends={
            "kubernetes": "container component (dsl.ContainerSpec) with kfp-kubernetes for secrets and node selectors",
            "aws_batch": "runtime component that submits the job and waits",
            "sagemaker": "runtime component that creates the training job and waits",
            "local": "runtime component that runs the command in the component's container",
        },
        gates={
            "partition_exists": "runtime component (a wait polls inside it)",
            "freshness": "runtime component (a wait polls inside it)",
            "row_count": "runtime component (a wait polls inside it)",
            "sql": "runtime component (a wait polls inside it)",
        },
        features={
            "schedule": "recurring-run definition beside the pipeline (<name>.schedule.json)",
            "params": "pipeline parameters",
            "retries/backoff": "set_retry(num_retries, backoff_duration, backoff_factor, backoff_max_duration)",
            "timeout": "kfp-kubernetes set_timeout (pod activeDeadlineSeconds)",
            "evaluate on_fail: skip": "dsl.If around the promotion",
            "evaluate on_fail: fail": "the evaluate component fails",
            "caching": "off for every task",
            "${run.id} / ${run.date}": "the pipeline job id / the scheduled time's date (today for manual runs)",
            "${secret.X}": "Kubernetes secret x mounted with kfp-kubernetes use_secret_as_env",
        },
    )
    options_model = KfpOptions

    def check(self, pipeline: Pipeline, options: BaseModel) -> list[Diagnostic]:
        """Shared checks plus what KFP cannot express."""
        return [*super().check(pipeline, options), *self._limits(pipeline)]

    def _limits(self, pipeline: Pipeline) -> Iterator[Diagnostic]:
        for name, value in pipeline.spec.params.items():
            if isinstance(value, str) and ("\n" in value or "\r" in value):
                yield diag(
                    "PG602",
                    f"target 'kfp' cannot take a line break in the default of parameter '{name}'",
                    pipeline.source_map.value(("params", name)),
                    "kfp copies defaults into the IR's comment header, where a line break ends the comment",
                )
            if name.startswith("pipegen"):
                yield diag(
                    "PG601",
                    f"parameter name '{name}' uses the reserved prefix 'pipegen'",
                    pipeline.source_map.key(("params", name)),
                )
        for step in pipeline.steps:
            backend = step.backend
            if not isinstance(backend, KubernetesBackend):
                continue
            body = step.body
            for i, arg in enumerate(body.command):
                bad = [r for r in parse_template(arg).refs if r.namespace in ("secret", "env")]
                if bad:
                    yield diag(
                        "PG602",
                        f"target 'kfp' cannot put {bad[0]} in the command of container step '{step.name}'",
                        pipeline.locate(step, step.kind, "command", i),
                        "pass it as an environment variable whose whole value is ${secret.NAME}",
                    )
            for key, value in {**backend.env, **body.env}.items():
                template = parse_template(value)
                refs = [r for r in template.refs if r.namespace in ("secret", "env")]
                if refs and not (template.single_ref is not None and template.single_ref.namespace == "secret"):
                    where = (step.kind, "env", key) if key in body.env else ()
                    yield diag(
                        "PG602",
                        f"target 'kfp' can set {refs[0]} in container step '{step.name}' only as a whole "
                        "secret environment value",
                        pipeline.locate(step, *where) if where else step.location,
                        "write the value as exactly ${secret.NAME}",
                    )
            if backend.service_account:
                yield diag(
                    "PG702",
                    f"target 'kfp' sets the service account per run, not per step: 'service_account' of "
                    f"step '{step.name}' is not applied",
                    pipeline.source_map.value(("backends", str(step.backend_name), "service_account")),
                    "pass the service account when submitting the run",
                )
        yield from _condition_nesting(pipeline)

    def finish(self, outputs: list[Output], flags: frozenset[str]) -> list[Output]:
        """With --ir, also the IR YAML compiled by kfp itself (the only time pipegen imports kfp)."""
        if "ir" not in flags:
            return outputs
        return [*outputs, *(_compile_ir(o) for o in outputs if o.path.endswith(".py"))]

    def render(self, pipeline: Pipeline, options: BaseModel) -> list[Output]:
        """The pipeline module, and the recurring-run definition when the spec has a schedule."""
        assert isinstance(options, KfpOptions)
        view = _Lowering(pipeline, options).view()
        text = render("kfp/pipeline.py.j2", v=view, install_kfp=options.install_kfp_package)
        outputs = [Output(f"kfp/{pipeline.name}.py", text)]
        if pipeline.schedule is not None:
            outputs.append(Output(f"kfp/{pipeline.name}.schedule.json", _recurring_run(pipeline)))
        return outputs


TARGET = KfpTarget()


def _compile_ir(module: Output) -> Output:
    """Compile a generated pipeline module with the kfp compiler into IR YAML."""
    import importlib.util
    import tempfile
    from pathlib import Path

    from kfp import compiler  # type: ignore[import-not-found,unused-ignore]

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "pipeline_module.py"
        source.write_text(module.text, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("pipegen_compiled_pipeline", source)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        target = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(loaded.pipeline, package_path=str(target))
        return Output(module.path[: -len(".py")] + ".yaml", target.read_text(encoding="utf-8"))


def _skip_conditions(pipeline: Pipeline) -> dict[str, list[str]]:
    """For each step, the skip-on-fail evaluate steps it runs under, outermost first."""
    order = [s.name for s in pipeline.steps]
    ancestors: dict[str, set[str]] = {}
    for step in pipeline.steps:
        ancestors[step.name] = set(step.upstream).union(*(ancestors[u] for u in step.upstream))
    skips = {s.name for s in pipeline.steps if s.kind == "evaluate" and s.body.on_fail == "skip"}
    return {name: sorted(ancestors[name] & skips, key=order.index) for name in order}


def _condition_nesting(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """KFP tasks may read tasks of their own or enclosing dsl.If blocks only; emitting in order must keep blocks open."""
    conditions = _skip_conditions(pipeline)
    open_blocks: list[str] = []
    block_of: dict[str, tuple[str, ...]] = {}
    closed: set[tuple[str, ...]] = set()
    for step in pipeline.steps:
        wanted = conditions[step.name]
        while open_blocks and open_blocks != wanted[: len(open_blocks)]:
            closed.add(tuple(open_blocks))
            open_blocks.pop()
        open_blocks.extend(wanted[len(open_blocks) :])
        block_of[step.name] = tuple(open_blocks)
        for up in step.upstream:
            if block_of[up] in closed or block_of[up] != block_of[step.name][: len(block_of[up])]:
                yield diag(
                    "PG602",
                    f"target 'kfp' cannot express step '{step.name}': it reads '{up}' across dsl.If blocks",
                    step.location,
                    "make steps that depend on an evaluate's outcome run after it, one branch at a time",
                )


def _recurring_run(pipeline: Pipeline) -> str:
    """A KFP recurring-run definition (the IR cannot hold a schedule); see the README for submission."""
    sched = pipeline.schedule
    assert sched is not None
    # KFP cron has a seconds field first.
    doc = {
        "display_name": f"{pipeline.name} schedule",
        "pipeline": f"{pipeline.name}.yaml",
        "trigger": {
            "cron_schedule": {
                "cron": f"0 {sched.cron}",
                **({"start_time": f"{sched.start.isoformat()}T00:00:00Z"} if sched.start else {}),
            }
        },
        "timezone": sched.timezone,
        "catchup": sched.catchup,
        "max_concurrency": 1,
        "parameters": {k: v for k, v in sorted(pipeline.spec.params.items())},
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class _Lowering:
    """Builds the View; user strings reach the module only through py() and escaped_json()."""

    def __init__(self, pipeline: Pipeline, options: KfpOptions) -> None:
        self.p = pipeline
        self.options = options
        self.uses_kubernetes = False
        self.param_names = sorted(pipeline.spec.params)
        refs = [r for s in pipeline.steps for r in _step_refs(s)]
        self.has_context = any(r.namespace == "run" for r in refs)

    # ---- module -----------------------------------------------------------------------------
    def view(self) -> View:
        spec = self.p.spec
        components = [self._start_run_component()] if any(s.kind == "train" for s in self.p.steps) else []
        if self.has_context:
            components.insert(0, self._context_component())
        calls: list[Call] = []
        conditions = _skip_conditions(self.p)
        for step in self.p.steps:
            made, new = self._step(step)
            components.extend(new)
            depth = len(conditions[step.name])
            for call in made:
                call.depth = depth
            calls.extend(made)
        self._open_conditions(calls, conditions)
        kinds = {bool: "bool", int: "int", float: "float", str: "str"}
        params = [f"{name}: {kinds[type(v)]} = {py(v)}" for name, v in sorted(spec.params.items())]
        pipeline_kwargs = [("name", py(self.p.name))]
        if spec.description:
            # kfp writes a tab in the description as a raw tab in IR YAML, which YAML parsers then reject.
            pipeline_kwargs.append(("description", py(spec.description.expandtabs(4))))
        if self.has_context:
            prologue = [
                "context = pipegen_context(pipegen_run_key=dsl.PIPELINE_JOB_ID_PLACEHOLDER, "
                "pipegen_schedule_time=dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER)",
                "context.set_caching_options(False)",
                f"run_key, run_date = context.outputs[{py('run_id')}], context.outputs[{py('run_date')}]",
            ]
        else:
            prologue = ["run_key, run_date = dsl.PIPELINE_JOB_ID_PLACEHOLDER, ''"]
        return View(
            header=[
                f"# Generated by pipegen {'.'.join(__version__.split('.')[:2])} from {self.p.spec_path}"
                f" (sha256 {self.p.spec_sha256}).",
                "# Do not edit: change the spec and run `pipegen compile` again.",
            ],
            docstring=py(spec.description or f"The {self.p.name} pipeline."),
            uses_kubernetes=self.uses_kubernetes,
            constants=[("BASE_IMAGE", py(self.options.base_image))],
            components=components,
            pipeline_kwargs=pipeline_kwargs,
            params=params,
            prologue=prologue,
            calls=calls,
        )

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
    def _common_inputs(self) -> list[tuple[str, str]]:
        return [(RUN_KEY, "str"), (RUN_DATE, "str")] + [
            (name, {bool: "bool", int: "int", float: "float", str: "str"}[type(self.p.spec.params[name])])
            for name in self.param_names
        ]

    def _common_kwargs(self) -> list[tuple[str, str]]:
        return [(RUN_KEY, "run_key"), (RUN_DATE, "run_date")] + [(n, n) for n in self.param_names]

    def _params_dict(self) -> str:
        return "{" + ", ".join(f"{py(n)}: {n}" for n in self.param_names) + "}"

    def _settings(self, step: ResolvedStep, var: str) -> list[str]:
        out = [f"{var}.set_caching_options(False)"]
        policy = step.policy
        if policy.retries:
            factor = "2.0" if policy.backoff == "exponential" else "1.0"
            retry = f"{var}.set_retry(num_retries={policy.retries}, backoff_duration={py(f'{policy.retry_delay}s')}, backoff_factor={factor}"
            if policy.max_retry_delay is not None:
                retry += f", backoff_max_duration={py(f'{policy.max_retry_delay}s')}"
            out.append(retry + ")")
        if policy.timeout is not None:
            self.uses_kubernetes = True
            out.append(f"kubernetes.set_timeout({var}, {policy.timeout})")
        # Runtime components read secrets as PIPEGEN_SECRET_<NAME>; container steps mount them under their own names.
        runtime_secrets = (
            set()
            if isinstance(step.backend, KubernetesBackend)
            else {r.name for r in _step_refs(step) if r.namespace == "secret"}
        )
        for name in sorted(runtime_secrets):
            self.uses_kubernetes = True
            out.append(
                f"kubernetes.use_secret_as_env({var}, secret_name={py(kubernetes_name(name))}, "
                f"secret_key_to_env={{{py(name)}: {py(secret_env_name(name))}}})"
            )
        return out

    def _runtime_component(self, step: ResolvedStep, kind: str, spec: dict[str, object], mlflow: bool) -> Component:
        inputs = self._common_inputs() + ([(n, "str") for n in MLFLOW_INPUTS] if mlflow else [])
        mlflow_arg = ""
        if mlflow:
            mlflow_arg = (
                ",\n        mlflow_run={'run_id': pipegen_mlflow_run_id, 'experiment_id': pipegen_mlflow_experiment_id, "
                "'tracking_uri': pipegen_mlflow_tracking_uri}"
            )
        # evaluate answers with one bool (dsl.If reads it; kfp.local cannot branch on a NamedTuple field);
        # the other steps return their JSON result.
        returns = "bool" if kind == "evaluate" else "str"
        ret = "return bool(result['passed'])" if kind == "evaluate" else "return json.dumps(result, sort_keys=True)"
        body = [
            *([] if kind == "evaluate" else ["import json", ""]),
            "from pipegen.runtime.step import run_step",
            "",
            "result = run_step(",
            f"    {py(kind)},",
            f"    {py(escaped_json(spec))},",
            f"    params={self._params_dict()},",
            f"    run_id={RUN_KEY},",
            f"    run_date={RUN_DATE}{mlflow_arg},",
            ")",
            ret,
        ]
        doc = f"{step.kind} step '{step.name}' of pipeline '{self.p.name}', run by pipegen.runtime."
        return Component(ident(step.name), "lightweight", inputs, returns, py(doc), body)

    def _call(self, step: ResolvedStep, mlflow_from: str | None, extra: list[tuple[str, str]] | None = None) -> Call:
        var = f"{ident(step.name)}_task"
        kwargs = self._common_kwargs()
        if mlflow_from is not None:
            kwargs += [
                ("pipegen_mlflow_run_id", f"{mlflow_from}.outputs['run_id']"),
                ("pipegen_mlflow_experiment_id", f"{mlflow_from}.outputs['experiment_id']"),
                ("pipegen_mlflow_tracking_uri", f"{mlflow_from}.outputs['tracking_uri']"),
            ]
        kwargs += extra or []
        settings = self._settings(step, var)
        settings += [f"{var}.after({ident(u)}_task)" for u in step.upstream]
        return Call(var, ident(step.name), kwargs, settings, step=step.name)

    def _tracking(self) -> str:
        return self.p.spec.mlflow.tracking_uri or ""

    # ---- per kind --------------------------------------------------------------------------
    def _step(self, step: ResolvedStep) -> tuple[list[Call], list[Component]]:
        body = step.body
        if step.kind == "gate":
            component = self._runtime_component(step, "gate", {"gate": step.gate}, mlflow=False)
            return [self._call(step, None)], [component]
        if step.kind == "evaluate":
            spec: dict[str, object] = {
                "thresholds": list(body.thresholds),
                "on_fail": body.on_fail,
                "tracking_uri": self._tracking(),
            }
            if step.champion is not None:
                spec["champion"] = step.champion
            component = self._runtime_component(step, "evaluate", spec, mlflow=True)
            return [self._call(step, f"{ident(body.run_of)}_run")], [component]
        if step.kind == "promote":
            component = self._runtime_component(step, "promote", promote_request(self.p, step), mlflow=True)
            return [self._call(step, f"{ident(body.run_of)}_run")], [component]
        return self._command_step(step)

    def _start_run_component(self) -> Component:
        returns = "NamedTuple('Outputs', [('run_id', str), ('experiment_id', str), ('tracking_uri', str)])"
        body = [
            "from collections import namedtuple",
            "",
            "from pipegen.runtime.step import run_step",
            "",
            f"run = run_step('start_run', spec, params={self._params_dict()}, run_id=pipegen_run_key, run_date=pipegen_run_date)",
            "return namedtuple('Outputs', ['run_id', 'experiment_id', 'tracking_uri'])(",
            "    run['run_id'], run['experiment_id'], run['tracking_uri']",
            ")",
        ]
        inputs = [("spec", "str"), *self._common_inputs()]
        return Component(
            "pipegen_start_run",
            "lightweight",
            inputs,
            returns,
            py("Create (or, on a retry, find) the MLflow run a training step logs into."),
            body,
        )

    def _context_component(self) -> Component:
        returns = "NamedTuple('Outputs', [('run_id', str), ('run_date', str)])"
        body = [
            "from collections import namedtuple",
            "",
            "from pipegen.runtime.step import run_date_from",
            "",
            "return namedtuple('Outputs', ['run_id', 'run_date'])(pipegen_run_key, run_date_from(pipegen_schedule_time))",
        ]
        return Component(
            "pipegen_context",
            "lightweight",
            [(RUN_KEY, "str"), ("pipegen_schedule_time", "str")],
            returns,
            py("The run's id and logical date (${run.id}, ${run.date})."),
            body,
        )

    def _command_step(self, step: ResolvedStep) -> tuple[list[Call], list[Component]]:
        calls: list[Call] = []
        mlflow_from = None
        if step.kind == "train":
            run_var = f"{ident(step.name)}_run"
            start = {
                "pipeline": self.p.name,
                "step": step.name,
                "spec_sha256": self.p.spec_sha256,
                "experiment": self.p.experiment,
                "tracking_uri": self._tracking(),
            }
            run_call = Call(
                run_var,
                "pipegen_start_run",
                [("spec", py(escaped_json(start))), *self._common_kwargs()],
                [f"{run_var}.set_caching_options(False)"]
                + [f"{run_var}.after({ident(u)}_task)" for u in step.upstream],
                step=step.name,
            )
            calls.append(run_call)
            mlflow_from = run_var
        backend = step.backend
        body = step.body
        if isinstance(backend, KubernetesBackend):
            component, extra = self._container(step, backend, mlflow_from is not None)
            call = self._call(step, mlflow_from, extra)
            call.kwargs = [kv for kv in call.kwargs if kv[0] not in (RUN_KEY, RUN_DATE, *self.param_names)]
            call.settings += self._kubernetes_settings(step, backend, call.var)
            if mlflow_from:
                call.settings.append(f"{call.var}.after({mlflow_from})")
            return [*calls, call], [component]
        spec: dict[str, object] = {"command": list(body.command), "env": {**getattr(backend, "env", {}), **body.env}}
        if isinstance(backend, LocalBackend):
            kind = "local"
            if backend.working_dir:
                spec["working_dir"] = backend.working_dir.replace("${", "$${")
        elif isinstance(backend, AwsBatchBackend):
            kind = "aws_batch"
            spec["job"] = {
                "job_name": f"{self.p.name}-{step.name}",
                "job_queue": backend.job_queue,
                "job_definition": backend.job_definition,
                "region": backend.region,
                "resources": batch_resources(body.resources) or None,
            }
        else:
            assert isinstance(backend, SageMakerBackend)
            kind = "sagemaker"
            spec["job"] = {
                "job_name": f"{self.p.name}-{step.name}",
                "image": backend.image,
                "role_arn": backend.role_arn,
                "instance_type": backend.instance_type,
                "instance_count": backend.instance_count,
                "output_path": backend.output_path,
                "region": backend.region,
                "max_runtime_seconds": step.policy.timeout or 86400,
            }
        component = self._runtime_component(step, kind, spec, mlflow=mlflow_from is not None)
        call = self._call(step, mlflow_from)
        if mlflow_from:
            call.settings.append(f"{call.var}.after({mlflow_from})")
        return [*calls, call], [component]

    def _container(
        self, step: ResolvedStep, backend: KubernetesBackend, mlflow: bool
    ) -> tuple[Component, list[tuple[str, str]]]:
        """A container component whose every argument and env value is an input: constants stay data, never template."""
        body = step.body
        env = {**backend.env, **body.env}
        plain_env = sorted((k, v) for k, v in env.items() if not _is_secret(v))
        # KFP substitutes `{{$.inputs.parameters['NAME']}}` one input at a time, also inside values already
        # substituted; so input names must not be ones the step's own text mentions.
        mentioned = " ".join([*body.command, *env.values()])
        suffix = ""
        while any(f"parameters['{p}{suffix}_" in mentioned for p in ("arg", "env")):
            suffix = f"{suffix}x"
        arg, env_name = f"arg{suffix}", f"env{suffix}"
        inputs: list[tuple[str, str]] = []
        kwargs: list[tuple[str, str]] = []
        exports: list[str] = []
        position = 1
        if mlflow:
            for name, var in zip(
                MLFLOW_INPUTS, ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_TRACKING_URI"), strict=True
            ):
                inputs.append((name, "str"))
                exports.append(f'{var}="${position}"')
                position += 1
        for i, (key, value) in enumerate(plain_env):
            inputs.append((f"{env_name}_{i}", "str"))
            kwargs.append((f"{env_name}_{i}", self._channel_string(value)))
            exports.append(f'{key}="${position}"')
            position += 1
        for i, value in enumerate(body.command):
            inputs.append((f"{arg}_{i}", "str"))
            kwargs.append((f"{arg}_{i}", self._channel_string(value)))
        # sh receives the values as positional parameters, so no value is ever parsed as shell text.
        script = (f"export {' '.join(exports)}; shift {position - 1}; " if exports else "") + 'exec "$@"'
        names = [n for n, _ in inputs if n.startswith(("pipegen_mlflow", f"{env_name}_"))]
        command = ["'sh'", "'-c'", py(script), "'pipegen'", *names, *(f"{arg}_{i}" for i in range(len(body.command)))]
        component_body = [
            "return dsl.ContainerSpec(",
            f"    image={py(backend.image.replace('$${', '${'))},",
            f"    command=[{', '.join(command)}],",
            ")",
        ]
        doc = f"{step.kind} step '{step.name}' of pipeline '{self.p.name}' in its own image."
        return Component(ident(step.name), "container", inputs, "dsl.ContainerSpec", py(doc), component_body), kwargs

    def _kubernetes_settings(self, step: ResolvedStep, backend: KubernetesBackend, var: str) -> list[str]:
        out: list[str] = []
        env = {**backend.env, **step.body.env}
        for key, value in sorted(env.items()):
            ref = parse_template(value).single_ref
            if ref is not None and ref.namespace == "secret":
                self.uses_kubernetes = True
                out.append(
                    f"kubernetes.use_secret_as_env({var}, secret_name={py(kubernetes_name(ref.name))}, "
                    f"secret_key_to_env={{{py(ref.name)}: {py(key)}}})"
                )
        for key, value in sorted(backend.node_selector.items()):
            self.uses_kubernetes = True
            out.append(f"kubernetes.add_node_selector({var}, label_key={py(key)}, label_value={py(value)})")
        resources = step.body.resources
        if resources is not None:
            if resources.cpu is not None:
                cpu = py(str(resources.cpu) if isinstance(resources.cpu, str) else f"{resources.cpu:g}")
                out += [f"{var}.set_cpu_request({cpu})", f"{var}.set_cpu_limit({cpu})"]
            if resources.memory is not None:
                out += [
                    f"{var}.set_memory_request({py(resources.memory)})",
                    f"{var}.set_memory_limit({py(resources.memory)})",
                ]
            if resources.gpu:
                out += [
                    f"{var}.set_accelerator_type('nvidia.com/gpu')",
                    f"{var}.set_accelerator_limit({resources.gpu})",
                ]
        return out

    def _channel_string(self, text: str) -> str:
        """Python source for a str input: a constant, or an f-string over pipeline channels."""
        template = parse_template(text)
        if template.is_literal:
            return py(template.literal_text())
        pieces = []
        for part in template.parts:
            if isinstance(part, Lit):
                pieces.append(part.text.replace("{", "{{").replace("}", "}}"))
            elif part.namespace == "params":
                pieces.append("{" + part.name + "}")
            elif part.namespace == "run":
                pieces.append("{run_key}" if part.name == "id" else "{run_date}")
        # repr of the joined text, then turned into an f-string: quotes and backslashes stay escaped.
        return "f" + py("".join(pieces))


def _is_secret(value: str) -> bool:
    ref = parse_template(value).single_ref
    return ref is not None and ref.namespace == "secret"


def _step_refs(step: ResolvedStep) -> list[Ref]:
    """Every reference in a step's strings and its backend's."""
    refs: list[Ref] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                refs.extend(parse_template(value).refs)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(step.body.model_dump())
    if step.backend is not None:
        walk(step.backend.model_dump())
    return refs
