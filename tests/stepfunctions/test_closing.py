"""A train step whose job a `.sync` Task runs ends its MLflow run through `S.close` / `S.closing` (closing.py).

The states' wiring in both query languages, at the top level and in a Parallel branch, for every service
integration that runs a train step's job; each definition also passes asl-validator. Execution: test_closing_run.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.stepfunctions.asl import compile_text, load, validate, with_targets

LANGUAGES = ("JSONPath", "JSONata")
BACKENDS = {
    "batch": "{type: aws_batch, job_queue: q, job_definition: 'd:1'}",
    "sagemaker": "{type: sagemaker, role_arn: 'arn:aws:iam::1:role/r', image: 'img:1', instance_type: ml.m5.large,"
    " output_path: 's3://b/o'}",
    "eks": "{type: kubernetes, namespace: ml, image: 'img:1'}",
    "glue": "{type: spark, platform: glue, glue: {job_name: train-job}}",
}
EKS = {"name": "c", "endpoint": "https://k.example.com", "certificate_authority": "Y2E="}


def _spec(backend: str, language: str, parallel: bool, last: bool = False, distributed: bool = False) -> str:
    """Training on backend (beside a task step when parallel), then an evaluation unless last."""
    command = "[train.py, --lr, '0.1']" if backend == "glue" else "[python, train.py]"
    nodes = "\n      distributed: {nodes: 2}" if distributed else ""
    text = (
        "pipegen: 1\nname: closing\nmlflow: {experiment: closing, tracking_uri: '${env.MLFLOW_TRACKING_URI}'}\n"
        f"backends:\n  train_on: {BACKENDS[backend]}\n  side: {BACKENDS['batch']}\n"
        "notify:\n  on_failure: [{webhook: 'https://hooks.example.com/x'}]\nsteps:\n"
        f"  - name: train\n    train:\n      backend: train_on\n      command: {command}\n      metrics: [auc]{nodes}\n"
    )
    if parallel:
        text += "  - name: side\n    after: []\n    task: {backend: side, command: [python, side.py]}\n"
    if not last:
        after = "[train, side]" if parallel else "[train]"
        text += f"  - name: quality\n    after: {after}\n    evaluate: {{run_of: train, thresholds: ['auc > 0.5']}}\n"
    options: dict[str, Any] = {"query_language": language}
    if backend == "eks":
        options["eks_cluster"] = EKS
    return with_targets(text, **options)


def _compiled(tmp_path: Path, text: str) -> tuple[dict[str, Any], Path]:
    outputs, diags = compile_text(text, tmp_path, "closing.yaml")
    assert outputs, diags
    path = tmp_path / "closing.asl.json"
    path.write_text(outputs["stepfunctions/closing.asl.json"], encoding="utf-8")
    return load(path.read_text(encoding="utf-8")), path


def _states(doc: dict[str, Any], parallel: bool) -> tuple[dict[str, Any], str]:
    """The states train's are among (the top level, or its Parallel branch), and where train goes on to."""
    if not parallel:
        return dict(doc["States"]), "quality"
    (name,) = [n for n, s in doc["States"].items() if s["Type"] == "Parallel"]
    branches = doc["States"][name]["Branches"]
    (index,) = [i for i, b in enumerate(branches) if "train" in b["States"]]
    return dict(branches[index]["States"]), f"{name}.{index}.end"


