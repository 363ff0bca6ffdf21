"""The service request of a Spark job on AWS (EMR, EMR Serverless, EMR on EKS, Glue) as Step Functions sends it.

One function builds it from a step's values, so a request reads the same however it is made: the compiler
calls it for a step whose values are all literal (the definition holds the request), the `prepare` action (the
runtime Lambda) for a step whose values it renders or whose MLflow run it starts (the Task reads its result).

Where each platform takes what (the env is the step's, plus a train step's MLFLOW_* variables):
- emr: a `command-runner.jar` step running `spark-submit --master yarn --deploy-mode cluster ...`: the env reaches
  the driver as spark.yarn.appMasterEnv.* (runtime.spark_jobs builds the same argv as `pipegen run`).
- emr_serverless, emr_on_eks: the job driver's EntryPoint/EntryPointArguments; every setting (conf, driver and
  executor sizes, py_files/jars/packages as spark.submit.pyFiles/spark.jars/spark.jars.packages, the env as
  spark.emr-serverless.driverEnv.* / spark.kubernetes.driverEnv.*) as `spark-defaults` properties, a map: no
  value is ever split on spaces as SparkSubmitParameters' text would be. Only `--class` is a parameter.
- glue: the run's Arguments: the step's `--key value` pairs, py_files/jars/main_class as Glue's --extra-py-files,
  --extra-jars and --class, and the env as `--NAME value` (a Glue run has no environment of its own).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipegen.runtime.spark_jobs import spark_submit_argv

DRIVER_ENV = {"emr_serverless": "spark.emr-serverless.driverEnv.", "emr_on_eks": "spark.kubernetes.driverEnv."}
SIZES = (
    ("driver", "cores", "spark.driver.cores"),
    ("driver", "memory", "spark.driver.memory"),
    ("executors", "instances", "spark.executor.instances"),
    ("executors", "cores", "spark.executor.cores"),
    ("executors", "memory", "spark.executor.memory"),
)
FILES = (("py_files", "spark.submit.pyFiles"), ("jars", "spark.jars"), ("packages", "spark.jars.packages"))


def _same(text: str) -> str:
    return text


def spark_request(
    platform: str,
    settings: Mapping[str, Any],
    command: Sequence[str],
    env: Mapping[str, str],
    render: Callable[[str], str] = _same,
) -> dict[str, Any]:
    """The platform's request body (the part Step Functions' Task fills from it) for command = [application, *args].

    settings: the backend's conf, driver, executors, main_class, py_files, jars, packages; render turns each of
    its spec strings (conf values, py_files, jars) into the value the job gets. command and env come rendered.
    """
    conf = {key: render(value) for key, value in (settings.get("conf") or {}).items()}
    py_files = [render(v) for v in settings.get("py_files") or ()]
    jars = [render(v) for v in settings.get("jars") or ()]
    packages = list(settings.get("packages") or ())
    main_class = settings.get("main_class")
    application, arguments = command[0], list(command[1:])
    if platform == "emr":
        argv = spark_submit_argv(
            application=application,
            arguments=arguments,
            master="yarn",
            deploy_mode="cluster",
            conf=conf,
            driver=settings.get("driver"),
            executors=settings.get("executors"),
            main_class=main_class,
            py_files=py_files,
            jars=jars,
            packages=packages,
            environment=env,
            spark_submit="spark-submit",
        )
        return {"Args": argv}
    if platform in DRIVER_ENV:
        properties = dict(conf)
        for part, key, name in SIZES:
            size = (settings.get(part) or {}).get(key)
            if size is not None:
                properties[name] = str(size)
        for items, name in zip((py_files, jars, packages), (n for _, n in FILES), strict=True):
            if items:
                properties[name] = ",".join(items)
        properties.update({DRIVER_ENV[platform] + name: value for name, value in env.items()})
        out: dict[str, Any] = {"EntryPoint": application}
        if arguments:
            out["EntryPointArguments"] = arguments
        if main_class:
            out["SparkSubmitParameters"] = f"--class {main_class}"
        if properties:
            out["Properties"] = dict(sorted(properties.items()))
        return out
    if platform == "glue":
        # The compiler checked the arguments are `--key value` pairs.
        pairs = dict(zip(arguments[0::2], arguments[1::2], strict=True))
        for items, key in ((py_files, "--extra-py-files"), (jars, "--extra-jars")):
            if items:
                pairs[key] = ",".join(items)
        if main_class:
            pairs["--class"] = main_class
        pairs.update({f"--{name}": value for name, value in env.items()})
        return {"Arguments": dict(sorted(pairs.items()))}
    raise ValueError(f"unknown Spark platform '{platform}'")


def _minutes(seconds: float | None) -> int | None:
    return None if seconds is None else max(1, math.ceil(seconds / 60))


def spark_service_request(
    platform: str, ids: Mapping[str, Any], name: str, timeout_seconds: float | None, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """The whole service request (the Task's parameters), in the order AWS documents them.

    ids: the platform's key of the backend (cluster_id, application_id, ...); name: the step's or job run's name;
    fields: spark_request's body (values, or the Step Functions slots that read them).
    """
    timeout = _minutes(timeout_seconds)
    if platform == "emr":
        jar = {"Jar": "command-runner.jar", "Args": fields["Args"]}
        # CONTINUE: a failed step fails this Task (and its Retry) but leaves the cluster to its other work.
        step_config = {"Name": name, "ActionOnFailure": "CONTINUE", "HadoopJarStep": jar}
        return {"ClusterId": ids["cluster_id"], "Step": step_config}
    if platform == "glue":
        params: dict[str, Any] = {"JobName": ids["job_name"], "Arguments": fields["Arguments"]}
        if timeout is not None:
            params["Timeout"] = timeout
        return params
    driver = {k: fields[k] for k in ("EntryPoint", "EntryPointArguments", "SparkSubmitParameters") if k in fields}
    overrides = (
        {"ApplicationConfiguration": [{"Classification": "spark-defaults", "Properties": fields["Properties"]}]}
        if "Properties" in fields
        else None
    )
    if platform == "emr_serverless":
        params = {
            "ApplicationId": ids["application_id"],
            "ExecutionRoleArn": ids["execution_role_arn"],
            "Name": name,
            "JobDriver": {"SparkSubmit": driver},
        }
        if overrides is not None:
            params["ConfigurationOverrides"] = overrides
        if timeout is not None:
            params["ExecutionTimeoutMinutes"] = timeout
        return params
    if platform != "emr_on_eks":
        raise ValueError(f"unknown Spark platform '{platform}'")
    # The API's job name: at most 64 of [.-_/#A-Za-z0-9] (a pipeline and step name hold only those).
    params = {
        "Name": name[:64],
        "VirtualClusterId": ids["virtual_cluster_id"],
        "ExecutionRoleArn": ids["execution_role_arn"],
        "ReleaseLabel": ids["release_label"],
        "JobDriver": {"SparkSubmitJobDriver": driver},
    }
    if overrides is not None:
        params["ConfigurationOverrides"] = overrides
    return params
