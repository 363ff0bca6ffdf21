"""start_run: create (or, on a retry, find) the MLflow run that a training step logs into."""

from __future__ import annotations

import json
import time
from typing import Any

from pipegen.runtime import tags
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.redact import redact
from pipegen.runtime.tracking import client, reaching, resolve_tracking_uri


def start_run(
    *,
    pipeline: str,
    step: str,
    spec_sha256: str,
    target: str,
    run_key: str,
    experiment: str,
    tracking_uri: str | None = None,
    git_commit: str | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create the step's MLflow run, tagged for lineage; a retried call returns the same run.

    The result is {"run_id", "experiment_id"}, never the tracking URI: it may hold ${secret.X} credentials, and
    orchestrators store and show a task's result (XComs, KFP output parameters, Step Functions history).
    """
    c = client(tracking_uri)
    uri = resolve_tracking_uri(tracking_uri)
    with reaching(uri, "starting the run"):
        experiment_id = _experiment_id(c, experiment)
        # Idempotent: a retried task must not create a second run for the same pipeline run and step.
        existing = _existing(c, experiment_id, run_key, step)
        if existing is not None:
            run_id = existing
        else:
            run_tags = {
                tags.PIPELINE: pipeline,
                tags.STEP: step,
                tags.SPEC_SHA256: spec_sha256,
                tags.TARGET: target,
                tags.RUN_KEY: run_key,
                "mlflow.runName": f"{pipeline}.{step}",
            }
            if git_commit:
                run_tags[tags.GIT_COMMIT] = git_commit
            if params:
                # A tag, not MLflow params: params are immutable, and the training script may log
                # the same names itself (often with another spelling, 100000 vs 100000.0).
                # MLflow keeps tags for good: a parameter holding a URL with a token is masked like a log line.
                run_tags[tags.PARAMS] = redact(json.dumps(params, sort_keys=True, default=str))
            run = c.create_run(experiment_id, tags=run_tags, run_name=f"{pipeline}.{step}")
            run_id = run.info.run_id
    return {"run_id": run_id, "experiment_id": experiment_id}


def start_step_run(
    start: dict[str, Any], *, target: str, run_key: str, tracking_uri: str | None, params: dict[str, Any]
) -> dict[str, Any]:
    """start_run for a step spec's {"pipeline", "step", "spec_sha256", "experiment"}, as targets write it."""
    return start_run(
        pipeline=start["pipeline"],
        step=start["step"],
        spec_sha256=start["spec_sha256"],
        target=target,
        run_key=run_key,
        experiment=start["experiment"],
        tracking_uri=tracking_uri,
        params=params,
    )


def find_step_run(start: dict[str, Any], *, run_key: str, tracking_uri: str | None) -> dict[str, Any] | None:
    """The run start_step_run made for a step spec and run key, found as a retried start_run finds it; None when it
    made none (the steps before it failed). For a closer that may take no task's output (KFP's)."""
    c = client(tracking_uri)
    with reaching(resolve_tracking_uri(tracking_uri), "finding the run"):
        experiment = c.get_experiment_by_name(start["experiment"])
        if experiment is None:
            return None
        run_id = _existing(c, experiment.experiment_id, run_key, start["step"])
    return None if run_id is None else {"run_id": run_id, "experiment_id": experiment.experiment_id}


def _existing(c: Any, experiment_id: str, run_key: str, step: str) -> str | None:
    """The id of the run of this pipeline run (run key) and step, if one was made."""
    found = c.search_runs(
        [experiment_id],
        filter_string=f"tags.`{tags.RUN_KEY}` = '{_quote(run_key)}' and tags.`{tags.STEP}` = '{_quote(step)}'",
        max_results=1,
    )
    return str(found[0].info.run_id) if found else None


def close_run(run: dict[str, Any], status: str, tracking_uri: str | None = None) -> bool:
    """End a training run its job left RUNNING (the job crashed, was killed, or never called end_run).

    status is FINISHED, FAILED or KILLED; a run the job ended itself keeps its own status. A run this function
    ended and no job touched since (a failed attempt's, before a retry whose job never uses MLflow) is ended again
    with the new status, so the run ends as the step's last attempt did. True when this call changed the run.
    tracking_uri: as for training_env.
    """
    uri = resolve_tracking_uri(tracking_uri or run.get("tracking_uri"))
    c = client(uri)
    run_id = str(run["run_id"])
    with reaching(uri, f"closing run {run_id}"):
        found = c.get_run(run_id)
        if found.info.status != "RUNNING":
            ours = found.data.tags.get(tags.CLOSED_MS) == str(found.info.end_time)
            if not ours or found.info.status == status:
                return False
        end_ms = int(time.time() * 1000)
        c.set_terminated(run_id, status, end_time=end_ms)
        c.set_tag(run_id, tags.CLOSED_MS, str(end_ms))
    return True


CLOSING_STATUSES = ("FINISHED", "FAILED", "KILLED")


def close_run_action(run: dict[str, Any], status: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """The `close_run` action: an orchestrator whose own job ran a training step (Airflow's operators, Step
    Functions' .sync tasks, Argo's containers) ends the run the job left RUNNING, as the runtime's steps do."""
    if status not in CLOSING_STATUSES:
        raise RuntimeFailure(f"close_run: status must be one of {', '.join(CLOSING_STATUSES)}, not {status!r}")
    return {"run_id": str(run["run_id"]), "status": status, "closed": close_run(run, status, tracking_uri)}


def training_env(run: dict[str, Any], tracking_uri: str | None = None) -> dict[str, str]:
    """The environment a training process needs so that plain `mlflow.start_run()` logs into the run.

    tracking_uri is the URI the calling task rendered itself (else run["tracking_uri"], else the task's
    MLFLOW_TRACKING_URI): start_run's result does not carry it from task to task.
    """
    return {
        "MLFLOW_TRACKING_URI": resolve_tracking_uri(tracking_uri or run.get("tracking_uri")),
        "MLFLOW_EXPERIMENT_ID": str(run["experiment_id"]),
        "MLFLOW_RUN_ID": str(run["run_id"]),
    }


def _experiment_id(c: Any, experiment: str) -> str:
    """The experiment's id, creating it when missing (a step racing to create it too is no error)."""
    from mlflow.exceptions import MlflowException

    exp = c.get_experiment_by_name(experiment)
    if exp is not None:
        return str(exp.experiment_id)
    try:
        return str(c.create_experiment(experiment))
    except MlflowException as exc:
        # Two training steps of one run started side by side (a fan-out) both found no experiment.
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        raise RuntimeFailure(f"MLflow said experiment '{experiment}' exists, then could not find it")
    return str(exp.experiment_id)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