def _close_request(state: dict[str, Any]) -> dict[str, Any]:
    """The close_run request a close state sends the runtime's `step` action, its spec decoded."""
    args = dict((state.get("Parameters") or state["Arguments"])["Payload"]["args"])
    if "spec_json" in args:
        args["spec"] = json.loads(args.pop("spec_json"))
    return args


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("parallel", [False, True], ids=["top", "branch"])
def test_a_train_jobs_outcome_ends_its_run(tmp_path: Path, backend: str, language: str, parallel: bool) -> None:
    doc, path = _compiled(tmp_path, _spec(backend, language, parallel))
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    states, onward = _states(doc, parallel)
    job = states["train.job"]
    assert job["Resource"].endswith(".sync")
    # The job's Retry runs first; then every error (States.Timeout too) goes to the closing state.
    (catch,) = job["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == "train.closing"
    assert job["Next"] == "train.close"
    close, closing = states["train.close"], states["train.closing"]
    fail_route = "train.failed" if parallel else "pipegen.notify_failure"
    assert close["Next"] == onward and [c["Next"] for c in close["Catch"]] == [onward]
    assert closing["Next"] == fail_route and [c["Next"] for c in closing["Catch"]] == [fail_route]
    for state, status in ((close, "FINISHED"), (closing, "FAILED")):
        request = _close_request(state)
        assert request["kind"] == "close_run"
        # The URI as the spec writes it: the Lambda renders it as prepare did when it started the run.
        assert request["spec"] == {"status": status, "tracking_uri": "${env.MLFLOW_TRACKING_URI}"}
        mlflow_run = request.get("mlflow_run.$") or request["mlflow_run"]
        assert "prepared" in mlflow_run and "train" in mlflow_run
        # Only the Lambda service's own errors are retried: no step retries, no timeout of the step's.
        assert [r["ErrorEquals"][0] for r in state["Retry"]] == ["Lambda.ServiceException"]
        assert "TimeoutSeconds" not in state
        # A close that fails keeps the state data as it was: the job's recorded error is not replaced.
        (keep,) = state["Catch"]
        assert "Assign" not in keep and keep.get("ResultPath", "absent") in (None, "absent")
    if language == "JSONPath":
        kept = "$.failures.train" if parallel else "$.failure"
        assert catch["ResultPath"] == kept
    else:
        kept = "failures_train_D1" if parallel else "failure"
        assert catch["Assign"] == {kept: "{% $states.errorOutput %}"}
    if parallel:
        # The branch fails telling the job's Error and Cause, which the Parallel's Catch records at the top (a Fail
        # state's own error cannot be the job's: States.* names are reserved).
        fail = states["train.failed"]
        assert fail["Type"] == "Fail" and fail["Error"] == "pipegen.StepFailed"
        if language == "JSONPath":
            assert fail["CausePath"] == "States.Format('{}: {}', $.failures.train.Error, $.failures.train.Cause)"
        else:
            assert fail["Cause"] == "{% $failures_train_D1.Error & ': ' & $failures_train_D1.Cause %}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_train_step_that_ends_the_run_closes_before_the_end(tmp_path: Path, language: str) -> None:
    doc, path = _compiled(tmp_path, _spec("batch", language, parallel=False, last=True))
    assert validate(path).returncode == 0
    close = doc["States"]["train.close"]
    assert close["End"] is True
    # A close that fails still ends the run as succeeded: through the Succeed state.
    assert [c["Next"] for c in close["Catch"]] == ["pipegen.done"]
    assert doc["States"]["pipegen.done"]["Type"] == "Succeed"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("parallel", [False, True], ids=["top", "branch"])
def test_multi_node_eks_training_closes_after_its_service_is_deleted(
    tmp_path: Path, language: str, parallel: bool
) -> None:
    doc, path = _compiled(tmp_path, _spec("eks", language, parallel, distributed=True))
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    states, _ = _states(doc, parallel)
    # A Service that could not be created fails the step too: the run prepare started is ended FAILED.
    assert [c["Next"] for c in states["train.service"]["Catch"]] == ["train.closing"]
    assert [c["Next"] for c in states["train.job"]["Catch"]] == ["train.cleanup_failed"]
    assert states["train.cleanup"]["Next"] == "train.close"
    assert states["train.cleanup_failed"]["Next"] == "train.closing"
    assert states["train.closing"]["Next"] == ("train.failed" if parallel else "pipegen.notify_failure")
    if parallel:
        assert states["train.failed"]["Type"] == "Fail" and "failures" in json.dumps(states["train.failed"])


@pytest.mark.parametrize("language", LANGUAGES)
def test_task_steps_get_no_close_states(tmp_path: Path, language: str) -> None:
    """Only train steps have a run to end: a task step's job goes on as before (and its definition does not grow)."""
    plain = (
        "pipegen: 1\nname: closing\nbackends:\n"
        f"  jobs: {BACKENDS['batch']}\nsteps:\n  - name: work\n    task: {{backend: jobs, command: [python, w.py]}}\n"
    )
    doc, _ = _compiled(tmp_path, with_targets(plain, query_language=language))
    assert [s for s in doc["States"] if s.startswith("work")] == ["work"]
    assert "close_run" not in json.dumps(doc)
