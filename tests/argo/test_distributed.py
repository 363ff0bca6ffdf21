"""Multi-node steps on Argo (issue 20): the 16-node spec's headless Service and Indexed Job, or its JobSet, are resource
templates whose manifests, once Argo has substituted them, are objects their APIs accept strictly; the nodes find
pod 0 and each other by the names the run gives them; the conditions Argo's executor evaluates succeed and fail on
the objects' real status shapes; spec text and submitted values reach every node as written; a TrainJob is a
located PG602 naming jobset."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_file, check_source
from pipegen.loader import Source
from tests.argo.conditions import outcome
from tests.argo.executor import kubelet
from tests.argo.expressions import substitute
from tests.argo.lint import UID, lint_manifest, validate_object
from tests.argo.strict import documents, validate_document
from tests.argo.test_resources import SUBMITTED, TEXT
from tests.cases import REPO, rel
from tests.hostile import literal_value

SPEC_16 = REPO / "specs" / "feed-ranking-16gpu.yaml"
LOCATED = re.compile(r"^\S+:\d+:\d+: error\[PG602\]: .+; hint: .+$")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
INPUTS = {"run-date": "2026-03-08", "mlflow-experiment-id": "7", "mlflow-run-id": "abc"}
# What the API server and the controllers give a run's objects: generated names, the pods' env.
JOB = "feed-ranking-16gpu-train-x7k2q"


def _manifest(text: str, name: str = "spec.yaml") -> list[dict[str, Any]]:
    result = compile_checked(check_source(Source(name, text)), ["argo"])
    assert result.ok, [d.format() for d in result.diagnostics]
    docs = documents(result.outputs[0].text)
    for doc in docs:
        validate_document(doc)
    assert lint_manifest(docs) == []
    return docs


def _objects(docs: list[dict[str, Any]], params: dict[str, str]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Each resource template's `resource` and its object as Argo creates it (this run's values substituted)."""
    scope = {
        "workflow.parameters": params,
        "workflow.name": "feed-x1",
        "workflow.uid": UID,
        "inputs.parameters": INPUTS,
    }
    out = {}
    for template in docs[0]["spec"]["templates"]:
        if "resource" in template:
            obj = json.loads(substitute(template["resource"]["manifest"], scope))
            validate_object(obj)
            out[template["name"]] = (template["resource"], obj)
    return out


