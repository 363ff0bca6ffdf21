"""Spark steps on Airflow: SparkSubmitOperator (platform submit) and the amazon provider's EMR, EMR Serverless,
EMR on EKS and Glue operators, each waiting for its job.

The AWS requests have the shapes of the services' APIs, as the Step Functions target sends them: EMR's
`command-runner.jar spark-submit --master yarn --deploy-mode cluster ...` step (the argv of runtime.spark_jobs),
EMR Serverless' and EMR on EKS' job driver with every setting as `spark-defaults` properties, Glue's run arguments.
A step's environment (a train step's MLflow run too) reaches the driver: spark-submit's own environment (client
mode) or the cluster's driver-environment settings, and `--NAME value` run arguments on Glue.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import parse_template
from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.runtime.spark_aws import DRIVER_ENV, SIZES
from pipegen.runtime.spark_jobs import driver_env_conf, is_local_master
from pipegen.spec import SparkBackend
from pipegen.targets.airflow.view import Task, var_name
from pipegen.targets.airflow_expr import jinja_string_literal

if TYPE_CHECKING:
    from pipegen.targets.airflow.backends import BackendLowering

SUBMIT = "airflow.providers.apache.spark.operators.spark_submit"
EMR = "airflow.providers.amazon.aws.operators.emr"
GLUE = "airflow.providers.amazon.aws.operators.glue"
# How often the AWS operators poll their job, in seconds (their own defaults), and how long a job without a
# step timeout may run before the operator gives up waiting: the longest timeout a spec may set (365 days).
POLL_SECONDS = 30
UNBOUNDED_SECONDS = 365 * 86400


def conn_id(backend_name: str) -> str:
    """The Airflow connection that holds a spark-submit backend's master (SparkSubmitOperator reads it from there)."""
    return "pipegen_spark_" + backend_name.replace("-", "_")


def connection_value(backend: SparkBackend) -> str:
    """The connection as Airflow reads it from AIRFLOW_CONN_<ID> (JSON): the master as host, the deploy mode."""
    import json

    template = parse_template(backend.master)  # literal text (checks): `$${` is a `${`
    master = template.literal_text() if template.is_literal else backend.master
    return json.dumps({"conn_type": "spark", "host": master, "extra": {"deploy-mode": backend.deploy_mode}})


def connections(pipeline: Pipeline) -> list[str]:
    """`AIRFLOW_CONN_<ID>=<value>` (shell-quoted, comment text) of every Spark connection the DAG uses, for its header."""
    import shlex

    from pipegen.render import comment_text

    out = set()
    for step in pipeline.steps:
        backend = step.backend
        if isinstance(backend, SparkBackend) and backend.platform == "submit" and step.backend_name:
            name = "AIRFLOW_CONN_" + conn_id(step.backend_name).upper()
            out.add(comment_text(f"{name}={shlex.quote(connection_value(backend))}"))
    return sorted(out)


