"""Ending the MLflow run of a training step whose job Argo itself runs: a kubernetes container, a resource template.

A job that dies without ending its run (OOM kill, lost node, deadline, a script that never called MLflow) leaves the
run RUNNING. Steps run in the runtime container end it themselves (runtime.step._closing); for the others, lifecycle
hooks on the training task call one shared runtime template running `close_run` once the task has ended: FAILED when
it ended Failed or Error, FINISHED when it Succeeded. A run the job ended itself keeps its own status.

What this relies on in Argo (workflow/controller/dag.go and hooks.go, docs/lifecyclehook.md):
- a hook's expression reads `tasks["<task>"].status`, the task's own node; a retried task's Retry node stays Running
  until its last attempt ends, so a hook runs once, on the final outcome (every attempt resumes the run through
  MLFLOW_RUN_ID, and the runtime's steps end it the same way after each one);
- a hook's arguments are resolved in the DAG's scope, so they read start_run's output as the task's arguments do;
- the task's dependents wait for its hooks, so evaluate and promote read a run already ended;
- a hook that ends Failed is ignored and one that ends Error fails the DAG. The close container exits 0 whatever
  happens (an unreachable MLflow is reported in its log and leaves the run as it is, as runtime.step._close_quietly
  does): the job's outcome stays the step's outcome;
- the close template has no retryStrategy: a hook template with one could leave the hook Running (argo-workflows
  #12120). MLflow's client retries each call itself (runtime.tracking.RETRY_DEFAULTS).
"""

from __future__ import annotations

from typing import Any

from pipegen.resolve import Pipeline
from pipegen.targets.argo.options import ArgoOptions
from pipegen.targets.argo.refs import container_text, input_param
from pipegen.targets.argo.runtime import mlflow_env, secret_env

MLFLOW_RUN_INPUT = "mlflow-run"
STATUS_INPUT = "status"
# Hook name -> the run's status it ends the run with, and the task phases that run it. "exit" would be an exit
# handler (run on every outcome, after the other hooks); any other name is only a name.
HOOKS = {"close-failed": ("FAILED", ("Failed", "Error")), "close-finished": ("FINISHED", ("Succeeded",))}
# `python -m pipegen.runtime close_run ARGS` that exits 0 even when the action fails (its reason is on stderr).
CLOSE_CODE = "import sys; from pipegen.runtime.__main__ import main; main(sys.argv[1:])"
CLOSE_ARGS = '{"run": ' + input_param(MLFLOW_RUN_INPUT) + ', "status": "' + input_param(STATUS_INPUT) + '"}'


def expression(task: str, phases: tuple[str, ...]) -> str:
    """The hook's condition: the task's node ended in one of phases (task names are [a-z0-9-]: nothing to quote)."""
    return " || ".join(f'tasks["{task}"].status == "{phase}"' for phase in phases)


def tracking_env(pipeline: Pipeline, options: ArgoOptions) -> list[dict[str, Any]]:
    """MLFLOW_TRACKING_URI as start_run reaches the server (the spec's URI, else the image's or the options' one),
    then the keys of targets.argo.mlflow_secret / mlflow_config_map it does not set.

    checks.containers holds a training container step's URI to literal text, a whole ${secret.X}, or exactly
    ${env.MLFLOW_TRACKING_URI} (the runtime image's own variable, left as it is).
    """
    env: list[dict[str, Any]] = []
    uri = pipeline.tracking_uri
    text = pipeline.spec.mlflow.tracking_uri
    if uri is not None and text is not None and not any(r.namespace == "env" for r in uri.refs):
        ref = uri.single_ref
        if ref is not None and ref.namespace == "secret":
            env.append(secret_env("MLFLOW_TRACKING_URI", ref.name))
        else:
            env.append({"name": "MLFLOW_TRACKING_URI", "value": container_text(text)})
    taken = {e["name"] for e in env}
    return sorted(env + [e for e in mlflow_env(options) if e["name"] not in taken], key=lambda e: str(e["name"]))


def close_container(pipeline: Pipeline, options: ArgoOptions, image: str) -> dict[str, Any]:
    """The shared close template's container: close_run on the run it is given, with the status it is given."""
    container: dict[str, Any] = {
        "image": image,
        "command": ["python", "-c", CLOSE_CODE],
        "args": ["close_run", CLOSE_ARGS],
    }
    env = tracking_env(pipeline, options)
    if env:
        container["env"] = env
    return container


def hooks(task: str, run: str, *, failed_only: bool = False) -> dict[str, dict[str, Any]]:
    """The task's hooks, by name, each calling the close template (lowering names it) with the run and a status.

    run: the Argo reference to start_run's JSON result. failed_only: a task that runs no training itself (the
    headless Service before a multi-node step's Job) only ends the run FAILED, when the job cannot start.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, (status, phases) in HOOKS.items():
        if failed_only and status != "FAILED":
            continue
        arguments = {MLFLOW_RUN_INPUT: run, STATUS_INPUT: status}
        out[name] = {"expression": expression(task, phases), "arguments": arguments}
    return out