def _pod_env(container: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
    """The container's env as the kubelet sets it: fieldRefs from the pod, `$(VAR)` of earlier variables expanded."""
    env: dict[str, str] = {}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = kubelet(entry["value"], env)
        elif "fieldRef" in entry["valueFrom"]:
            path = entry["valueFrom"]["fieldRef"]["fieldPath"]
            key = re.fullmatch(r"metadata\.(?:labels|annotations)\['(.+)'\]", path)
            assert key is not None, path
            env[entry["name"]] = labels[key.group(1)]
    return env


def _dag(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in docs[0]["spec"]["templates"][0]["dag"]["tasks"]}


def test_the_16_node_spec_creates_its_headless_service_then_its_indexed_job() -> None:
    checked = check_file(rel(SPEC_16))
    result = compile_checked(checked, ["argo"])
    assert result.ok, [d.format() for d in result.diagnostics]
    docs = documents(result.outputs[0].text)
    assert lint_manifest(docs) == []
    tasks = _dag(docs)
    assert tasks["pipegen-svc-train"]["depends"] == "pipegen-run-train.Succeeded"
    assert tasks["train"]["depends"] == "pipegen-svc-train.Succeeded"
    templates = {t["name"]: t for t in docs[0]["spec"]["templates"]}
    # The Service is made once per run (a retried create would find it); the Job's template retries and times out.
    assert "retryStrategy" not in templates["pipegen-svc-train"]
    assert templates["train"]["retryStrategy"]["limit"] == 2 and templates["train"]["activeDeadlineSeconds"] == 28800
    objects = _objects(docs, {"learning_rate": "0.01", "epochs": "10"})
    (_, service), (resource, job) = objects["pipegen-svc-train"], objects["train"]
    assert (service["kind"], job["kind"]) == ("Service", "Job")
    pod = job["spec"]["template"]
    # The Service is the pods' subdomain and selects exactly this run's pods of this step.
    assert pod["spec"]["subdomain"] == service["metadata"]["name"] and DNS_1035.match(service["metadata"]["name"])
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"]["pipegen.dev/run"] == UID
    assert job["metadata"]["generateName"] == "feed-ranking-16gpu-train-" and "name" not in job["metadata"]
    labels = {**pod["metadata"]["labels"], "batch.kubernetes.io/job-name": JOB}
    labels["batch.kubernetes.io/job-completion-index"] = "3"
    [node] = pod["spec"]["containers"]
    env = _pod_env(node, labels)
    assert env["MASTER_ADDR"] == f"{JOB}-0.{service['metadata']['name']}"
    assert (env["NODE_RANK"], env["NNODES"], env["NPROC_PER_NODE"], env["MASTER_PORT"]) == ("3", "16", "8", "29500")
    argv = [kubelet(word, env) for word in node["command"]]
    assert argv[:8] == [
        "torchrun",
        "--nnodes=16",
        "--nproc-per-node=8",
        "--node-rank=3",
        f"--master-addr={JOB}-0.{service['metadata']['name']}",
        "--master-port=29500",
        "--max-restarts=0",
        "--no-python",
    ]
    assert argv[8:] == ["python", "-m", "feed.train", "--date", "2026-03-08", "--lr", "0.01", "--epochs", "10"]
    assert env["MLFLOW_RUN_ID"] == "abc" and env["MLFLOW_EXPERIMENT_ID"] == "7"
    assert (resource["successCondition"], resource["failureCondition"]) == (
        "status.succeeded > 15",
        "status.failed > 0",
    )


# Job statuses as the Job controller writes them (batch/v1 JobStatus; an Indexed Job of 16 completions).
JOB_STATUSES = {
    "running": ({"active": 16, "ready": 16, "startTime": "2026-03-08T02:00:00Z", "terminating": 0}, "waiting"),
    "15 of 16 done": ({"active": 1, "succeeded": 15, "completedIndexes": "0-14", "ready": 1}, "waiting"),
    "complete": (
        {
            "succeeded": 16,
            "completedIndexes": "0-15",
            "completionTime": "2026-03-08T07:00:00Z",
            "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}],
        },
        "succeeded",
    ),
    "one node failed": (
        {"active": 15, "failed": 1, "conditions": [{"type": "FailureTarget", "status": "True"}]},
        "failed",
    ),
    "deadline": (
        {"failed": 16, "conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]},
        "failed",
    ),
}
# JobSet statuses as the JobSet controller writes them (jobset.x-k8s.io/v1alpha2 JobSetStatus).
JOBSET_STATUSES = {
    "running": ({"replicatedJobsStatus": [{"name": "node", "active": 1, "ready": 1, "succeeded": 0}]}, "waiting"),
    "completed": (
        {"terminalState": "Completed", "conditions": [{"type": "Completed", "status": "True"}]},
        "succeeded",
    ),
    "failed": ({"terminalState": "Failed", "conditions": [{"type": "Failed", "status": "True"}]}, "failed"),
}


@pytest.mark.parametrize("state", sorted(JOB_STATUSES))
def test_the_indexed_job_step_ends_with_the_job(state: str) -> None:
    docs = documents((REPO / "golden" / "argo" / "feed-ranking-16gpu.yaml").read_text())
    resource, job = _objects(docs, {"learning_rate": "0.01", "epochs": "10"})["train"]
    status, expected = JOB_STATUSES[state]
    assert outcome(resource, {**job, "status": status}) == expected


def _jobset_spec() -> str:
    text = SPEC_16.read_text()
    assert "distributed_runtime: indexed_job" in text
    return text.replace("distributed_runtime: indexed_job", "distributed_runtime: jobset")


def test_a_jobset_step_is_one_resource_template_whose_nodes_find_pod_0_by_the_jobsets_name() -> None:
    docs = _manifest(_jobset_spec(), "feed-ranking-16gpu.yaml")
    assert "pipegen-svc-train" not in _dag(docs)
    objects = _objects(docs, {"learning_rate": "0.01", "epochs": "10"})
    resource, jobset = objects["train"]
    assert jobset["kind"] == "JobSet" and jobset["metadata"]["generateName"] == "feed-ranking-16gpu-train-"
    [replicated] = jobset["spec"]["replicatedJobs"]
    pod = replicated["template"]["spec"]["template"]
    [node] = pod["spec"]["containers"]
    labels = {"jobset.sigs.k8s.io/jobset-name": JOB, "batch.kubernetes.io/job-completion-index": "0"}
    env = _pod_env(node, labels)
    # The JobSet controller names pod i `<jobset>-node-0-<i>` in the headless Service named after the JobSet.
    assert env["MASTER_ADDR"] == f"{JOB}-node-0-0.{JOB}"
    for state, (status, expected) in JOBSET_STATUSES.items():
        assert outcome(resource, {**jobset, "status": status}) == expected, state


def test_a_trainjob_or_a_multi_node_step_off_kubernetes_is_a_located_pg602() -> None:
    text = SPEC_16.read_text().replace("distributed_runtime: indexed_job", "distributed_runtime: trainjob")
    result = compile_checked(check_source(Source("t.yaml", text)), ["argo"])
    errors = [d for d in result.diagnostics if d.severity.name == "ERROR"]
    assert [e.code for e in errors] == ["PG602"] and LOCATED.match(errors[0].format())
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "distributed_runtime: trainjob" in t)
    assert errors[0].location is not None and errors[0].location.line == line
    assert "conditions" in errors[0].message and errors[0].hint is not None and "jobset" in errors[0].hint
    batch = """\
pipegen: 1
name: b
backends:
  b: {type: aws_batch, job_queue: q, job_definition: d}
targets:
  argo: {runtime_image: "runtime:1"}
steps:
  - name: t
    task: {backend: b, command: [x], distributed: {nodes: 2}}
"""
    result = compile_checked(check_source(Source("b.yaml", batch)), ["argo"])
    [error] = [d for d in result.diagnostics if d.severity.name == "ERROR"]
    assert error.code == "PG602" and error.location is not None and error.location.line == 9
    assert "kubernetes backends only" in error.message


NODES = """\
pipegen: 1
name: nodes
params: {{p: {t}}}
mlflow: {{tracking_uri: {uri}}}
backends:
  k:
    type: kubernetes
    namespace: ml
    image: "train:1"
    distributed_runtime: {runtime}
    tolerations: [{{key: gpu, operator: Exists, effect: NoSchedule}}]
targets:
  argo: {{runtime_image: "runtime:1"}}
steps:
  - name: fit
    train:
      backend: k
      command: [python, {t}, "${{params.p}}", "d=${{run.date}} ${{params.p}}!", "${{run.id}}"]
      env: {{NOTE: {t}, P: "${{params.p}}"}}
      distributed: {{nodes: 2, procs_per_node: 1, launcher: none}}
"""


@pytest.mark.parametrize("runtime", ["indexed_job", "jobset"])
def test_spec_text_and_submitted_values_reach_every_node_as_written(runtime: str) -> None:
    t = json.dumps(TEXT, ensure_ascii=False)
    uri = json.dumps("http://mlflow/" + TEXT.replace("\n", " "), ensure_ascii=False)
    docs = _manifest(NODES.format(t=t, uri=uri, runtime=runtime))
    _, obj = _objects(docs, {"p": SUBMITTED})["fit"]
    if obj["kind"] == "Job":
        pod = obj["spec"]["template"]
        labels = {"batch.kubernetes.io/job-name": "nodes-fit-x1", "batch.kubernetes.io/job-completion-index": "1"}
    else:
        pod = obj["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]
        labels = {"jobset.sigs.k8s.io/jobset-name": "nodes-fit-x1", "batch.kubernetes.io/job-completion-index": "1"}
    [node] = pod["spec"]["containers"]
    env = _pod_env(node, labels)
    text = literal_value(TEXT)
    assert [kubelet(w, env) for w in node["command"]] == [
        "python",
        text,
        SUBMITTED,
        f"d=2026-03-08 {SUBMITTED}!",
        "feed-x1",
    ]
    assert (env["NOTE"], env["P"]) == (text, SUBMITTED)
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow/" + text.replace("\n", " ")
    assert pod["spec"]["tolerations"] == [{"effect": "NoSchedule", "key": "gpu", "operator": "Exists"}]


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        ("Job", '"completionMode"', '"completionMod"'),
        ("Service", '"publishNotReadyAddresses"', '"publishNotReadyAdresses"'),
        ("JobSet", '"replicatedJobs"', '"replicatedJob"'),
    ],
)
def test_a_misspelt_field_in_a_node_object_is_rejected(kind: str, old: str, new: str) -> None:
    if kind == "JobSet":
        docs = _manifest(_jobset_spec(), "feed-ranking-16gpu.yaml")
    else:
        docs = documents((REPO / "golden" / "argo" / "feed-ranking-16gpu.yaml").read_text())
    broken = copy.deepcopy(docs)
    [template] = [
        t for t in broken[0]["spec"]["templates"] if f'"kind": "{kind}"' in t.get("resource", {}).get("manifest", "")
    ]
    assert old in template["resource"]["manifest"]
    template["resource"]["manifest"] = template["resource"]["manifest"].replace(old, new, 1)
    assert any("not an object its API accepts" in p for p in lint_manifest(broken))