def checks(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """What Airflow cannot take in a spark backend: a master that is not literal text, one connection for two
    backends, a secret in a setting (it would be a plain value in the job), Glue settings a run cannot change."""
    ids: dict[str, str] = {}
    for name, backend in sorted(pipeline.spec.backends.items()):
        if not isinstance(backend, SparkBackend):
            continue
        at = ("backends", name)
        if backend.platform == "submit":
            if parse_template(backend.master).refs:
                yield diag(
                    "PG602",
                    f"target 'airflow' takes the master of spark backend '{name}' from an Airflow connection, "
                    "which cannot hold ${...} references",
                    pipeline.source_map.value((*at, "master")),
                    f"write the master as plain text (the DAG reads it from connection '{conn_id(name)}')",
                )
            other = ids.setdefault(conn_id(name), name)
            if other != name:
                yield diag(
                    "PG602",
                    f"target 'airflow' names the Spark connection of backends '{other}' and '{name}' alike "
                    f"('{conn_id(name)}')",
                    pipeline.source_map.key((*at,)),
                    "rename one of the backends ('-' and '_' are the same in a connection id)",
                )
        texts: list[tuple[tuple[str, str | int], str]] = [(("conf", k), v) for k, v in backend.conf.items()]
        texts += [(("py_files", i), v) for i, v in enumerate(backend.py_files)]
        texts += [(("jars", i), v) for i, v in enumerate(backend.jars)]
        for where, text in texts:
            if any(r.namespace == "secret" for r in parse_template(text).refs):
                yield diag(
                    "PG602",
                    f"target 'airflow' cannot pass a secret in the {where[0]} of spark backend '{name}': it would be "
                    "a plain value on the job's command line or in its request",
                    pipeline.source_map.value((*at, *where)),
                    "give the job its credentials through the cluster or the job's role",
                )
        if backend.platform == "glue":
            for key in ("conf", "driver", "executors", "packages"):
                if getattr(backend, key):
                    yield diag(
                        "PG602",
                        f"target 'airflow' cannot set '{key}' of spark backend '{name}' on platform glue: a Glue run "
                        "takes only arguments",
                        pipeline.source_map.key((*at, key)),
                        "set it on the Glue job itself (worker type, number of workers, job parameters)",
                    )
    for step in pipeline.steps:
        if isinstance(step.backend, SparkBackend) and step.backend.platform == "glue":
            args = step.body.command[1:]
            bad = next(
                (i for i in range(0, len(args), 2) if not args[i].startswith("--") or parse_template(args[i]).refs),
                None,
            )
            if bad is not None or len(args) % 2:
                index = 1 + (bad if bad is not None else len(args) - 1)
                yield diag(
                    "PG602",
                    f"target 'airflow' passes the arguments of Glue step '{step.name}' as the run's `--key value` "
                    "arguments; these are not pairs",
                    pipeline.locate(step, step.kind, "command", index),
                    "write the command as [script, --key, value, ...] with plain keys (the script must be the Glue job's)",
                )


def _guard_ext(text: str, extensions: tuple[str, ...]) -> str:
    """Jinja text that Airflow will not read as a template file's name (it does for strings ending with the
    operator's template_ext): the last character as a Jinja string literal; it renders to the same text."""
    if text.endswith(extensions):
        return text[:-1] + "{{ " + jinja_string_literal(text[-1]) + " }}"
    return text


def _source(text: str, extensions: tuple[str, ...] = ()) -> str:
    """Python source of Jinja template text."""
    return py(_guard_ext(text, extensions))


class SparkTasks:
    """One Spark step's task, by its platform."""

    def __init__(self, lo: BackendLowering, step: ResolvedStep, run: Task | None) -> None:
        self.lo = lo
        self.step = step
        self.run = run
        backend = step.backend
        assert isinstance(backend, SparkBackend)
        self.backend = backend
        self.body = step.body

    def task(self) -> Task:
        return {
            "submit": self.submit,
            "emr": self.emr,
            "emr_serverless": self.emr_serverless,
            "emr_on_eks": self.emr_on_eks,
            "glue": self.glue,
        }[self.backend.platform]()

    # ---- shared -----------------------------------------------------------------------------
    def env(self) -> list[tuple[str, str]]:
        """The driver's environment as (name, Jinja text): a train step's MLflow run, then the step's env."""
        out: list[tuple[str, str]] = []
        if self.run is not None:
            task_id = f"'pipegen_start_run_{self.step.name}'"
            out.append(("MLFLOW_TRACKING_URI", self.lo.jinja(self.lo.training_tracking_uri())))
            out += [
                (name, f"{{{{ ti.xcom_pull(task_ids={task_id})['{key}'] }}}}")
                for name, key in (("MLFLOW_EXPERIMENT_ID", "experiment_id"), ("MLFLOW_RUN_ID", "run_id"))
            ]
        out += [(name, self.lo.jinja(value)) for name, value in sorted(self.body.env.items())]
        return out

    def command(self) -> tuple[str, list[str]]:
        """The application and its arguments as Jinja text."""
        application, *arguments = (self.lo.jinja(a) for a in self.body.command)
        return application, arguments

    def plain(self, text: str) -> str:
        """A plain spec string (a key, a Maven coordinate) as Jinja text that renders to exactly itself."""
        return self.lo.jinja(text.replace("${", "$${"))

    def conf(self) -> dict[str, str]:
        """The backend's conf as Jinja text (keys are literal: Airflow renders no dict key)."""
        return {key: self.lo.jinja(value) for key, value in sorted(self.backend.conf.items())}

    def files(self) -> list[tuple[str, str, str]]:
        """(spark-submit flag, spark property, comma-joined Jinja text) of py_files, jars and packages."""
        backend = self.backend
        out = []
        for flag, prop, items in (
            ("--py-files", "spark.submit.pyFiles", [self.lo.jinja(f) for f in backend.py_files]),
            ("--jars", "spark.jars", [self.lo.jinja(j) for j in backend.jars]),
            ("--packages", "spark.jars.packages", [self.plain(p) for p in backend.packages]),
        ):
            if items:
                out.append((flag, prop, ",".join(items)))
        return out

    def sizes(self) -> list[tuple[str, str, str]]:
        """(section, key, value) of the driver's and executors' sizes that are set."""
        out = []
        for part, key, _ in SIZES:
            size = getattr(getattr(self.backend, part) or object(), key, None)
            if size is not None:
                out.append((part, key, str(size)))
        return out

    def name(self) -> str:
        return f"{self.lo.p.name}-{self.step.name}"

    def wait_attempts(self) -> int:
        """How many polls the operator's waiter makes: the step's timeout (else the longest a spec allows)."""
        return max(1, math.ceil((self.step.policy.timeout or UNBOUNDED_SECONDS) / POLL_SECONDS))

    def aws_kwargs(self, region: str | None) -> list[tuple[str, str]]:
        out = []
        if region:
            out.append(("region_name", py(region)))
        if self.lo.options.aws_conn_id != "aws_default":
            out.append(("aws_conn_id", py(self.lo.options.aws_conn_id)))
        return out

    def make(self, operator: str, module: str, kwargs: list[tuple[str, str]]) -> Task:
        self.lo.imports.add(f"from {module} import {operator}")
        head = [("task_id", py(self.step.name))]
        return Task(var_name(self.step.name), operator, [*head, *kwargs, *self.lo._policy(self.step)])

    @staticmethod
    def dict_source(items: list[tuple[str, str]], extensions: tuple[str, ...] = ()) -> str:
        return "{" + ", ".join(f"{py(k)}: {_source(v, extensions)}" for k, v in items) + "}"

    @staticmethod
    def list_source(items: list[str], extensions: tuple[str, ...] = ()) -> str:
        return "[" + ", ".join(_source(v, extensions) for v in items) + "]"

    # ---- platforms ---------------------------------------------------------------------------
    def submit(self) -> Task:
        """SparkSubmitOperator: spark-submit on the worker, against the master of the backend's connection."""
        backend = self.backend
        application, arguments = self.command()
        kwargs = [
            ("conn_id", py(conn_id(self.step.backend_name or ""))),
            ("application", _source(application)),
        ]
        if arguments:
            kwargs.append(("application_args", self.list_source(arguments)))
        conf = self.conf()
        # SparkSubmitOperator has no driver_cores: the setting spark-submit's --driver-cores stands for.
        if self.backend.driver is not None and self.backend.driver.cores is not None:
            conf["spark.driver.cores"] = str(self.backend.driver.cores)
        env = self.env()
        # In cluster mode the hook itself turns env_vars into YARN's or Kubernetes' driver-environment settings.
        conf_source = [f"{py(k)}: {_source(v)}" for k, v in sorted(conf.items())]
        if (
            backend.deploy_mode == "client"
            and not {"spark.pyspark.python", "spark.pyspark.driver.python"} & conf.keys()
        ):
            # As the runtime does: the PySpark driver (and with a local master, its workers) run the worker's own
            # Python, where pipegen's runtime and the job's libraries are, not the first `python3` on PATH.
            self.lo.imports.add("import sys")
            self.lo.imports.add("from airflow.sdk import literal")
            key = "spark.pyspark.python" if is_local_master(backend.master) else "spark.pyspark.driver.python"
            conf_source.append(f"{py(key)}: literal(sys.executable)")
            conf_source.sort()
        if conf_source:
            kwargs.append(("conf", "{" + ", ".join(conf_source) + "}"))
        if env:
            kwargs.append(("env_vars", self.dict_source(env)))
        sizes = {(part, key): size for part, key, size in self.sizes()}
        for (part, key), arg in (
            (("driver", "memory"), "driver_memory"),
            (("executors", "instances"), "num_executors"),
            (("executors", "cores"), "executor_cores"),
            (("executors", "memory"), "executor_memory"),
        ):
            if (part, key) in sizes:
                size = sizes[(part, key)]
                kwargs.append((arg, size if key in ("instances", "cores") else py(size)))
        if backend.main_class:
            kwargs.append(("java_class", py(backend.main_class)))
        for flag, _, joined in self.files():
            kwargs.append((flag.strip("-").replace("-", "_"), _source(joined)))
        kwargs += [("name", py(self.name())), ("deploy_mode", py(backend.deploy_mode))]
        return self.make("SparkSubmitOperator", SUBMIT, kwargs)

    def emr_args(self) -> list[str]:
        """`spark-submit --master yarn --deploy-mode cluster ...` as runtime.spark_jobs orders it, in Jinja text."""
        backend = self.backend
        application, arguments = self.command()
        settings = {**self.conf(), **driver_env_conf("yarn", "cluster", dict(self.env()))}
        argv = ["spark-submit", "--master", "yarn", "--deploy-mode", "cluster"]
        for key, value in sorted(settings.items()):
            argv += ["--conf", f"{self.plain(key)}={value}"]
        for part, key, size in self.sizes():
            argv += [f"--{part.removesuffix('s')}-{key}" if part == "driver" else _executor_flag(key), size]
        if backend.main_class:
            argv += ["--class", backend.main_class]
        for flag, _, joined in self.files():
            argv += [flag, joined]
        return [*argv, application, *arguments]

    def emr(self) -> Task:
        """EmrAddStepsOperator: a command-runner.jar step on the cluster, waited for."""
        assert self.backend.emr is not None
        step = (
            f"{{'Name': {py(self.name())}, 'ActionOnFailure': 'CONTINUE', 'HadoopJarStep': "
            f"{{'Jar': 'command-runner.jar', 'Args': {self.list_source(self.emr_args(), ('.json',))}}}}}"
        )
        # EmrAddStepsOperator has no on_kill: a task ended by its execution_timeout leaves the step to the cluster.
        kwargs = [
            ("job_flow_id", py(self.backend.emr.cluster_id)),
            ("steps", f"[{step}]"),
            ("wait_for_completion", "True"),
            ("waiter_delay", py(POLL_SECONDS)),
            ("waiter_max_attempts", py(self.wait_attempts())),
            *self.aws_kwargs(self.backend.emr.region),
        ]
        return self.make("EmrAddStepsOperator", EMR, kwargs)

    def properties(self, platform: str) -> list[tuple[str, str]]:
        """Every setting as spark-defaults properties, the driver's environment included."""
        props = dict(self.conf())
        for part, key, size in self.sizes():
            props[next(p for s, k, p in SIZES if (s, k) == (part, key))] = size
        for _, prop, joined in self.files():
            props[prop] = joined
        props.update({DRIVER_ENV[platform] + name: value for name, value in self.env()})
        return sorted(props.items())

    def job_driver(self, key: str, platform: str) -> tuple[str, str]:
        """(jobDriver, configurationOverrides) of an EMR Serverless or EMR on EKS job run, as Python source."""
        application, arguments = self.command()
        entry = [f"'entryPoint': {_source(application)}"]
        if arguments:
            entry.append(f"'entryPointArguments': {self.list_source(arguments)}")
        if self.backend.main_class:
            entry.append(f"'sparkSubmitParameters': {py('--class ' + self.backend.main_class)}")
        driver = f"{{{py(key)}: {{{', '.join(entry)}}}}}"
        props = self.properties(platform)
        overrides = (
            f"{{'applicationConfiguration': [{{'classification': 'spark-defaults', 'properties': "
            f"{self.dict_source(props)}}}]}}"
        )
        return driver, overrides if props else "{}"

    def emr_serverless(self) -> Task:
        """EmrServerlessStartJobOperator: a job run on the application, waited for (cancelled when the task is killed)."""
        platform = self.backend.emr_serverless
        assert platform is not None
        driver, overrides = self.job_driver("sparkSubmit", "emr_serverless")
        kwargs = [
            ("application_id", py(platform.application_id)),
            ("execution_role_arn", py(platform.execution_role_arn)),
            ("job_driver", driver),
            ("configuration_overrides", overrides),
            ("name", py(self.name())),
        ]
        if self.step.policy.timeout is not None:
            # The service itself ends the run at the step's timeout, even if the worker that would cancel it is gone.
            kwargs.append(("config", py({"executionTimeoutMinutes": math.ceil(self.step.policy.timeout / 60)})))
        kwargs += [
            ("wait_for_completion", "True"),
            ("waiter_delay", py(POLL_SECONDS)),
            ("waiter_max_attempts", py(self.wait_attempts())),
            *self.aws_kwargs(platform.region),
        ]
        return self.make("EmrServerlessStartJobOperator", EMR, kwargs)

    def emr_on_eks(self) -> Task:
        """EmrContainerOperator: a job run on the virtual cluster, polled until it ends (cancelled on kill)."""
        platform = self.backend.emr_on_eks
        assert platform is not None
        driver, overrides = self.job_driver("sparkSubmitJobDriver", "emr_on_eks")
        kwargs = [
            ("name", py(self.name())),
            ("virtual_cluster_id", py(platform.virtual_cluster_id)),
            ("execution_role_arn", py(platform.execution_role_arn)),
            ("release_label", py(platform.release_label)),
            ("job_driver", driver),
            ("configuration_overrides", overrides),
            ("wait_for_completion", "True"),
            ("poll_interval", py(POLL_SECONDS)),
            ("max_polling_attempts", py(self.wait_attempts())),
            *self.aws_kwargs(platform.region),
        ]
        return self.make("EmrContainerOperator", EMR, kwargs)

    def glue(self) -> Task:
        """GlueJobOperator: a run of the existing job with the step's `--key value` arguments, waited for."""
        platform = self.backend.glue
        assert platform is not None
        # The names are literal `--key`s (checks); as dict keys Airflow does not render them.
        args = self.body.command[1:]
        pairs = {
            parse_template(k).literal_text(): self.lo.jinja(v) for k, v in zip(args[0::2], args[1::2], strict=True)
        }
        backend = self.backend
        for items, key in (
            ([self.lo.jinja(f) for f in backend.py_files], "--extra-py-files"),
            ([self.lo.jinja(j) for j in backend.jars], "--extra-jars"),
        ):
            if items:
                pairs[key] = ",".join(items)
        if backend.main_class:
            pairs["--class"] = backend.main_class
        # A Glue run has no environment of its own: the env (and a train step's MLflow run) are `--NAME value`.
        pairs.update({f"--{name}": value for name, value in self.env()})
        kwargs = [("job_name", py(platform.job_name))]
        if pairs:
            kwargs.append(("script_args", self.dict_source(sorted(pairs.items()))))
        if self.step.policy.timeout is not None:
            kwargs.append(("run_job_kwargs", py({"Timeout": max(1, math.ceil(self.step.policy.timeout / 60))})))
        kwargs += [
            ("wait_for_completion", "True"),
            ("stop_job_run_on_kill", "True"),
            *self.aws_kwargs(platform.region),
        ]
        return self.make("GlueJobOperator", GLUE, kwargs)


def _executor_flag(key: str) -> str:
    return {"instances": "--num-executors", "cores": "--executor-cores", "memory": "--executor-memory"}[key]
