"""Runtime containers: `python -m pipegen.runtime step ARGS_JSON`, the step's JSON escaped so Argo keeps it."""

from __future__ import annotations

from typing import Any

from pipegen.resolve import Pipeline
from pipegen.runtime.templating import secret_env_name
from pipegen.targets.argo.names import RESULT_PATH, quoted, runtime_json
from pipegen.targets.argo.options import ArgoOptions
from pipegen.targets.argo.refs import RUN_DATE_INPUT, RUN_ID, input_param
from pipegen.targets.base import kubernetes_name

_EXPRESSION = {
    bool: "workflow.parameters.{} == 'true'",
    int: "asInt(workflow.parameters.{})",
    float: "asFloat(workflow.parameters.{})",
    str: "workflow.parameters.{}",
}
# A submitted string's JSON with '$', '{' and '}' as \u escapes (expr's replace(); in its string literals '\u0024'
# is '$' and '\\u0024' the six characters of the escape): the kubelet expands no `$(VAR)` and Argo reads no `{{` of
# the value when it lands in a container's args. A number or a boolean holds none of them.
_ESCAPED = (
    "replace(replace(replace(toJson({}), '\\u0024', '\\\\u0024'), '\\u007b', '\\\\u007b'), '\\u007d', '\\\\u007d')"
)


def param_json(name: str, value: object) -> str:
    """Argo's expression for a workflow parameter as one JSON value, typed like the spec's default."""
    inner = _EXPRESSION[type(value)].format(name)
    return "{{=" + (_ESCAPED.format(inner) if isinstance(value, str) else f"toJson({inner})") + "}}"


def context_json(pipeline: Pipeline, with_date: bool) -> str:
    """The runtime's `context` ({params, run_id, run_date}) as JSON text with Argo's references in it.

    Each parameter is an expression whose value Argo writes as JSON (param_json), so a value holding quotes,
    braces or '$(' stays one JSON value that neither Argo nor the kubelet rewrites. The run's date is the
    template's input RUN_DATE_INPUT (a task output, which only the DAG reads).
    """
    params = ", ".join(
        f"{quoted(name)}: {param_json(name, value)}" for name, value in sorted(pipeline.spec.params.items())
    )
    run_date = quoted(input_param(RUN_DATE_INPUT)) if with_date else '""'
    return f'{{"params": {{{params}}}, "run_date": {run_date}, "run_id": {quoted(RUN_ID)}}}'


def step_args(
    kind: str,
    spec: dict[str, Any] | str,
    context: str,
    mlflow_run: str | None = None,
    *,
    wait_started: str | None = None,
    **extra: Any,
) -> str:
    """The `step` action's ARGS_JSON: keys in order, spec text escaped, Argo's references spliced in as they are.

    spec: the step's request, or the text standing for it (a shared template's input).
    wait_started: an Argo reference to when a waiting gate's wait began (its clock task's result).
    """
    parts = [f'"context": {context}']
    parts += [f"{quoted(k)}: {runtime_json(v)}" for k, v in sorted(extra.items())]
    parts.append(f'"kind": {quoted(kind)}')
    if mlflow_run is not None:
        parts.append(f'"mlflow_run": {mlflow_run}')
    # The run's pipegen.target tag.
    parts += [f'"spec": {spec if isinstance(spec, str) else runtime_json(spec)}', '"target": "argo"']
    if wait_started is not None:
        parts.append(f'"wait_started": {quoted(wait_started)}')
    return "{" + ", ".join(parts) + "}"


# Writes the time (epoch seconds) to the path it is given: no spec text, no `{{` or `$` in it.
CLOCK_CODE = (
    "import pathlib, sys, time; p = pathlib.Path(sys.argv[1]); "
    "p.parent.mkdir(parents=True, exist_ok=True); p.write_text(repr(time.time()))"
)


def clock_container(image: str) -> dict[str, Any]:
    """A container writing the current time to RESULT_PATH: when a waiting gate's wait begins."""
    return {"image": image, "command": ["python", "-c", CLOCK_CODE], "args": [RESULT_PATH]}


def runtime_container(
    image: str, action: str, args: str, secrets: set[str], mlflow: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A container running one runtime action, its result in RESULT_PATH; secrets as PIPEGEN_SECRET_<NAME>.

    mlflow: the env entries of targets.argo.mlflow_secret / mlflow_config_map, for a container talking to MLflow.
    """
    container: dict[str, Any] = {
        "image": image,
        "command": ["python", "-m", "pipegen.runtime"],
        "args": [action, args, "--output", RESULT_PATH],
    }
    env = [secret_env(secret_env_name(name), name) for name in sorted(secrets)] + (mlflow or [])
    if env:
        container["env"] = sorted(env, key=lambda e: str(e["name"]))
    return container


def secret_env(var: str, secret: str) -> dict[str, Any]:
    """An env var read from the Kubernetes secret that ${secret.NAME} names (key NAME)."""
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": kubernetes_name(secret), "key": secret}}}


RESULT_OUTPUT = {"parameters": [{"name": "result", "valueFrom": {"path": RESULT_PATH}}]}


def mlflow_env(options: ArgoOptions) -> list[dict[str, Any]]:
    """Each key of targets.argo.mlflow_secret / mlflow_config_map as the env variable of the same name."""
    out: list[dict[str, Any]] = []
    for source, ref in ((options.mlflow_secret, "secretKeyRef"), (options.mlflow_config_map, "configMapKeyRef")):
        if source is not None:
            out += [{"name": k, "valueFrom": {ref: {"name": source.name, "key": k}}} for k in sorted(source.keys)]
    return out
