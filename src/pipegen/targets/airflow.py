"""The Airflow 3 target: one DAG file per spec, with airflow.sdk and the providers' operators."""

from __future__ import annotations

import itertools
import keyword
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from pipegen.diagnostics import Diagnostic, diag
from pipegen.emit import Output
from pipegen.expr import parse_template
from pipegen.render import py, render
from pipegen.resolve import Pipeline, ResolvedStep, RetryPolicy, resolve_policy_defaults
from pipegen.spec import AwsBatchBackend, KubernetesBackend, SageMakerBackend
from pipegen.targets.airflow_expr import (
    JOB_NAME_MACRO,
    RUN_DATE_MACRO,
    SECRET_MACRO,
    jinja_string_literal,
    literal_source,
    needs_literal,
    templated,
    uses_literal,
)
from pipegen.targets.base import Support, Target, header_lines, kubernetes_name
from pipegen.targets.resources import batch_resources, kubernetes_cpu

# Names the generated module defines or imports; a step with one of these names gets a '_' suffix.
_TAKEN = {
    "DAG",
    "Param",
    "literal",
    "task",
    "os",
    "timedelta",
    "pendulum",
    "k8s",
    "Secret",
    "KubernetesPodOperator",
    "BatchOperator",
    "SageMakerTrainingOperator",
    "PIPELINE",
    "SPEC_SHA256",
    "EXPERIMENT",
    "TRACKING_URI",
    "TIMEZONE",
    "FAILURE_WEBHOOKS",
    "dag",
    "annotations",
}


TAG_LIMIT = 100
# AWS Batch's smallest attemptDurationSeconds.
BATCH_MIN_TIMEOUT = 60


# What Airflow accepts as a connection id (airflow.models.connection.RE_SANITIZE_CONN_ID, CONN_ID_MAX_LEN):
# no brace, quote or line break, so an accepted id is also literal text in the templated fields it reaches.
CONN_ID = re.compile(r"[\w#!()\-.:/\\]{1,250}")


