"""A training job Argo runs itself (a kubernetes container, a resource template) ends its MLflow run as the job ended:
lifecycle hooks on its task call the shared close template (argo/closing.py), FAILED when the task ends Failed or
Error, FINISHED when it Succeeded, and a run the job ended itself keeps its status."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from pipegen.targets.argo.closing import CLOSE_ARGS, CLOSE_CODE
from pipegen.targets.argo.size import estimated_workflow
from tests.argo.executor import Run, run_template, run_workflow
from tests.argo.lint import lint_manifest
from tests.argo.strict import documents, validate_document
from tests.cases import GOLDEN
from tests.support_mlflow import MlflowServer

IMAGE = "registry.example.com/ml/pipegen-runtime:0.1"
# Literal text the kubelet and Argo must leave alone ('{{' is refused by checks.containers: Argo has no escape).
URI = "https://mlflow.example.com/a$(HOME)/q\"'\\ ünï ✓/${params.tenant}"


def _spec() -> dict[str, Any]:
    k8s = {"type": "kubernetes", "namespace": "ml", "image": "registry.example.com/train:1"}
    return {
        "pipegen": 1,
        "name": "closing",
        "params": {"tenant": "t1"},
        "defaults": {"retries": 2},
        "mlflow": {"tracking_uri": URI, "experiment": "closing"},
        "backends": {
            "gpu": k8s,
            "nodes": {**k8s, "distributed_runtime": "indexed_job"},
            "jobset": {**k8s, "distributed_runtime": "jobset"},
            "spark": {
                "type": "spark",
                "platform": "kubernetes",
                "kubernetes": {"image": "registry.example.com/spark:4", "spark_version": "4.0.1", "namespace": "ml"},
            },
            "here": {"type": "local"},
        },
        "steps": [
            {"name": "prep", "task": {"backend": "gpu", "command": ["prep"]}},
            {"name": "fit", "train": {"backend": "gpu", "command": ["fit"], "metrics": ["m"]}},
            {"name": "fit_spark", "train": {"backend": "spark", "command": ["local:///fit.py"], "metrics": ["m"]}},
            {
                "name": "fit_nodes",
                "train": {"backend": "nodes", "command": ["fit"], "metrics": ["m"], "distributed": {"nodes": 2}},
            },
            {
                "name": "fit_js",
                "train": {"backend": "jobset", "command": ["fit"], "metrics": ["m"], "distributed": {"nodes": 2}},
            },
            {"name": "fit_local", "train": {"backend": "here", "command": ["fit"], "metrics": ["m"]}},
        ],
        "targets": {
            "argo": {"runtime_image": IMAGE, "mlflow_secret": {"name": "mlf", "keys": ["MLFLOW_TRACKING_TOKEN"]}}
        },
    }


def _compile(spec: dict[str, Any]) -> list[dict[str, Any]]:
    result = compile_checked(check_source(Source("closing.yaml", json.dumps(spec, ensure_ascii=False))), ["argo"])
    assert result.ok, [d.format() for d in result.diagnostics]
    return documents(result.outputs[0].text)


def _tasks(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    dag = next(t for t in doc["spec"]["templates"] if t["name"] == "pipegen-dag")
    return {t["name"]: t for t in dag["dag"]["tasks"]}


def _hook(task: str, run_of: str, status: str, phases: tuple[str, ...]) -> dict[str, Any]:
    return {
        "arguments": {
            "parameters": [
                {"name": "mlflow-run", "value": f"{{{{tasks.pipegen-run-{run_of}.outputs.parameters.result}}}}"},
                {"name": "status", "value": status},
            ]
        },
        "expression": " || ".join(f'tasks["{task}"].status == "{p}"' for p in phases),
        "template": "pipegen-close-run",
    }


def _both(task: str) -> dict[str, Any]:
    return {
        "close-failed": _hook(task, task, "FAILED", ("Failed", "Error")),
        "close-finished": _hook(task, task, "FINISHED", ("Succeeded",)),
    }


def test_the_tasks_of_jobs_argo_runs_get_the_hooks() -> None:
    [doc] = _compile(_spec())
    validate_document(doc)
    assert lint_manifest([doc]) == []
    hooked = {name: t["hooks"] for name, t in _tasks(doc).items() if "hooks" in t}
    assert hooked == {
        "fit": _both("fit"),
        "fit-spark": _both("fit-spark"),
        # No Service, no job: the run ends FAILED; a created Service ends nothing (the Job's task does).
        "pipegen-svc-fit-nodes": {
            "close-failed": _hook("pipegen-svc-fit-nodes", "fit-nodes", "FAILED", ("Failed", "Error"))
        },
        "fit-nodes": _both("fit-nodes"),
        "fit-js": _both("fit-js"),
    }
    # prep trains nothing; fit_local runs in the runtime container, which ends its run itself (runtime.step._closing).


def test_one_close_template_without_retries_or_outputs() -> None:
    [doc] = _compile(_spec())
    templates = [t for t in doc["spec"]["templates"] if t["name"].startswith("pipegen-close")]
    assert templates == [
        {
            "name": "pipegen-close-run",
            "container": {
                "image": IMAGE,
                "command": ["python", "-c", CLOSE_CODE],
                "args": [
                    "close_run",
                    '{"run": {{inputs.parameters.mlflow-run}}, "status": "{{inputs.parameters.status}}"}',
                ],
                "env": [
                    {
                        "name": "MLFLOW_TRACKING_TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": "mlf", "key": "MLFLOW_TRACKING_TOKEN"}},
                    },
                    # The spec's text as start_run reads it: '$' doubled for the kubelet, the parameter as Argo's.
                    {
                        "name": "MLFLOW_TRACKING_URI",
                        "value": "https://mlflow.example.com/a$$(HOME)/q\"'\\ ünï ✓/"
                        "{{=replace(workflow.parameters.tenant, '$', '$$')}}",
                    },
                ],
            },
            "inputs": {"parameters": [{"name": "mlflow-run"}, {"name": "status"}]},
        }
    ]
    assert templates[0]["container"]["args"][1] == CLOSE_ARGS


def test_a_whole_secret_uri_is_a_secret_ref_and_the_image_variable_is_left_alone() -> None:
    spec = _spec()
    spec["mlflow"]["tracking_uri"] = "${secret.mlflow_uri}"
    [doc] = _compile(spec)
    [close] = [t for t in doc["spec"]["templates"] if t["name"] == "pipegen-close-run"]
    assert {
        "name": "MLFLOW_TRACKING_URI",
        "valueFrom": {"secretKeyRef": {"name": "mlflow-uri", "key": "mlflow_uri"}},
    } in close["container"]["env"]
    spec["mlflow"]["tracking_uri"] = "${env.MLFLOW_TRACKING_URI}"
    [doc] = _compile(spec)
    [close] = [t for t in doc["spec"]["templates"] if t["name"] == "pipegen-close-run"]
    assert [e["name"] for e in close["container"]["env"]] == ["MLFLOW_TRACKING_TOKEN"]


def test_a_uri_reading_the_run_date_gets_it_as_an_input() -> None:
    spec = _spec()
    spec["mlflow"]["tracking_uri"] = "https://mlflow.example.com/${run.date}"
    [doc] = _compile(spec)
    assert lint_manifest([doc]) == []
    args = _tasks(doc)["fit"]["hooks"]["close-failed"]["arguments"]["parameters"]
    assert {
        "name": "run-date",
        "value": "{{=jsonpath(tasks['pipegen-context'].outputs.parameters.result, '$.run_date')}}",
    } in args


def test_a_misspelt_hook_field_is_rejected() -> None:
    [doc, *_] = documents((GOLDEN / "argo" / "feed-ranking.yaml").read_text())
    validate_document(doc)
    for bad in ("expresion", "template_ref", "args"):
        broken = copy.deepcopy(doc)
        _tasks(broken)["train"]["hooks"]["close-failed"][bad] = "x"
        with pytest.raises(ValidationError, match=bad):
            validate_document(broken)


@pytest.mark.parametrize(
    ("breaker", "expected"),
    [
        (lambda h: h.update(template="pipegen-close"), "uses template 'pipegen-close', which does not exist"),
        (lambda h: h.update(expression='tasks["trainer"].status == "Failed"'), "reads task 'trainer'"),
        (lambda h: h.update(expression='tasks["train"].status == "Crashed"'), "is not tasks["),
        (lambda h: h["arguments"]["parameters"].pop(), "passes ['mlflow-run'] to 'pipegen-close-run'"),
    ],
)
def test_the_lint_rejects_a_broken_hook(breaker: Any, expected: str) -> None:
    docs = documents((GOLDEN / "argo" / "feed-ranking.yaml").read_text())
    breaker(_tasks(docs[0])["train"]["hooks"]["close-failed"])
    problems = lint_manifest(docs)
    assert any(expected in p for p in problems), problems


def test_the_size_estimate_counts_the_hook_a_succeeded_run_runs() -> None:
    [doc, *_] = documents((GOLDEN / "argo" / "feed-ranking.yaml").read_text())
    nodes = estimated_workflow(doc)["status"]["nodes"]
    hooked = [n for n in nodes.values() if n.get("nodeFlag", {}).get("hooked")]
    assert [n["name"] for n in hooked] == ["feed-ranking-x7k2q.train.hooks.close-finished"]
    [retry] = [n for n in nodes.values() if n["name"] == "feed-ranking-x7k2q.train"]
    assert retry["type"] == "Retry" and hooked[0]["id"] in retry["children"]
    assert hooked[0]["inputs"]["parameters"][1] == {"name": "status", "value": "FINISHED"}


# The training job: logs a metric into its run, then ends as argv[1] says.
JOB = """\
import os, sys
import mlflow
c = mlflow.MlflowClient()
run = os.environ["MLFLOW_RUN_ID"]
c.log_metric(run, "m", 0.5)
if sys.argv[1] == "crash":
    os._exit(3)  # OOM-killed, lost node: nothing ends the run
