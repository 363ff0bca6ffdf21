"""Spark on AWS from a KFP component, a Prefect task and an Argo runtime container: the request each target compiles,
run through the runtime's
`spark` kind (runtime.step -> runtime.spark_aws_jobs, what `pipegen run` uses) against moto's server, reached through
AWS_ENDPOINT_URL only.

moto's Glue runs no script: a run goes STARTING -> RUNNING -> SUCCEEDED as it is read; a failing run is made to end
in FAILED on moto's own job object (moto's server runs in this test process).
"""

from __future__ import annotations

import ast
import re
import textwrap
import uuid
from typing import Any

import boto3
import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from pipegen.resolve import resolve
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.kfp_executor import run_action
from pipegen.runtime.spark_aws_jobs import GLUE_NAME_ARGUMENT, spark_job_name
from pipegen.runtime.step import run_step, step_action
from pipegen.targets.prefect.steps import step_request


def spec_text(job: str) -> str:
    return textwrap.dedent(
        f"""\
        pipegen: 1
        name: aws-kfp
        params: {{day: "2026-12-01"}}
        defaults: {{retries: 1, retry_delay: 1s, timeout: 10m}}
        backends:
          glue:
            type: spark
            platform: glue
            py_files: [s3://code/lib.zip]
            glue: {{job_name: {job}, region: us-east-1}}
        steps:
          - name: export
            task:
              backend: glue
              command: [s3://code/job.py, --day, "${{params.day}}", --out, "s3://out/${{params.day}}/"]
              env: {{STAGE: "prod-${{params.day}}", LITERAL: "$${{params.day}} $(HOME)"}}
        targets:
          kfp: {{base_image: registry.example.com/pipegen-runtime:1}}
          argo: {{runtime_image: registry.example.com/pipegen-runtime:1}}
        """
    )


@pytest.fixture
def glue_job(aws: str) -> str:
    name = f"g{uuid.uuid4().hex[:8]}"
    boto3.client("glue").create_job(
        Name=name,
        Role="arn:aws:iam::123456789012:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": "s3://code/job.py", "PythonVersion": "3"},
        ExecutionProperty={"MaxConcurrentRuns": 5},
    )
    return name


def kfp_spec_input(job: str) -> str:
    """The `pipegen_spec` input the compiled KFP pipeline gives the export step's component."""
    result = compile_checked(check_source(Source("aws-kfp.yaml", spec_text(job))), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    [module] = [o.text for o in result.outputs if o.path.endswith(".py")]
    call = re.search(r"export_task = pipegen_spark\(\n\s+pipegen_spec=(.+),\n", module)
    assert call is not None, module
    return str(ast.literal_eval(call.group(1)))


def glue_runs(job: str) -> list[dict[str, Any]]:
    return list(boto3.client("glue").get_job_runs(JobName=job)["JobRuns"])


EXPECTED_ARGUMENTS = {
    "--day": "2026-12-01",
    "--out": "s3://out/2026-12-01/",
    "--extra-py-files": "s3://code/lib.zip",
    "--STAGE": "prod-2026-12-01",
    # Literal text stays literal: the spec's `$${...}` is the text `${...}`, and nothing expands `$(HOME)`.
    "--LITERAL": "${params.day} $(HOME)",
}


def test_a_kfp_component_runs_its_glue_step_through_the_runtime_and_a_retry_waits_for_that_run(glue_job: str) -> None:
    values = {"pipegen_spec": kfp_spec_input(glue_job), "pipegen_run_key": "kfp-run-1", "day": "2026-12-01"}
    assert run_action("spark", "UTC", dict(values)) == {}
    name = spark_job_name("aws-kfp-export", "kfp-run-1")
    [run] = glue_runs(glue_job)
    assert run["Arguments"] == {**EXPECTED_ARGUMENTS, GLUE_NAME_ARGUMENT: name}
    assert (run["JobRunState"], run["Timeout"]) == ("SUCCEEDED", 10)
    # A retried task (same run key) finds that run instead of starting a second one; another run starts its own.
    run_action("spark", "UTC", dict(values))
    assert len(glue_runs(glue_job)) == 1
    run_action("spark", "UTC", {**values, "pipegen_run_key": "kfp-run-2"})
    assert len(glue_runs(glue_job)) == 2


def test_a_prefect_task_runs_the_same_request_and_a_failed_run_fails_with_the_services_state(
    glue_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.glue.models import FakeJob

    pipeline = resolve(check_source(Source("aws-kfp.yaml", spec_text(glue_job))))
    kind, request = step_request(pipeline, pipeline.step("export"))
    assert kind == "spark"
    result = run_step(kind, request, params={"day": "2026-12-01"}, run_id="prefect-run-1", target="prefect")
    name = spark_job_name("aws-kfp-export", "prefect-run-1")
    assert (result["passed"], result["job_name"], result["status"]) == (True, name, "SUCCEEDED")
    assert glue_runs(glue_job)[0]["Arguments"] == {**EXPECTED_ARGUMENTS, GLUE_NAME_ARGUMENT: name}

    original = FakeJob.start_job_run

    def start_job_run(self: Any, **kwargs: Any) -> str:
        run_id = original(self, **kwargs)
        (run,) = [r for r in self.job_runs if r.job_run_id == run_id]
        run._transitions = [("STARTING", "RUNNING"), ("RUNNING", "FAILED")]
        return str(run_id)

    monkeypatch.setattr(FakeJob, "start_job_run", start_job_run)
    failing = spark_job_name("aws-kfp-export", "prefect-run-2")
    with pytest.raises(RuntimeFailure, match=rf"^Glue job run {failing} \(jr_\w+\) failed: "):
        run_step(kind, request, params={"day": "2026-12-01"}, run_id="prefect-run-2", target="prefect")


def argo_spec_argument(job: str) -> dict[str, Any]:
    """The `spec` argument the compiled Argo WorkflowTemplate gives the export step's runtime template."""
    import json

    import yaml

    result = compile_checked(check_source(Source("aws-kfp.yaml", spec_text(job))), ["argo"])
    assert result.ok, [d.format() for d in result.diagnostics]
    [template] = [d for d in yaml.safe_load_all(result.outputs[0].text) if d["kind"] == "WorkflowTemplate"]
    [dag] = [t["dag"] for t in template["spec"]["templates"] if "dag" in t]
    [task] = [t for t in dag["tasks"] if t["name"] == "export"]
    [spec] = [p["value"] for p in task["arguments"]["parameters"] if p["name"] == "spec"]
    return dict(json.loads(spec))


def test_an_argo_runtime_container_runs_the_same_glue_request(glue_job: str) -> None:
    context = {"params": {"day": "2026-12-01"}, "run_id": "argo-run-1", "run_date": "2026-12-01"}
    result = step_action(kind="spark", spec=argo_spec_argument(glue_job), context=context, target="argo")
    name = spark_job_name("aws-kfp-export", "argo-run-1")
    assert (result["passed"], result["job_name"], result["status"]) == (True, name, "SUCCEEDED")
    [run] = glue_runs(glue_job)
    assert run["Arguments"] == {**EXPECTED_ARGUMENTS, GLUE_NAME_ARGUMENT: name}