class AirflowOptions(BaseModel):
    """`targets: {airflow: {...}}` in a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    aws_conn_id: str = "aws_default"
    kubernetes_conn_id: str = "kubernetes_default"
    sagemaker_volume_gb: int = 30

    @field_validator("aws_conn_id", "kubernetes_conn_id")
    @classmethod
    def _conn_id(cls, value: str) -> str:
        if not CONN_ID.fullmatch(value):
            raise PydanticCustomError(
                "pg_name",
                "'{value}' is not an Airflow connection id",
                {
                    "value": value,
                    "hint": "Airflow connection ids are 1 to 250 letters, digits and the characters _ - . : / \\ # ! ( )",
                },
            )
        return value


@dataclass
class Task:
    """One operator instantiation in the DAG body: `var = call(kwargs...)`."""

    var: str
    call: str
    kwargs: list[tuple[str, str]]
    comment: str = ""


@dataclass
class View:
    """Everything the DAG template lays out, as pre-rendered Python source."""

    header: list[str]
    docstring: str
    imports: list[str]
    constants: list[tuple[str, str]]
    helpers: set[str]
    default_args: list[tuple[str, str]]
    dag_kwargs: list[tuple[str, str]]
    tasks: list[Task] = field(default_factory=list)
    edges: list[str] = field(default_factory=list)


def var_name(step: str) -> str:
    """A Python variable for a step: its name, with '_' added where that would shadow something."""
    if keyword.iskeyword(step) or keyword.issoftkeyword(step) or step in _TAKEN:
        return step + "_"
    return step


def _timedelta(seconds: int) -> str:
    return f"timedelta(seconds={seconds})"


class AirflowTarget(Target):
    """Airflow 3.3 DAG files."""

    name = "airflow"
    title = "Apache Airflow 3"
    support = Support(
        backends={
            "kubernetes": "KubernetesPodOperator (cncf.kubernetes provider)",
            "aws_batch": "BatchOperator (amazon provider)",
            "sagemaker": "SageMakerTrainingOperator (amazon provider)",
            "local": "a @task that runs the command as a subprocess on the worker",
        },
        gates={
            "partition_exists": "runtime gate; with wait: @task.sensor in reschedule mode",
            "freshness": "runtime gate; with wait: @task.sensor in reschedule mode",
            "row_count": "runtime gate; with wait: @task.sensor in reschedule mode",
            "sql": "runtime gate; with wait: @task.sensor in reschedule mode",
        },
        features={
            "schedule": "DAG schedule, start_date, catchup, timezone",
            "params": "DAG params (airflow.sdk.Param)",
            "retries/backoff/timeout": "retries, retry_delay, retry_exponential_backoff, max_retry_delay, execution_timeout",
            "evaluate on_fail: skip": "@task.short_circuit (skips promotion)",
            "evaluate on_fail: fail": "@task that fails without retry",
            "promote": "runtime @task",
            "notify.on_failure": "DAG on_failure_callback",
            "${run.date} / ${run.id}": "the logical date (the trigger time without one) in the schedule's timezone"
            " / {{ run_id }}",
            "${env.X}": "the worker's environment variable X at render time",
            "${secret.X}": "Airflow Variable X, masked in logs; Kubernetes secret X as a whole pod env value",
        },
    )
    options_model = AirflowOptions

    def check(self, pipeline: Pipeline, options: BaseModel) -> list[Diagnostic]:
        """Shared capability checks plus where secrets can go in pods and jobs, and Airflow's tag limit."""
        return [*super().check(pipeline, options), *self._secret_placement(pipeline), *self._tags(pipeline)]

    def _tags(self, pipeline: Pipeline) -> Iterator[Diagnostic]:
        for i, tag in enumerate(pipeline.spec.tags):
            if len(tag) > TAG_LIMIT:
                yield diag(
                    "PG602",
                    f"target 'airflow' limits DAG tags to {TAG_LIMIT} characters; tag {i + 1} has {len(tag)}",
                    pipeline.source_map.value(("tags", i)),
                    f"shorten the tag to at most {TAG_LIMIT} characters",
                )

    def _secret_placement(self, pipeline: Pipeline) -> Iterator[Diagnostic]:
        yield from self._tracking_secret(pipeline)
        for step in pipeline.steps:
            if step.backend is None or step.backend.type == "local":
                continue
            body = step.body
            for i, arg in enumerate(body.command):
                if any(r.namespace == "secret" for r in parse_template(arg).refs):
                    yield diag(
                        "PG602",
                        f"target 'airflow' cannot pass a secret in the command of step '{step.name}' on {step.backend.type}",
                        pipeline.locate(step, step.kind, "command", i),
                        "pass it as an environment variable whose whole value is ${secret.NAME}, and read the variable",
                    )
            envs = {**getattr(step.backend, "env", {}), **body.env}
            for key, value in envs.items():
                template = parse_template(value)
                secrets = [r for r in template.refs if r.namespace == "secret"]
                if secrets and (step.backend.type != "kubernetes" or template.single_ref is None):
                    where = ("env", key) if key in body.env else ()
                    yield diag(
                        "PG602",
                        f"target 'airflow' can pass a secret to step '{step.name}' only as a whole environment value "
                        "of a kubernetes pod",
                        pipeline.locate(step, step.kind, *where) if where else step.location,
                        "on kubernetes, write the value as exactly ${secret.NAME}",
                    )

    def _tracking_secret(self, pipeline: Pipeline) -> Iterator[Diagnostic]:
        """A training job gets the tracking URI in its environment: a secret in it follows the env rule."""
        uri = pipeline.spec.mlflow.tracking_uri
        if uri is None:
            return
        template = parse_template(uri)
        if not any(r.namespace == "secret" for r in template.refs):
            return
        for step in pipeline.steps:
            backend = step.backend
            if step.kind != "train" or backend is None or backend.type == "local":
                continue
            if backend.type == "kubernetes" and template.single_ref is not None:
                continue
            yield diag(
                "PG602",
                f"target 'airflow' can pass a secret in mlflow.tracking_uri to training step '{step.name}' on "
                f"{backend.type} only as a Kubernetes secret: the whole URI must be ${{secret.NAME}} on a kubernetes pod",
                pipeline.source_map.value(("mlflow", "tracking_uri")),
                "keep the credentials out of the URI (e.g. MLFLOW_TRACKING_TOKEN from a secret), or make the whole "
                "tracking_uri ${secret.NAME} and train on kubernetes",
            )
            return

    def render(self, pipeline: Pipeline, options: BaseModel) -> list[Output]:
        """The DAG file for this pipeline."""
        assert isinstance(options, AirflowOptions)
        view = _Lowering(pipeline, options).view()
        return [Output(f"airflow/{pipeline.name}.py", render("airflow/dag.py.j2", v=view))]


