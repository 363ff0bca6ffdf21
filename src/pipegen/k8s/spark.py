"""A Spark Operator `SparkApplication` (sparkoperator.k8s.io/v1beta2) for a step on a `spark` backend with
`platform: kubernetes`: the step's command is [application, *args], the driver and executors are pods.

Fields as the operator's API defines them (kubeflow/spark-operator api/v1beta2/sparkapplication_types.go); tests
validate the result against the published models (kubeflow-spark-api) with unknown keys refused.
"""

from __future__ import annotations

from typing import Any

from pipegen.k8s.pods import StepObject, env_entries
from pipegen.resolve import ResolvedStep
from pipegen.spec import SparkBackend

API_VERSION = "sparkoperator.k8s.io/v1beta2"
KIND = "SparkApplication"
# The finished object (its status, the driver pod and so its log) is kept this long, then the operator deletes it.
TIME_TO_LIVE_SECONDS = 86400
# status.applicationState.state: what the orchestrator waits for. With restartPolicy Never the operator ends in
# COMPLETED, FAILED or SUBMISSION_FAILED (the *_ING states and PENDING_RERUN lead to these).
SUCCEEDED_STATES = ("COMPLETED",)
FAILED_STATES = ("FAILED", "SUBMISSION_FAILED")


def application_type(application: str) -> str:
    """Python for a .py application, R for .R; else a JVM application, whose main_class (or its jar's manifest)
    names the entry point: Scala and Java run alike in the operator (both spark-submit --class)."""
    lowered = application.lower()
    if lowered.endswith(".py"):
        return "Python"
    if lowered.endswith(".r"):
        return "R"
    return "Scala"


def spark_application(step: ResolvedStep, made: StepObject) -> dict[str, Any]:
    """The SparkApplication running this step once: the orchestrator retries (restartPolicy Never)."""
    backend = step.backend
    assert isinstance(backend, SparkBackend) and backend.kubernetes is not None, backend
    k8s = backend.kubernetes
    values = made.values
    application, *arguments = step.body.command
    spec: dict[str, Any] = {
        "type": application_type(application),
        "mode": "cluster",
        "image": values.text(k8s.image),
        "sparkVersion": k8s.spark_version,
        # The application and its arguments become the driver container's args: the kubelet reads $(VAR) there.
        "mainApplicationFile": values.pod_text(application),
        "restartPolicy": {"type": "Never"},
        "timeToLiveSeconds": TIME_TO_LIVE_SECONDS,
    }
    if backend.main_class:
        spec["mainClass"] = backend.main_class
    if arguments:
        spec["arguments"] = [values.pod_text(a) for a in arguments]
    if backend.conf:
        # spark-submit --conf: written to the driver's properties file, read by Spark alone.
        spec["sparkConf"] = {k: values.text(v) for k, v in sorted(backend.conf.items())}
    deps = {
        key: [values.text(item) for item in items]
        for key, items in (("jars", backend.jars), ("packages", backend.packages), ("pyFiles", backend.py_files))
        if items
    }
    if deps:
        spec["deps"] = deps
    driver = backend.driver
    executors = backend.executors
    spec["driver"] = _pod(driver.cores if driver else None, driver.memory if driver else None)
    if k8s.service_account:
        spec["driver"]["serviceAccount"] = k8s.service_account
    spec["executor"] = _pod(executors.cores if executors else None, executors.memory if executors else None)
    if executors is not None and executors.instances is not None:
        spec["executor"]["instances"] = executors.instances
    env = dict(step.body.env)
    driver_env = env_entries(env, values, made.run_env)
    if driver_env:
        spec["driver"]["env"] = driver_env
    executor_env = env_entries(env, values)
    if executor_env:
        spec["executor"]["env"] = executor_env
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": made.metadata(k8s.namespace), "spec": spec}


def _pod(cores: int | None, memory: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if cores is not None:
        out["cores"] = cores
    if memory is not None:
        out["memory"] = memory
    return out
