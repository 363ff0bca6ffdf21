"""One pipeline step described as JSON, run where the orchestrator runs it (KFP components, the Lambda handler)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.redacted_output import run_redacted
from pipegen.runtime.templating import Values

# A training run's tracking URI as rendered here, or a function rendering it when the run is ended.
TrackingUri = str | None | Callable[[], str | None]


def decode(spec_json: str) -> dict[str, Any]:
    """The step spec from its JSON text (targets escape braces as \\u007b so no launcher rewrites them)."""
    value = json.loads(spec_json)
    assert isinstance(value, dict)
    return value


def run_date_from(schedule_time: str, timezone: str = "UTC") -> str:
    """The logical date (${run.date}): the scheduled time's date in the schedule's timezone, else today there.

    schedule_time is an ISO time (orchestrators pass UTC, e.g. `2026-03-08T10:00:00Z`); a placeholder
    that was not substituted, an empty string or the epoch (KFP's value for a manual run) means "now".
    """
    zone = ZoneInfo(timezone)
    text = schedule_time.strip()
    when = datetime.now(UTC)
    if len(text) >= 10 and text[:4].isdigit() and not text.startswith("1970"):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text[:10]
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return when.astimezone(zone).date().isoformat()


def run_step(
    kind: str,
    spec_json: str | dict[str, Any],
    *,
    params: dict[str, Any],
    run_id: str,
    run_date: str = "",
    mlflow_run: dict[str, str] | None = None,
    target: str = "kfp",
    wait_started: str = "",
    retry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one step; returns {"passed": bool, ...} (evaluate may return passed False; other failures raise).

    wait_started: for a waiting gate, when its wait began (epoch seconds, taken before the first attempt), so
    that a retried attempt resumes the wait instead of starting it over. retry: the spec's retry policy
    ({retries, delay_seconds, backoff, max_delay_seconds}) for steps the orchestrator must not retry (a failed
    judgement is final): only infrastructure errors are retried, here (see runtime.retrying).
    """
    from pipegen.runtime.retrying import with_retries

    spec = decode(spec_json) if isinstance(spec_json, str) else spec_json
    return with_retries(lambda: _run(kind, spec, params, run_id, run_date, mlflow_run, target, wait_started), retry)


def _run(
    kind: str,
    spec: dict[str, Any],
    params: dict[str, Any],
    run_id: str,
    run_date: str,
    mlflow_run: dict[str, str] | None,
    target: str,
    wait_started: str,
) -> dict[str, Any]:
    values = Values(params, run_id, run_date or run_date_from(""))
    tracking_uri = values.string(spec.get("tracking_uri", "")) or None
    if kind == "start_run":
        from pipegen.runtime.start_run import start_step_run

        run = start_step_run(spec, target=target, run_key=run_id, tracking_uri=tracking_uri, params=params)
        return {"passed": True, **{k: str(v) for k, v in run.items()}}
    if kind == "gate":
        from pipegen.runtime.gates import run_gate
        from pipegen.runtime.sqlparams import render_gate

        started = float(wait_started) if wait_started else None
        result = run_gate(render_gate(spec["gate"], values), started_at=started)
        if not result["passed"]:
            raise RuntimeFailure(str(result["reason"]))
        return result
    if kind == "gate_check":
        # One check of a waiting gate: the orchestrator owns the waiting (Step Functions' Wait loop).
        from pipegen.runtime.gates import check_gate
        from pipegen.runtime.sqlparams import render_gate

        return check_gate(render_gate(spec["gate"], values))
    if kind == "prepare":
        from pipegen.runtime.prepare import prepare

        return prepare(spec, values, target=target, tracking_uri=tracking_uri)
    if kind == "close_run":
        # The close_run action, with the spec's tracking URI rendered here (${env.X}, ${secret.X}) as for the
        # run's other steps: Step Functions ends the run its `.sync` job left RUNNING (stepfunctions/closing.py).
        from pipegen.runtime.start_run import close_run_action

        assert mlflow_run is not None
        return {"passed": True, **close_run_action(mlflow_run, str(spec["status"]), tracking_uri)}
    if kind == "notify":
        from pipegen.runtime.notify import notify

        webhooks = [values.string(w) for w in spec["webhooks"]]
        return {"passed": True, **notify(webhooks=webhooks, message=spec["message"])}
    if kind in ("local", "aws_batch", "sagemaker", "spark", "ray"):
        env = {k: values.string(v) for k, v in sorted(spec.get("env", {}).items())}
        if mlflow_run:
            from pipegen.runtime.start_run import training_env

            # Rendered here, from this task's own secrets and environment: start_run's result has no URI.
            env.update(training_env(mlflow_run, tracking_uri))
        command = [values.string(a) for a in spec["command"]]
        if kind in ("spark", "ray"):
            return _closing(mlflow_run, tracking_uri, lambda: _cluster_job(kind, spec, values, command, env))
        return _closing(mlflow_run, tracking_uri, lambda: _command(kind, spec, values, command, env))
    if kind == "kubernetes_resource":
        return _closing(mlflow_run, tracking_uri, lambda: _kubernetes_resource(spec, values, mlflow_run))
    if kind == "evaluate":
        from pipegen.runtime.evaluate import evaluate

        assert mlflow_run is not None
        result = evaluate(
            run_id=mlflow_run["run_id"],
            thresholds=spec["thresholds"],
            champion=spec.get("champion"),
            tracking_uri=tracking_uri,
        )
        print("\n".join(result["reasons"]))
        if not result["passed"] and spec.get("on_fail") == "fail":
            raise RuntimeFailure("; ".join(result["reasons"]))
        return result
    if kind == "promote":
        from pipegen.runtime.notify import notify
        from pipegen.runtime.promote import promote

        assert mlflow_run is not None
        result = promote(
            run_id=mlflow_run["run_id"],
            model=spec["model"],
            alias=spec["alias"],
            artifact=values.string(spec["artifact"]),
            champion=spec.get("champion"),
            thresholds=spec.get("thresholds", []),
            tracking_uri=tracking_uri,
        )
        webhooks = [values.string(w) for w in spec.get("webhooks", [])]
        if webhooks:
            notify(webhooks=webhooks, message={"pipeline": spec["pipeline"], "event": "promoted", **result})
        return {"passed": True, **result}
    raise ValueError(f"unknown step kind '{kind}'")


def step_action(
    *,
    kind: str,
    spec: dict[str, Any],
    context: dict[str, Any],
    mlflow_run: dict[str, str] | None = None,
    failure: dict[str, Any] | None = None,
    target: str = "stepfunctions",
    retry: dict[str, Any] | None = None,
    wait_started: str = "",
) -> dict[str, Any]:
    """The `step` action: one step of a Step Functions execution (the Lambda handler) or an Argo workflow.

    context is the execution's {"params", "run_id", "run_date"}, built by the state machine's first states;
    failure is what a Catch recorded ({"Error", "Cause"}), told to the failure notification; target is the
    orchestrator recorded in the run's pipegen.target tag; retry and wait_started are run_step's (Argo's
    evaluate; Argo's waiting gate, from its clock task).
    """
    if kind == "notify":
        # "run" as the Airflow DAG and `pipegen run` name it in their notifications, failed or succeeded.
        message = {**spec["message"], "run": context["run_id"]}
        if failure is not None:
            message |= {"error": str(failure.get("Error", "")), "cause": str(failure.get("Cause", ""))}
        spec = {**spec, "message": message}
    return run_step(
        kind,
        spec,
        params=dict(context["params"]),
        run_id=str(context["run_id"]),
        run_date=str(context["run_date"]),
        mlflow_run=mlflow_run,
        target=target,
        retry=retry,
        wait_started=wait_started,
    )


def _cluster_job(
    kind: str, spec: dict[str, Any], values: Values, command: list[str], env: dict[str, str]
) -> dict[str, Any]:
    """A Spark application (spark-submit) or a Ray job, submitted and waited for (targets.cluster_jobs' requests).

    timeout_seconds is the step's: the runtime stops the job itself, for orchestrators whose own timeout cannot
    (Prefect's sync tasks, kfp.local) or ends only the task (a KFP pod's deadline leaves a Ray job running).
    """
    timeout = spec.get("timeout_seconds")
    if kind == "spark" and "platform" in spec["spark"]:
        return _spark_aws_job(spec, values, command, env)
    if kind == "spark":
        from pipegen.runtime.spark_jobs import spark_job

        spark = spec["spark"]
        return {
            "passed": True,
            **spark_job(
                application=command[0],
                arguments=command[1:],
                master=values.string(spark.get("master", "local[*]")),
                deploy_mode=spark.get("deploy_mode", "client"),
                conf={k: values.string(v) for k, v in spark.get("conf", {}).items()},
                driver=spark.get("driver"),
                executors=spark.get("executors"),
                main_class=spark.get("main_class"),
                py_files=[values.string(f) for f in spark.get("py_files", [])],
                jars=[values.string(j) for j in spark.get("jars", [])],
                packages=spark.get("packages", []),
                environment=env,
                timeout_seconds=timeout,
            ),
        }
    from pipegen.runtime.ray_jobs import ray_job

    ray = spec["ray"]
    return {
        "passed": True,
        **ray_job(
            address=values.string(ray["address"]),
            entrypoint=command,
            # The same on every target and `pipegen run`: submission ids derive from it and the run key.
            job_name=ray["job_name"],
            run_id=values.run_id,
            runtime_env=ray.get("runtime_env"),
            entrypoint_resources=ray.get("entrypoint_resources"),
            environment=env,
            timeout_seconds=timeout,
        ),
    }


def _closing(
    mlflow_run: dict[str, str] | None, tracking_uri: str | None, job: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    with ending_run(mlflow_run, tracking_uri):
        return job()


@contextmanager
def ending_run(mlflow_run: dict[str, str] | None, tracking_uri: TrackingUri) -> Iterator[None]:
    """Run a training step's job inside, then end its MLflow run as the job ended if the job left it RUNNING.

    The job crashed, was stopped at its timeout, or never ended the run: FAILED when the block raised, else FINISHED,
    as `pipegen run` does. A run the job ended keeps its own status; a retried attempt's job resumes the run
    (MLFLOW_RUN_ID) and it is ended again. tracking_uri may be a function rendering it (a secret, say): a failure to
    render it or to reach MLflow is printed, never raised, so the job's own outcome stands.
    """
    if not mlflow_run:
        yield
        return
    try:
        yield
    except BaseException:
        _close_quietly(mlflow_run, "FAILED", tracking_uri)
        raise
    _close_quietly(mlflow_run, "FINISHED", tracking_uri)


def _close_quietly(run: dict[str, str], status: str, tracking_uri: TrackingUri) -> None:
    from pipegen.runtime.start_run import close_run

    try:
        close_run(run, status, tracking_uri() if callable(tracking_uri) else tracking_uri)
    except Exception as exc:  # noqa: BLE001 - the job's own outcome matters more than this bookkeeping
        from pipegen.runtime.redact import redact

        print(redact(f"pipegen: could not end MLflow run {run.get('run_id')} as {status}: {exc}"), file=sys.stderr)


def _kubernetes_resource(spec: dict[str, Any], values: Values, mlflow_run: dict[str, str] | None) -> dict[str, Any]:
    """Kubernetes objects the compiler built (pipegen.k8s), with this run's values and names, created and waited for.

    Only the strings the slots name are rendered (the spec's templates, the MLflow run's ids, the objects' names):
    every other string of the objects is literal text and stays as it is.
    """
    from pipegen.runtime.k8s_launch import ApiCluster, filled, launch

    objects = filled(spec["objects"], spec["slots"], values.string, mlflow_run)
    result = launch(
        objects,
        spec["slots"],
        base=spec["base"],
        run_id=values.run_id,
        cluster=ApiCluster(),
        timeout_seconds=spec.get("timeout_seconds"),
    )
    return {"passed": True, **result}


def _spark_aws_job(spec: dict[str, Any], values: Values, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """A Spark job on EMR, EMR Serverless, EMR on EKS or Glue, submitted and waited for as `pipegen run` does.

    Named from `<pipeline>-<step>` and the run key (spark_job_name): a retried task finds the job it submitted and
    waits for it; the step's timeout stops the job.
    """
    from pipegen.runtime.spark_aws_jobs import spark_aws_job, spark_job_name

    spark = spec["spark"]
    ids = dict(spark["ids"])
    settings = {
        "conf": {k: values.string(v) for k, v in spark.get("conf", {}).items()},
        "driver": spark.get("driver"),
        "executors": spark.get("executors"),
        "main_class": spark.get("main_class"),
        "py_files": [values.string(f) for f in spark.get("py_files", [])],
        "jars": [values.string(j) for j in spark.get("jars", [])],
        "packages": spark.get("packages", []),
    }
    result = spark_aws_job(
        platform=spark["platform"],
        ids=ids,
        job_name=spark_job_name(spark["job_name"], values.run_id),
        settings=settings,
        command=command,
        environment=env,
        region=ids.get("region"),
        timeout_seconds=spec.get("timeout_seconds"),
    )
    return {"passed": True, **result}


def _command(
    kind: str, spec: dict[str, Any], values: Values, command: list[str], env: dict[str, str]
) -> dict[str, Any]:
    if kind == "local":
        full = {
            **os.environ,
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
            **env,
        }
        cwd = values.string(spec["working_dir"]) if spec.get("working_dir") else None
        # timeout_seconds: for orchestrators whose own timeout cannot stop the task (Prefect's sync tasks).
        timeout = spec.get("timeout_seconds")
        try:
            returncode = run_redacted(command, env=full, cwd=cwd, timeout=timeout)  # its env holds rendered secrets
        except subprocess.TimeoutExpired:
            raise RuntimeFailure(f"command timed out after {timeout}s and was ended: {command[0]}") from None
        if returncode != 0:
            raise RuntimeFailure(f"command exited with {returncode}: {command[0]}")
        return {"passed": True}
    if kind == "aws_batch":
        from pipegen.runtime.aws_jobs import batch_job, batch_job_name

        job = spec["job"]
        return {
            "passed": True,
            **batch_job(
                # Derived from the run key: a retried task finds the job it submitted instead of submitting again.
                job_name=batch_job_name(job["job_name"], values.run_id),
                job_queue=job["job_queue"],
                job_definition=job["job_definition"],
                command=command,
                environment=env,
                resources=job.get("resources"),
                region=job.get("region"),
                timeout_seconds=job.get("timeout_seconds"),
            ),
        }
    from pipegen.runtime.aws_jobs import sagemaker_job_name, sagemaker_training

    job = spec["job"]
    name = sagemaker_job_name(job["job_name"], values.run_id)
    return {
        "passed": True,
        **sagemaker_training(
            job_name=name,
            image=values.string(job["image"]),
            role_arn=job["role_arn"],
            instance_type=job["instance_type"],
            instance_count=job["instance_count"],
            output_path=values.string(job["output_path"]),
            command=command,
            environment=env,
            max_runtime_seconds=job.get("max_runtime_seconds", 86400),
            region=job.get("region"),
            timeout_seconds=job.get("timeout_seconds"),
        ),
    }