TARGET = AirflowTarget()


class _Lowering:
    """Builds the View for one pipeline; every user value passes through py() or templated()."""

    def __init__(self, pipeline: Pipeline, options: AirflowOptions) -> None:
        self.p = pipeline
        self.options = options
        self.imports: set[str] = {"from airflow.sdk import DAG", "from datetime import timedelta"}
        self.helpers: set[str] = set()
        self.default_policy = resolve_policy_defaults(pipeline.spec)

    # ---- values ---------------------------------------------------------------------------
    def value(self, text: str) -> str:
        template = parse_template(text)
        if uses_literal(template):
            self.imports.add("from airflow.sdk import literal")
        if any(r.namespace == "env" for r in template.refs):
            self.imports.add("import os")
        if any(r.namespace == "run" and r.name == "date" for r in template.refs):
            self.helpers.add("run_date")
        if any(r.namespace == "secret" for r in template.refs):
            self.helpers.add("secret")
        return templated(template)

    def lit(self, text: str) -> str:
        """A plain spec string (no expressions) placed where Airflow renders templates."""
        return self.value(text.replace("${", "$${"))

    def literal(self, value: object) -> str:
        """A JSON-like value of plain spec strings (names, thresholds, options) in a templated field: never Jinja."""
        if needs_literal(value):
            self.imports.add("from airflow.sdk import literal")
        return literal_source(value)

    def lit_dict(self, mapping: dict[str, str]) -> str:
        """A dict of plain strings placed in a templated field (keys are not rendered by Airflow)."""
        return "{" + ", ".join(f"{py(k)}: {self.lit(v)}" for k, v in sorted(mapping.items())) + "}"

    def tracking_uri(self) -> str:
        return self.value(self.p.spec.mlflow.tracking_uri) if self.p.spec.mlflow.tracking_uri else py("")

    # ---- module parts ----------------------------------------------------------------------
    def view(self) -> View:
        spec = self.p.spec
        tasks, edges = self.tasks()
        header = header_lines(self.p)
        constants = [
            ("PIPELINE", py(self.p.name)),
            ("SPEC_SHA256", py(self.p.spec_sha256)),
            ("EXPERIMENT", py(self.p.experiment)),
            # Rendered by Airflow in each runtime task; empty means the worker's MLFLOW_TRACKING_URI.
            ("TRACKING_URI", self.tracking_uri()),
        ]
        if self.p.spec.notify.on_failure:
            constants.append(("FAILURE_WEBHOOKS", self.failure_webhooks()))
        dag_kwargs = self.dag_kwargs()
        if self.helpers & {"run_date", "timezone"}:
            # ${run.date} is the date in the schedule's timezone, as on every target.
            constants.append(("TIMEZONE", py(self.p.schedule.timezone if self.p.schedule else "UTC")))
        if self.helpers - {"notify_failure", "run_date", "job_name", "secret", "timezone"}:
            # Only when used: `task` is lazy in airflow.sdk and its first use imports ~25 modules, which
            # every forked parse of the DAG processor would pay (see BENCHMARKS.md).
            self.imports.add("from airflow.sdk import task")
        return View(
            header=header,
            docstring=py(spec.description or f"The {self.p.name} pipeline."),
            imports=_sorted_imports(self.imports),
            constants=constants,
            helpers=self.helpers,
            default_args=self.default_args(),
            dag_kwargs=dag_kwargs,
            tasks=tasks,
            edges=edges,
        )

    def default_args(self) -> list[tuple[str, str]]:
        policy = self.default_policy
        out = [("owner", py(self.p.spec.owner or "pipegen"))]
        out += self.policy_kwargs(policy, None)
        return out

    def policy_kwargs(self, policy: RetryPolicy, base: RetryPolicy | None) -> list[tuple[str, str]]:
        """Operator arguments for a retry policy; with base, only what differs from it."""
        out: list[tuple[str, str]] = []

        def differs(attr: str) -> bool:
            return base is None or getattr(policy, attr) != getattr(base, attr)

        if differs("retries"):
            out.append(("retries", py(policy.retries)))
        if differs("retry_delay"):
            out.append(("retry_delay", _timedelta(policy.retry_delay)))
        if differs("backoff"):
            # Airflow 3 takes the backoff as a multiplier; 0 means a constant delay.
            out.append(("retry_exponential_backoff", "2.0" if policy.backoff == "exponential" else "0"))
        if differs("max_retry_delay") and policy.max_retry_delay is not None:
            out.append(("max_retry_delay", _timedelta(policy.max_retry_delay)))
        if differs("timeout") and policy.timeout is not None:
            out.append(("execution_timeout", _timedelta(policy.timeout)))
        return out

    def dag_kwargs(self) -> list[tuple[str, str]]:
        spec = self.p.spec
        sched = self.p.schedule
        out = [("dag_id", py(self.p.name))]
        lines = (spec.description or "").strip().splitlines()
        if lines:
            out.append(("description", py(lines[0].strip())))
            # Airflow reads doc_md as a file path when it ends with '.md': a description is text, always.
            doc = spec.description or ""
            out.append(("doc_md", py(doc + "\n" if doc.endswith(".md") else doc)))
        if sched is None:
            out.append(("schedule", "None"))
        else:
            out.append(("schedule", py(sched.preset or sched.cron)))
            if sched.start is not None:
                self.imports.add("import pendulum")
                s = sched.start
                out.append(("start_date", f"pendulum.datetime({s.year}, {s.month}, {s.day}, tz={py(sched.timezone)})"))
            elif sched.timezone != "UTC":
                self.imports.add("from airflow.sdk import CronTriggerTimetable")
                out[-1] = ("schedule", f"CronTriggerTimetable({py(sched.cron)}, timezone={py(sched.timezone)})")
            out.append(("catchup", py(sched.catchup)))
        if spec.tags:
            out.append(("tags", py(sorted(set(spec.tags)))))
        if spec.params:
            self.imports.add("from airflow.sdk import Param")
            kinds = {bool: "boolean", int: "integer", float: "number", str: "string"}
            params = ", ".join(
                f"{py(k)}: Param({py(v)}, type={py(kinds[type(v)])})" for k, v in sorted(spec.params.items())
            )
            out.append(("params", "{" + params + "}"))
        out.append(("default_args", "default_args"))
        macros = []
        if "import os" in self.imports:
            macros.append('"env_var": lambda name: os.environ.get(name, "")')
        if "run_date" in self.helpers:
            macros.append(f'"{RUN_DATE_MACRO}": _run_date')
        if "secret" in self.helpers:
            macros.append(f'"{SECRET_MACRO}": _secret')
        if "job_name" in self.helpers:
            macros.append(f'"{JOB_NAME_MACRO}": _job_name')
        if macros:
            out.append(("user_defined_macros", "{" + ", ".join(macros) + "}"))
        if spec.notify.on_failure:
            self.helpers.add("notify_failure")
            out.append(("on_failure_callback", "_notify_failure"))
        return out

    # ---- steps -----------------------------------------------------------------------------
    def tasks(self) -> tuple[list[Task], list[str]]:
        tasks: list[Task] = []
        edges: list[str] = []
        first_of: dict[str, str] = {}
        last_of: dict[str, str] = {}
        for step in self.p.steps:
            made = getattr(self, f"_{step.kind}")(step)
            tasks.extend(made)
            first_of[step.name], last_of[step.name] = made[0].var, made[-1].var
            edges.extend(f"{last_of[up]} >> {made[0].var}" for up in step.upstream)
            edges.extend(f"{a.var} >> {b.var}" for a, b in itertools.pairwise(made))
        return tasks, edges

    def _policy(self, step: ResolvedStep) -> list[tuple[str, str]]:
        return self.policy_kwargs(step.policy, self.default_policy)

    def _gate(self, step: ResolvedStep) -> list[Task]:
        assert step.gate is not None
        request = {k: v for k, v in step.gate.items() if k != "wait"}
        # The gate goes to the task as written, untouched by Jinja: the runtime renders its references there,
        # a query's as bind parameters (runtime.sqlparams), and reads ${secret.X} from Variables it masks.
        self.imports.add("from airflow.sdk import literal")
        self.helpers.add("timezone")
        gate_dict = f"literal({py(request)})"
        kwargs = [("task_id", py(step.name)), *self._policy(step)]
        wait = step.gate.get("wait")
        if wait is not None:
            self.helpers.add("wait_for_gate")
            kwargs += [("poke_interval", py(wait["interval_seconds"])), ("timeout", py(wait["timeout_seconds"]))]
            call = "_wait_for_gate.override"
        else:
            self.helpers.add("check_gate")
            call = "_check_gate.override"
        return [Task(var_name(step.name), f"{call}({_kw(kwargs)})", [("gate", gate_dict)])]

    def _start_run(self, step: ResolvedStep) -> Task:
        self.helpers.add("start_run")
        var = var_name(f"pipegen_start_run_{step.name}")
        return Task(
            var,
            f"_start_run.override(task_id={py('pipegen_start_run_' + step.name)})",
            [("step", py(step.name)), ("run_key", py("{{ run_id }}")), ("tracking_uri", "TRACKING_URI")],
        )

    def _train(self, step: ResolvedStep) -> list[Task]:
        run = self._start_run(step)
        return [run, self._command_task(step, run)]

    def _task(self, step: ResolvedStep) -> list[Task]:
        return [self._command_task(step, None)]

    def _command_task(self, step: ResolvedStep, run: Task | None) -> Task:
        backend = step.backend
        assert backend is not None
        return {
            "local": self._local,
            "kubernetes": self._kubernetes,
            "aws_batch": self._batch,
            "sagemaker": self._sagemaker,
        }[backend.type](step, run)

    def _mlflow_env(self, run: Task | None, *, tracking_uri: bool = True) -> list[tuple[str, str]]:
        """The training job's MLflow variables: the run from start_run's XCom, the tracking URI rendered here.

        start_run returns no tracking URI (it may hold ${secret.X} credentials, and XComs are plain data):
        the URI is the spec's, rendered by Airflow for this task, or the worker's MLFLOW_TRACKING_URI.
        """
        if run is None:
            return []
        pull = "{{{{ ti.xcom_pull(task_ids={task_id})[{key}] }}}}"
        task_id = f"'pipegen_start_run_{run.var.removeprefix('pipegen_start_run_').rstrip('_')}'"
        ids = [
            (name, py(pull.format(task_id=task_id, key=f"'{key}'")))
            for name, key in (("MLFLOW_EXPERIMENT_ID", "experiment_id"), ("MLFLOW_RUN_ID", "run_id"))
        ]
        return [("MLFLOW_TRACKING_URI", self.value(self.training_tracking_uri())), *ids] if tracking_uri else ids

    def training_tracking_uri(self) -> str:
        """The tracking URI a training job gets, as a spec string: the spec's, else the worker's MLFLOW_TRACKING_URI."""
        return self.p.spec.mlflow.tracking_uri or "${env.MLFLOW_TRACKING_URI}"

    def _env(self, step: ResolvedStep) -> list[tuple[str, str]]:
        merged = {**getattr(step.backend, "env", {}), **step.body.env}
        return [(py(k), self.value(v)) for k, v in sorted(merged.items())]

    def _local(self, step: ResolvedStep, run: Task | None) -> Task:
        self.helpers.add("run_local")
        command = "[" + ", ".join(self.value(a) for a in step.body.command) + "]"
        env = self._env(step)
        kwargs = [("command", command), ("env", "{" + ", ".join(f"{k}: {v}" for k, v in env) + "}")]
        kwargs.append(("run", run.var if run else "None"))
        working_dir = getattr(step.backend, "working_dir", None)
        kwargs.append(("cwd", self.lit(working_dir) if working_dir else "None"))
        # Rendered in this task (masked when it holds a secret): start_run's XCom does not carry it.
        kwargs.append(("tracking_uri", "TRACKING_URI" if run else py("")))
        return Task(
            var_name(step.name),
            f"_run_local.override({_kw([('task_id', py(step.name)), *self._policy(step)])})",
            kwargs,
        )

    def _kubernetes(self, step: ResolvedStep, run: Task | None) -> Task:
        self.imports.add("from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator")
        backend = step.backend
        assert isinstance(backend, KubernetesBackend)
        body = step.body
        argv = [self.value(a) for a in body.command]
        kwargs: list[tuple[str, str]] = [
            ("task_id", py(step.name)),
            ("name", py(f"{self.p.name}-{step.name.replace('_', '-')}")),
            ("namespace", self.lit(backend.namespace)),
            ("image", self.value(backend.image)),
            ("cmds", f"[{argv[0]}]"),
        ]
        if len(argv) > 1:
            kwargs.append(("arguments", "[" + ", ".join(argv[1:]) + "]"))
        env: list[tuple[str, str]] = []
        secrets: list[str] = []
        merged = {**backend.env, **body.env}
        tracking = parse_template(self.training_tracking_uri()).single_ref
        # A tracking URI that is exactly ${secret.X} reaches the pod as a Kubernetes secret, like any env value.
        secret_uri = run is not None and tracking is not None and tracking.namespace == "secret"
        if secret_uri and "MLFLOW_TRACKING_URI" not in merged:
            merged["MLFLOW_TRACKING_URI"] = self.training_tracking_uri()
        for key, value in sorted(merged.items()):
            ref = parse_template(value).single_ref
            if ref is not None and ref.namespace == "secret":
                self.imports.add("from airflow.providers.cncf.kubernetes.secret import Secret")
                secrets.append(f"Secret({py('env')}, {py(key)}, {py(kubernetes_name(ref.name))}, {py(ref.name)})")
            else:
                env.append((py(key), self.value(value)))
        env = [(py(k), v) for k, v in self._mlflow_env(run, tracking_uri=not secret_uri)] + env
        if env:
            kwargs.append(("env_vars", "{" + ", ".join(f"{k}: {v}" for k, v in env) + "}"))
        if secrets:
            kwargs.append(("secrets", "[" + ", ".join(secrets) + "]"))
        if backend.service_account:
            kwargs.append(("service_account_name", self.lit(backend.service_account)))
        if backend.node_selector:
            kwargs.append(("node_selector", self.lit_dict(backend.node_selector)))
        resources = body.resources
        if resources is not None:
            self.imports.add("from kubernetes.client import models as k8s")
            requests: dict[str, str] = {}
            limits: dict[str, str] = {}
            if resources.cpu is not None:
                requests["cpu"] = kubernetes_cpu(resources.cpu)
            if resources.memory is not None:
                requests["memory"] = limits["memory"] = resources.memory
            if resources.gpu:
                limits["nvidia.com/gpu"] = str(resources.gpu)
            kwargs.append(
                ("container_resources", f"k8s.V1ResourceRequirements(requests={py(requests)}, limits={py(limits)})")
            )
        if self.options.kubernetes_conn_id != "kubernetes_default":
            kwargs.append(("kubernetes_conn_id", py(self.options.kubernetes_conn_id)))
        kwargs += [("get_logs", "True"), ("on_finish_action", py("delete_pod")), *self._policy(step)]
        return Task(var_name(step.name), "KubernetesPodOperator", kwargs)

    def _batch(self, step: ResolvedStep, run: Task | None) -> Task:
        self.imports.add("from airflow.providers.amazon.aws.operators.batch import BatchOperator")
        backend = step.backend
        assert isinstance(backend, AwsBatchBackend)
        body = step.body
        env = [(py(k), v) for k, v in self._mlflow_env(run)] + self._env(step)
        overrides: list[str] = [f"{py('command')}: [" + ", ".join(self.value(a) for a in body.command) + "]"]
        if env:
            overrides.append(
                f"{py('environment')}: [" + ", ".join(f"{{'name': {k}, 'value': {v}}}" for k, v in env) + "]"
            )
        requirements = batch_resources(body.resources)
        if requirements:
            overrides.append(
                f"{py('resourceRequirements')}: " + py([{"type": t, "value": v} for t, v in requirements.items()])
            )
        kwargs = [
            ("task_id", py(step.name)),
            ("job_name", py(f"{self.p.name}-{step.name}")),
            ("job_queue", self.lit(backend.job_queue)),
            ("job_definition", self.lit(backend.job_definition)),
            ("container_overrides", "{" + ", ".join(overrides) + "}"),
        ]
        if backend.region:
            kwargs.append(("region_name", self.lit(backend.region)))
        if self.options.aws_conn_id != "aws_default":
            kwargs.append(("aws_conn_id", py(self.options.aws_conn_id)))
        # BatchOperator (amazon 9.39) terminates its job in on_kill, which Airflow calls on execution_timeout
        # and when the task is killed; it submits a new job on every try, so a retry after a worker died
        # does not find the job the earlier try submitted: attemptDurationSeconds bounds that job.
        if step.policy.timeout is not None:
            # Batch itself ends the job at the step's timeout (at least 60 s, Batch's minimum), even when the
            # worker that would have terminated it (on_kill, on execution_timeout) is gone.
            kwargs.append(("submit_job_timeout", py(max(BATCH_MIN_TIMEOUT, step.policy.timeout))))
        kwargs += [("awslogs_enabled", "True"), *self._policy(step)]
        return Task(var_name(step.name), "BatchOperator", kwargs)

    def _sagemaker(self, step: ResolvedStep, run: Task | None) -> Task:
        self.imports.add("from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator")
        backend = step.backend
        assert isinstance(backend, SageMakerBackend)
        body = step.body
        argv = [self.value(a) for a in body.command]
        env = [(py(k), v) for k, v in self._mlflow_env(run)] + self._env(step)
        # SageMakerTrainingOperator (amazon 9.39) has no on_kill: a timed-out or killed task leaves the job to
        # StoppingCondition.MaxRuntimeInSeconds (the step's timeout). A retry finds the name taken and, with
        # its defaults (check_if_job_exists, action_if_job_exists="timestamp"), starts a suffixed job.
        # Training job names are unique per account: the runtime derives one from the run id and the step
        # (as every target does), defined also for a run without a logical date, where `ts_nodash` is not.
        self.helpers.add("job_name")
        job = f"{{{{ {JOB_NAME_MACRO}({jinja_string_literal(f'{self.p.name}-{step.name}')}, run_id) }}}}"
        algorithm = (
            f"{{'TrainingImage': {self.value(backend.image)}, 'TrainingInputMode': 'File', "
            f"'ContainerEntrypoint': [{argv[0]}], 'ContainerArguments': [{', '.join(argv[1:])}]}}"
        )
        config = [
            ("TrainingJobName", py(job)),
            ("AlgorithmSpecification", algorithm),
            ("RoleArn", self.lit(backend.role_arn)),
            (
                "ResourceConfig",
                self.literal(
                    {
                        "InstanceType": backend.instance_type,
                        "InstanceCount": backend.instance_count,
                        "VolumeSizeInGB": self.options.sagemaker_volume_gb,
                    }
                ),
            ),
            ("OutputDataConfig", f"{{'S3OutputPath': {self.value(backend.output_path)}}}"),
            ("StoppingCondition", py({"MaxRuntimeInSeconds": step.policy.timeout or 86400})),
        ]
        if env:
            config.append(("Environment", "{" + ", ".join(f"{k}: {v}" for k, v in env) + "}"))
        kwargs = [
            ("task_id", py(step.name)),
            ("config", "{" + ", ".join(f"{py(k)}: {v}" for k, v in config) + "}"),
            ("wait_for_completion", "True"),
        ]
        if backend.region:
            kwargs.append(("region_name", self.lit(backend.region)))
        if self.options.aws_conn_id != "aws_default":
            kwargs.append(("aws_conn_id", py(self.options.aws_conn_id)))
        kwargs += self._policy(step)
        return Task(var_name(step.name), "SageMakerTrainingOperator", kwargs)

    def _evaluate(self, step: ResolvedStep) -> list[Task]:
        body = step.body
        helper = "evaluate_or_skip" if body.on_fail == "skip" else "evaluate_or_fail"
        self.helpers.add(helper)
        champion = self.literal(step.champion)
        kwargs = [
            ("run", var_name(f"pipegen_start_run_{body.run_of}")),
            ("thresholds", self.literal(list(body.thresholds))),
            ("champion", champion),
            ("tracking_uri", "TRACKING_URI"),
        ]
        return [
            Task(
                var_name(step.name),
                f"_{helper}.override({_kw([('task_id', py(step.name)), *self._policy(step)])})",
                kwargs,
            )
        ]

    def _promote(self, step: ResolvedStep) -> list[Task]:
        self.helpers.add("promote")
        body = step.body
        champion = self.literal(step.champion)
        kwargs = [
            ("run", var_name(f"pipegen_start_run_{body.run_of}")),
            ("model", self.literal(body.model)),
            ("alias", self.literal(body.alias)),
            ("artifact", self.lit(body.artifact)),
            ("champion", champion),
            ("thresholds", self.literal(list(step.judged_by))),
            ("webhooks", "[" + ", ".join(self.value(n.webhook) for n in body.notify) + "]"),
            ("tracking_uri", "TRACKING_URI"),
        ]
        return [
            Task(
                var_name(step.name),
                f"_promote.override({_kw([('task_id', py(step.name)), *self._policy(step)])})",
                kwargs,
            )
        ]

    def failure_webhooks(self) -> str:
        return "[" + ", ".join(self.value(n.webhook) for n in self.p.spec.notify.on_failure) + "]"


def _kw(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{k}={v}" for k, v in pairs)


def _sorted_imports(lines: set[str]) -> list[str]:
    """Imports grouped like isort: stdlib, then third party; `from x import a` lines merged."""
    merged: dict[str, set[str]] = {}
    plain_imports: set[str] = set()
    for line in lines:
        if line.startswith("from "):
            module, names = line[5:].split(" import ")
            merged.setdefault(module, set()).update(n.strip() for n in names.split(","))
        else:
            plain_imports.add(line)
    stdlib = sorted(i for i in plain_imports if i in ("import os",)) + sorted(
        f"from {m} import {', '.join(sorted(n))}" for m, n in merged.items() if m == "datetime"
    )
    third = sorted(i for i in plain_imports if i not in ("import os",)) + sorted(
        f"from {m} import {', '.join(sorted(n, key=lambda x: (x.lower(), x)))}"
        for m, n in merged.items()
        if m != "datetime"
    )
    return [*stdlib, "", *third]
