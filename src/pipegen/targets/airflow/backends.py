"""Steps on backends: a local subprocess task, KubernetesPodOperator, BatchOperator, SageMakerTrainingOperator;
Spark and Ray in their own modules (spark, ray)."""

from __future__ import annotations

from pipegen.expr import parse_template
from pipegen.render import py
from pipegen.resolve import ResolvedStep
from pipegen.spec import AwsBatchBackend, KubernetesBackend, SageMakerBackend
from pipegen.targets.airflow.distributed import placement_kwargs
from pipegen.targets.airflow.ray import ray_task
from pipegen.targets.airflow.spark import SparkTasks
from pipegen.targets.airflow.values import ValueLowering
from pipegen.targets.airflow.view import Task, var_name
from pipegen.targets.airflow_expr import JOB_NAME_MACRO, jinja_string_literal
from pipegen.targets.base import kubernetes_name
from pipegen.targets.resources import batch_resources, kubernetes_cpu

# AWS Batch's smallest attemptDurationSeconds.
BATCH_MIN_TIMEOUT = 60


class BackendLowering(ValueLowering):
    """The operator for a task or train step, by its backend's type."""

    def _command_task(self, step: ResolvedStep, run: Task | None) -> Task:
        backend = step.backend
        assert backend is not None
        if backend.type == "spark":
            return SparkTasks(self, step, run).task()
        if backend.type == "ray":
            return ray_task(self, step, run)
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
            var_name(step.name), "_run_local", kwargs, options=[("task_id", py(step.name)), *self._policy(step)]
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
            # Not a templated field: the name as it is (literal() would reach the pod spec as an object).
            kwargs.append(("service_account_name", py(backend.service_account)))
        if backend.node_selector:
            kwargs.append(("node_selector", self.lit_dict(backend.node_selector)))
        kwargs += placement_kwargs(self, backend)
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
