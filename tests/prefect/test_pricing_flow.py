"""The pricing spec's flow runs in Prefect's engine against moto: an S3 gate, an AWS Batch job, then promotion.

moto's server runs in this process (ThreadedMotoServer), reached through AWS_ENDPOINT_URL only. Without docker
moto would end a Batch job as it is submitted; tests/differential/aws.py's hook plays the job instead: its
command runs here as a local process with the job's environment, and the job is RUNNING until it exits.
The job's command is the spec's `python -m pricing.train ...`: a small module written here plays the team's
training code and logs into the run the flow started (MLFLOW_RUN_ID from the job's environment).
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.differential.aws import configure, hook_batch
from tests.prefect.support import PRICING, compile_prefect, load_flow
from tests.support_aws import batch_queue

pytestmark = pytest.mark.usefixtures("prefect_harness")

TRAIN = '''\
"""pricing.train as the pricing team's image has it: logs metrics and a model into the orchestrator's run."""
import json, sys, tempfile
from pathlib import Path

import mlflow

# Beside this module: a Batch container gets only its job's environment (and PATH, PYTHONPATH here).
with open(Path(__file__).with_name("argv.jsonl"), "a") as record:
    record.write(json.dumps(sys.argv[1:]) + "\\n")
with mlflow.start_run():
    mlflow.log_metrics({"mae": 10.5, "model_size_mb": 120.0})
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "MLmodel").write_text("artifact_path: model\\nflavors: {}\\n")
        mlflow.log_artifacts(tmp, "model")
'''


def test_pricing_waits_for_its_partition_trains_on_batch_and_promotes(
    tmp_path: Path, tracking: str, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    import mlflow

    configure(aws)
    hook_batch(monkeypatch, tmp_path / "jobs")
    (tmp_path / "jobs").mkdir()
    batch_queue("ml-cpu-64", "pricing-train:3")
    # A manual run's ${run.date} is today in the schedule's timezone (UTC): that day's partition has landed.
    today = datetime.now(UTC).date().isoformat()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="pricing-data")
    s3.put_object(Bucket="pricing-data", Key=f"quotes/dt={today}/part-0.parquet", Body=b"rows")
    code = tmp_path / "image"
    (code / "pricing").mkdir(parents=True)
    (code / "pricing" / "__init__.py").write_text("")
    (code / "pricing" / "train.py").write_text(textwrap.dedent(TRAIN))
    # The job's container: this environment's python, the team's code on its path.
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    monkeypatch.setenv("PYTHONPATH", str(code))
    record = code / "pricing" / "argv.jsonl"

    pricing = load_flow(compile_prefect(tmp_path / "out", PRICING), "pricing")
    state = pricing(max_depth=12, return_state=True)

    assert state.is_completed(), state
    assert [json.loads(line) for line in record.read_text().splitlines()] == [["--date", today, "--max-depth", "12"]]
    [job] = boto3.client("batch").list_jobs(jobQueue="ml-cpu-64", jobStatus="SUCCEEDED")["jobSummaryList"]
    flow_run_id = str(state.state_details.flow_run_id)
    client = mlflow.MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    version = client.get_model_version_by_alias("pricing", "champion")
    assert str(version.version) == "1"
    run = client.get_run(version.run_id)
    assert run.data.tags["pipegen.run_key"] == flow_run_id
    assert run.data.tags["pipegen.target"] == "prefect"
    assert run.data.metrics == {"mae": 10.5, "model_size_mb": 120.0}
    assert run.data.tags["pipegen.evaluation"] == "passed"
    # Named from the run key (${run.id}, the flow run): a retried task finds its job instead of submitting another.
    assert job["jobName"].endswith(flow_run_id), job