def test_a_condition_on_a_conditions_array_is_what_argo_cannot_parse() -> None:
    """Why a TrainJob is refused: its end is only in status.conditions, and a gjson query there is no label key."""
    docs = copy.deepcopy(documents((REPO / "golden" / "argo" / "feed-ranking-16gpu.yaml").read_text()))
    [template] = [t for t in docs[0]["spec"]["templates"] if t["name"] == "train"]
    template["resource"]["successCondition"] = 'status.conditions.#(type=="Complete").status == True'
    assert any("successCondition is not what Argo's executor parses" in p for p in lint_manifest(docs))


SKIPPED = """\
pipegen: 1
name: skip
backends:
  k: {type: kubernetes, namespace: ml, image: "train:1"}
targets:
  argo: {runtime_image: "runtime:1"}
steps:
  - name: first
    train: {backend: k, command: [python, a.py], metrics: [m]}
  - name: judge
    evaluate: {run_of: first, thresholds: ["m > 0.5"], on_fail: skip}
  - name: wide
    task: {backend: k, command: [python, b.py], distributed: {nodes: 2}}
"""


def test_a_skipped_multi_node_step_creates_no_service_either() -> None:
    tasks = _dag(_manifest(SKIPPED))
    assert tasks["wide"]["when"] == tasks["pipegen-svc-wide"]["when"]
    assert "tasks['judge']" in tasks["wide"]["when"]
    assert tasks["pipegen-svc-wide"]["depends"] == "judge.Succeeded"
