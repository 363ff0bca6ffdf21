"""prepare: render a job step's command and environment for the service that runs it (Step Functions).

Step Functions passes literal values through untouched, so pipegen leaves every `${...}` to this one
renderer, the same one Airflow and KFP steps use: a value reads the same on every engine.
A Spark job on AWS gets its whole request from runtime.spark_aws (which the compiler uses for literal ones).
"""

from __future__ import annotations

from typing import Any

from pipegen.runtime.aws_jobs import sagemaker_job_name
from pipegen.runtime.start_run import start_step_run, training_env
from pipegen.runtime.templating import Values


def prepare(spec: dict[str, Any], values: Values, *, target: str, tracking_uri: str | None) -> dict[str, Any]:
    """The service-shaped command and environment of a job; a train step also starts its MLflow run."""
    env = {key: values.string(value) for key, value in sorted(spec.get("env", {}).items())}
    out: dict[str, Any] = {"passed": True}
    start = spec.get("start_run")
    if start is not None:
        run = start_step_run(
            start, target=target, run_key=values.run_id, tracking_uri=tracking_uri, params=dict(values.params)
        )
        # A pod whose tracking URI is a secret reads it from its secret_env entry (below), not from this result.
        env.update(training_env(run, tracking_uri))
        # Later steps read the run's ids; the tracking URI (it may hold credentials) stays out of the history.
        out["run"] = {"run_id": str(run["run_id"]), "experiment_id": str(run["experiment_id"])}
    command = [values.string(arg) for arg in spec["command"]]
    service = spec["service"]
    if service == "batch":
        out["job"] = {"Command": command, "Environment": [{"Name": k, "Value": v} for k, v in sorted(env.items())]}
    elif service == "eks":
        secret_env = spec.get("secret_env", {})
        # The kubelet expands $(VAR) in a container's command and env values and reads $$ as $: every $ of the
        # rendered text is doubled, so it reaches the container as rendered.
        plain = [{"name": k, "value": kubelet_text(v)} for k, v in sorted(env.items()) if k not in secret_env]
        # Secrets stay references the kubelet resolves; their values never pass through the state machine.
        secrets = [
            {"name": k, "valueFrom": {"secretKeyRef": {"name": ref["secret"], "key": ref["key"]}}}
            for k, ref in sorted(secret_env.items())
        ]
        # A multi-node step's rendezvous variables (the compiler's EnvVars, as written) come first: the kubelet
        # expands a $(VAR) in an env value only from the variables before it.
        node_env = list(spec.get("node_env", []))
        out["job"] = {"command": [kubelet_text(arg) for arg in command], "env": node_env + plain + secrets}
    elif service == "sagemaker":
        algorithm: dict[str, Any] = {
            "TrainingImage": values.string(spec["image"]),
            "TrainingInputMode": "File",
            "ContainerEntrypoint": command[:1],
        }
        if command[1:]:
            algorithm["ContainerArguments"] = command[1:]
        out["job"] = {
            "TrainingJobName": sagemaker_job_name(spec["job_name"], values.run_id),
            "AlgorithmSpecification": algorithm,
            "Environment": env,
            "OutputDataConfig": {"S3OutputPath": values.string(spec["output_path"])},
        }
    elif service == "spark":
        from pipegen.runtime.spark_aws import spark_request

        out["job"] = spark_request(spec["platform"], spec["spark"], command, env, values.string)
    else:
        raise ValueError(f"unknown job service '{service}'")
    return out


def kubelet_text(text: str) -> str:
    """text as a container command word or env value the kubelet keeps as it is ('$$' is its escape of '$')."""
    return text.replace("$", "$$")