if sys.argv[1] == "killed":
    c.set_terminated(run, "KILLED")  # the job ended its run itself: its status stands
"""


def _run_spec() -> dict[str, Any]:
    return {
        "pipegen": 1,
        "name": "closing-run",
        "params": {"mode": "ok"},
        "mlflow": {"tracking_uri": "${env.MLFLOW_TRACKING_URI}", "experiment": "argo-closing"},
        "backends": {"gpu": {"type": "kubernetes", "namespace": "ml", "image": "registry.example.com/train:1"}},
        "steps": [{"name": "fit", "train": {"backend": "gpu", "command": ["python", "-c", JOB, "${params.mode}"]}}],
        "targets": {
            "argo": {"runtime_image": IMAGE, "mlflow_config_map": {"name": "mlflow", "keys": ["MLFLOW_TRACKING_URI"]}}
        },
    }


@pytest.mark.parametrize(
    ("mode", "phase", "hook", "status"),
    [
        ("crash", "Failed", "close-failed", "FAILED"),
        ("ok", "Succeeded", "close-finished", "FINISHED"),
        ("killed", "Succeeded", "close-finished", "KILLED"),
    ],
)
def test_the_containers_end_the_run_as_the_job_ended(
    tmp_path: Path, mlflow_server: MlflowServer, mode: str, phase: str, hook: str, status: str
) -> None:
    """The manifest's own containers (start_run, the job, the hook's close_run) against a real MLflow server."""
    import mlflow

    [doc] = _compile(_run_spec())
    run = Run(
        {"mode": mode}, config_maps={"mlflow": {"MLFLOW_TRACKING_URI": mlflow_server.uri}}, name=f"closing-{mode}"
    )
    assert run_workflow(run, doc, tmp_path) == ("Failed" if phase == "Failed" else "Succeeded"), run.logs
    # The hook's outcome is not the step's: only the job's phase decides the workflow's.
    assert run.phases == {"pipegen-run-fit": "Succeeded", "fit": phase, f"fit.hooks.{hook}": "Succeeded"}
    run_id = json.loads(run.results["pipegen-run-fit"])["run_id"]
    got = mlflow.MlflowClient(tracking_uri=mlflow_server.uri).get_run(run_id)
    assert got.info.status == status
    assert got.data.metrics == {"m": 0.5}


def test_an_unreachable_mlflow_leaves_the_hook_succeeded(tmp_path: Path) -> None:
    """The close container reports the failure in its log and exits 0: a hook ending Error would fail the DAG."""
    [doc] = _compile(_run_spec())
    [close] = [t for t in doc["spec"]["templates"] if t["name"] == "pipegen-close-run"]
    run = Run({}, config_maps={"mlflow": {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}})
    env = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
    close = copy.deepcopy(close)
    close["container"]["env"] += [{"name": k, "value": v} for k, v in env.items()]
    arguments = {"mlflow-run": '{"experiment_id": "1", "run_id": "0123"}', "status": "FAILED"}
    assert run_template(run, close, tmp_path, arguments=arguments) == 0
    assert "closing run 0123" in run.logs["pipegen-close-run"], run.logs
