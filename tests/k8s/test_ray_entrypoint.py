"""A RayJob's entrypoint reaches the Ray job as the step's command, byte for byte, through every reader KubeRay 1.7
puts it through in K8sJobMode: the kubelet (`$(VAR)`, `$$`) in the submitter container's argument, bash running
that argument (`bash -ce`), `ray job submit -- WORDS` joining the words with shlex, and the shell the Ray head runs
the entrypoint with. Everything after the kubelet is real: bash, Ray's own CLI and the session's Ray head.

The submitter's command line is KubeRay's (ray-operator/controllers/ray/common/job.go BuildJobSubmitCommand, K8sJobMode)
without its wait for the dashboard, which the session's head does not need.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pipegen.k8s.pods import StepObject
from pipegen.k8s.ray import ray_job
from pipegen.targets.argo.manifests import ArgoValues
from tests.argo.executor import kubelet
from tests.argo.expressions import substitute
from tests.hostile import HOSTILE_TEXT, literal_value
from tests.k8s.support import pipeline_of
from tests.support_ray import RAY_GROUP

pytestmark = pytest.mark.xdist_group(RAY_GROUP)

CODE = "import json, sys; print('ARGV=' + json.dumps(sys.argv[1:]))"
# The hostile text and a submitted parameter value built to break each reader: quotes of both kinds, $(VAR) of a
# variable the submitter has, `command substitution`, a line break, a backslash, {{...}}.
SUBMITTED = 'p\' "q" $(RAY_JOB_SUBMISSION_ID) `id` $HOME\nx\\y {{workflow.name}}'


def _spec(argument: str) -> str:
    return f"""\
pipegen: 1
name: entry
params: {{note: plain}}
backends:
  kuberay:
    type: ray
    cluster: {{image: rayproject/ray:2.60.0, workers: [{{name: cpu}}]}}
steps:
  - name: train
    task:
      backend: kuberay
      command: [{json.dumps(sys.executable)}, -c, {json.dumps(CODE)}, {json.dumps(argument)}, "${{params.note}}", "n=${{params.note}}'"]
"""


def _submit_and_read(entrypoint: str, address: str, tmp_path: Path) -> list[str]:
    job = f"entry-{uuid.uuid4().hex[:12]}"
    # What KubeRay's submitter runs: one bash argument holding the entrypoint, as the kubelet hands it over.
    line = " ".join(
        [
            "if ! ray job status --address", address, job, ">/dev/null 2>&1 ; then",
            "ray job submit --address", address, "--no-wait --submission-id", job, "--", entrypoint.strip(), "; fi ;",
            "ray job logs --address", address, "--follow", job,
        ]
    )  # fmt: skip
    submitter_env = {"RAY_DASHBOARD_ADDRESS": address, "RAY_JOB_SUBMISSION_ID": job, "PYTHONUNBUFFERED": "1"}
    argument = kubelet(line, {**submitter_env, "HOME": str(tmp_path)})
    env = {**os.environ, **submitter_env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-ce", "--", argument], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    [found] = [line for line in done.stdout.splitlines() if line.startswith("ARGV=")]
    return list(json.loads(found.removeprefix("ARGV=")))


@pytest.mark.usefixtures("ray_client_env")
def test_a_hostile_argument_and_parameter_reach_the_ray_job_byte_identical(ray_head: str, tmp_path: Path) -> None:
    pipeline = pipeline_of(_spec(HOSTILE_TEXT))
    [step] = pipeline.steps
    values = ArgoValues()
    document = ray_job(step, StepObject(pipeline.name, step.name, values))
    # Argo substitutes the submitted value into the manifest's expression; the manifest is then one JSON object.
    scope = {"workflow.parameters": {"note": SUBMITTED}, "workflow.name": "entry-run-1", "inputs.parameters": {}}
    obj = json.loads(substitute(values.manifest(document), scope))
    argv = _submit_and_read(obj["spec"]["entrypoint"], ray_head, tmp_path)
    assert argv == [literal_value(HOSTILE_TEXT), SUBMITTED, f"n={SUBMITTED}'"]
