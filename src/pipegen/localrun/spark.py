"""`pipegen run` for spark steps: spark-submit against the backend's master (local[N], or any master reachable here)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipegen.localrun.outcome import StepFailed, Stop
from pipegen.resolve import ResolvedStep
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.templating import Values
from pipegen.spec import SparkBackend


def spark_step(
    step: ResolvedStep, values: Values, extra_env: Mapping[str, str], log_path: Path, stop: Stop, job_base_name: str
) -> str:
    """Run a spark step's application with spark-submit and wait; the detail the summary shows. StepFailed when it fails."""
    from pipegen.runtime.spark_jobs import spark_job

    backend = step.backend
    assert isinstance(backend, SparkBackend)
    if backend.platform != "submit":  # the others that run here are on AWS (setup.RUNNABLE_VARIANTS)
        return spark_aws_step(step, values, extra_env, stop, job_base_name)
    body = step.body
    application, *arguments = [values.string(arg) for arg in body.command]
    env = {k: values.string(v) for k, v in sorted(body.env.items())}
    env.update(extra_env)
    master = values.string(backend.master)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log_path.open("ab") as log:
            spark_job(
                application=application,
                arguments=arguments,
                master=master,
                deploy_mode=backend.deploy_mode,
                conf={k: values.string(v) for k, v in backend.conf.items()},
                driver=backend.driver.model_dump(exclude_none=True) if backend.driver else None,
                executors=backend.executors.model_dump(exclude_none=True) if backend.executors else None,
                main_class=backend.main_class,
                py_files=[values.string(f) for f in backend.py_files],
                jars=[values.string(j) for j in backend.jars],
                packages=list(backend.packages),
                environment=env,
                timeout_seconds=step.policy.timeout,
                output=log,
                stop=stop.event,
            )
    except RuntimeFailure as exc:  # spark-submit failed or outlived the step's timeout
        stop.check()  # it was ended because the run was interrupted: not the job's own failure
        raise StepFailed(f"{exc} (log: {log_path})") from None
    return f"Spark application {application} on {master} (log: {log_path})"


def spark_aws_step(step: ResolvedStep, values: Values, extra_env: Mapping[str, str], stop: Stop, base: str) -> str:
    """Submit a spark step to its AWS platform through the runtime, as aws_batch steps are, and wait for it.

    The job is named from the run key (runtime.spark_aws_jobs), so a retry of the step finds the job it already
    submitted (still running or succeeded) and waits for it. The step's timeout and an interrupt stop the job.
    """
    from pipegen.runtime.spark_aws_jobs import spark_aws_job, spark_job_name

    backend = step.backend
    assert isinstance(backend, SparkBackend) and backend.platform != "submit"
    ids = getattr(backend, backend.platform).model_dump(exclude_none=True)
    settings = {
        "conf": {k: values.string(v) for k, v in sorted(backend.conf.items())},
        "driver": backend.driver.model_dump(exclude_none=True) if backend.driver else None,
        "executors": backend.executors.model_dump(exclude_none=True) if backend.executors else None,
        "main_class": backend.main_class,
        "py_files": [values.string(f) for f in backend.py_files],
        "jars": [values.string(j) for j in backend.jars],
        "packages": list(backend.packages),
    }
    env = {k: values.string(v) for k, v in sorted(step.body.env.items())}
    env.update(extra_env)
    try:
        result = spark_aws_job(
            platform=backend.platform,
            ids=ids,
            job_name=spark_job_name(base, values.run_id),
            settings=settings,
            command=[values.string(arg) for arg in step.body.command],
            environment=env,
            region=ids.get("region"),
            timeout_seconds=step.policy.timeout,
            sleep=stop.sleep,
        )
    except RuntimeFailure as exc:  # the job failed, was stopped, or outlived the step's timeout
        raise StepFailed(str(exc)) from None
    return f"{result['title']} {result['job_name']} ({result['job_id']}) succeeded"
