"""What one engine run left behind, read by the parent: MLflow runs, registered versions, aliases, jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def mlflow_state(tracking_uri: str, pipeline: Any) -> dict[str, Any]:
    """The spec's experiment's runs (pipegen.* tags, params, metrics, status) and its models' versions/aliases."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    runs: list[dict[str, Any]] = []
    experiment = client.get_experiment_by_name(pipeline.experiment)
    if experiment is not None:
        for run in client.search_runs(
            [experiment.experiment_id], max_results=1000, order_by=["attributes.start_time ASC"]
        ):
            runs.append(
                {
                    "id": run.info.run_id,
                    "status": run.info.status,
                    "tags": {k: v for k, v in sorted(run.data.tags.items()) if k.startswith("pipegen.")},
                    "params": dict(sorted(run.data.params.items())),
                    "metrics": dict(sorted(run.data.metrics.items())),
                }
            )
    models: dict[str, Any] = {}
    for name in sorted({s.body.model for s in pipeline.steps if s.kind == "promote"}):
        try:
            registered = client.get_registered_model(name)
        except mlflow.exceptions.MlflowException:
            models[name] = None
            continue
        versions = client.search_model_versions(f"name = '{name}'")
        models[name] = {
            "aliases": {alias: str(version) for alias, version in sorted(registered.aliases.items())},
            "versions": {
                str(v.version): {
                    "run": v.run_id,
                    "tags": {k: val for k, val in sorted(v.tags.items()) if k.startswith("pipegen.")},
                    "aliases": sorted(v.aliases),
                }
                for v in sorted(versions, key=lambda v: int(v.version))
            },
        }
    return {"runs": runs, "models": models, "experiment_id": experiment.experiment_id if experiment else None}


def job_records(*paths: Path) -> list[dict[str, Any]]:
    """Every job's {argv, env, attempt} from jobs.jsonl files (local jobs, and Batch jobs moto ran)."""
    records: list[dict[str, Any]] = []
    for path in paths:
        if path.exists():
            records += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return records
