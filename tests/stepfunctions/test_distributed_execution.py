"""A multi-node Batch step run by moto's Step Functions executor: the state machine submits a multi-node parallel
job on a `multinode` job definition, with NodeOverrides carrying the node count and every node's command.

moto accepts the request (botocore's SubmitJob shape) but neither models multi-node jobs nor passes
nodeOverrides to its backend: the request the executor sent is recorded where moto reads it (its Batch
response handler), and the job then SUCCEEDS at once as every job does without docker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.stepfunctions.asl import compile_text
from tests.stepfunctions.support import history, run_state_machine
from tests.support_aws import batch_queue

SPEC = """\
pipegen: 1
name: nodes
backends:
  gpu: {type: aws_batch, job_queue: ml-gpu, job_definition: "train-mnp:1"}
steps:
  - name: fit
    task:
      backend: gpu
      command: [python, fit.py, --date, "${run.date}", "$(HOME) $${x}"]
      resources: {gpu: 4}
      distributed: {nodes: 4}
"""


def record_submissions(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every SubmitJob request body the moto server receives."""
    from moto.batch.responses import BatchResponse

    original = BatchResponse.submitjob
    seen: list[dict[str, Any]] = []

    def submitjob(self: Any) -> Any:
        seen.append(json.loads(self.body))
        return original(self)

    monkeypatch.setattr(BatchResponse, "submitjob", submitjob)
    return seen


def test_a_multi_node_batch_step_submits_one_job_of_n_nodes(
    sfn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    batch_queue("ml-gpu", "unused:1")
    boto3.client("batch").register_job_definition(
        jobDefinitionName="train-mnp",
        type="multinode",
        nodeProperties={
            "numNodes": 2,
            "mainNode": 0,
            "nodeRangeProperties": [
                {"targetNodes": "0:", "container": {"image": "train:1", "vcpus": 1, "memory": 2048}}
            ],
        },
    )
    # moto's port (LocalStack's) keeps only the SubmitJob parameters of its list, which lacks NodeOverrides, and
    # drops the others silently: the list is extended here so that the request reaches moto's Batch (and is
    # checked against botocore's SubmitJob shape on the way). Whether the service itself takes NodeOverrides in
    # batch:submitJob.sync is not provable here (see the README).
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_batch

    supported = state_task_service_batch._SUPPORTED_API_PARAM_BINDINGS["submitjob"] | {"NodeOverrides"}
    monkeypatch.setitem(state_task_service_batch._SUPPORTED_API_PARAM_BINDINGS, "submitjob", supported)
    seen = record_submissions(monkeypatch)
    files, problems = compile_text(SPEC, tmp_path, "nodes.yaml")
    assert files, problems
    result = run_state_machine(files["stepfunctions/nodes.asl.json"], name, {})
    assert result["status"] == "SUCCEEDED", history(result["executionArn"])[-3:]
    # The command held ${run.date}: the runtime Lambda rendered it (and the launcher's own `${`, kept literal).
    assert [e["args"]["kind"] for e in sfn] == ["prepare"]
    (request,) = seen
    # The executor adds its MANAGED_BY_AWS marker as ContainerOverrides (as the service does): nothing else there.
    assert request["containerOverrides"] == {
        "environment": [{"name": "MANAGED_BY_AWS", "value": "STARTED_BY_STEP_FUNCTIONS"}]
    }
    overrides = request["nodeOverrides"]
    assert overrides["numNodes"] == 4
    (node,) = overrides["nodePropertyOverrides"]
    assert node["targetNodes"] == "0:"
    container = node["containerOverrides"]
    command = container["command"]
    assert command[:2] == ["sh", "-c"] and "${AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS:-127.0.0.1}" in command[2]
    torchrun = [
        "torchrun",
        "--nnodes=4",
        "--nproc-per-node=4",
        "--master-port=29500",
        "--max-restarts=0",
        "--no-python",
    ]
    date = result["startDate"].date().isoformat()
    assert command[3:] == ["pipegen-node", *torchrun, "python", "fit.py", "--date", date, "$(HOME) ${x}"]
    assert {"name": "NNODES", "value": "4"} in container["environment"]
    assert {"type": "GPU", "value": "4"} in container["resourceRequirements"]
