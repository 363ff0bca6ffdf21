"""kubernetes steps on Prefect: the flow loads as a worker loads it, and the objects its kubernetes task sends validate
strictly against Kubernetes' published schemas (kubernetes-validate, unknown keys rejected).

No Kubernetes API server can run here: the objects are the ones the task builds (pipegen.runtime.kubernetes_job from
the module's REQUESTS), and one test runs the task in Prefect's engine against a kubeconfig whose server refuses
connections, which proves it reaches the API through prefect-kubernetes' KubernetesCredentials (and fails as it would
on an unreachable cluster).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_file
from pipegen.runtime.kubernetes_job import step_objects
from pipegen.runtime.step import decode
from tests.cases import REPO, rel
from tests.prefect.support import compile_prefect, load_module
from tests.support_tools import free_port

KUBERNETES = "1.37.0"
FEED = REPO / "specs" / "feed-ranking.yaml"
FEED_16 = REPO / "specs" / "feed-ranking-16gpu.yaml"
PARAMS = {"learning_rate": 0.01, "epochs": 10}
RUN = {"run_id": "0123456789abcdef", "experiment_id": "7"}


def built(module: Any, step: str, *, attempt: int = 1, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The objects the module's kubernetes task sends for a step, in the order it creates them."""
    return step_objects(
        decode(module.REQUESTS[step]),
        params=params or PARAMS,
        run_id="flow-run-1",
        run_date="2026-03-08",
        key="task-run-1",
        attempt=attempt,
        mlflow_run=RUN,
    )


def validate(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES, strict=True)


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_prefect(tmp_path_factory.mktemp("k8s"), FEED, FEED_16)


@pytest.fixture(autouse=True)
def _tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    # The specs' tracking_uri is ${env.MLFLOW_TRACKING_URI}: what the worker has, which the Job's pods get.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.ml-training:5000")


def test_the_flows_load_as_a_worker_loads_them(flows: Path) -> None:
    from prefect.flows import Flow, load_flow_from_entrypoint

    for name in ("feed-ranking", "feed-ranking-16gpu"):
        flow = load_flow_from_entrypoint(f"{flows / name}.py:{name.replace('-', '_')}")
        assert isinstance(flow, Flow) and flow.name == name


def test_a_single_pod_step_is_one_job_that_validates(flows: Path) -> None:
    [job] = built(load_module(flows / "feed-ranking.py"), "train")
    validate(job)
    assert job["metadata"]["name"].startswith("feed-ranking-train-") and job["metadata"]["namespace"] == "ml-training"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 7200
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "feed-trainer" and pod["nodeSelector"] == {"accelerator": "nvidia-a100"}
    [main] = pod["containers"]
    assert main["command"] == ["python", "-m", "feed.train", "--date", "2026-03-08", "--lr", "0.01", "--epochs", "10"]
    env = {e["name"]: e for e in main["env"]}
    assert env["FEATURE_STORE_TOKEN"] == {
        "name": "FEATURE_STORE_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "feature-store-token", "key": "feature_store_token"}},
    }
    assert env["MLFLOW_RUN_ID"]["value"] == RUN["run_id"] and env["MLFLOW_EXPERIMENT_ID"]["value"] == "7"
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.ml-training:5000"
    assert main["resources"] == {
        "limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
        "requests": {"cpu": "8", "memory": "32Gi"},
    }


def test_a_16_node_step_is_its_headless_service_then_an_indexed_job(flows: Path) -> None:
    service, job = built(load_module(flows / "feed-ranking-16gpu.py"), "train")
    validate(service)
    validate(job)
    name = job["metadata"]["name"]
    assert service["kind"] == "Service" and service["metadata"]["name"] == name
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["selector"] == {
        "batch.kubernetes.io/job-name": name
    }
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 16, 16)
    assert spec["activeDeadlineSeconds"] == 8 * 3600
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == name
    assert pod["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    [node] = pod["containers"]
    env = {e["name"]: e for e in node["env"]}
    assert env["MASTER_ADDR"]["value"] == f"{name}-0.{name}"
    assert env["NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"].endswith(
        "['batch.kubernetes.io/job-completion-index']"
    )
    assert env["MLFLOW_RUN_ID"]["value"] == RUN["run_id"]  # every rank sees the run; rank 0 logs to it
    assert node["command"][:3] == ["torchrun", "--nnodes=16", "--nproc-per-node=8"]
    assert node["command"][-9:] == [
        "python",
        "-m",
        "feed.train",
        "--date",
        "2026-03-08",
        "--lr",
        "0.01",
        "--epochs",
        "10",
    ]
    # Pod hostnames `<job>-<index>` stay DNS labels up to the spec's 1,000 nodes.
    assert len(f"{name}-999") <= 63


def test_startup_timeout_reaches_the_task_and_is_not_warned_about(flows: Path) -> None:
    """The 16-node spec's startup_timeout: 20m is the task's start-up bound (seconds), no longer a PG702 warning."""
    request = decode(load_module(flows / "feed-ranking-16gpu.py").REQUESTS["train"])
    assert request["startup_timeout"] == 1200 and request["plan"]["deadline_seconds"] == 8 * 3600
    assert "startup_timeout" not in decode(load_module(flows / "feed-ranking.py").REQUESTS["train"])
    result = compile_checked(check_file(rel(FEED_16)), ["prefect"])
    assert [d.format() for d in result.diagnostics if "startup_timeout" in d.message] == []


def test_names_are_the_same_for_an_attempt_and_new_for_a_retry(flows: Path) -> None:
    module = load_module(flows / "feed-ranking-16gpu.py")
    first, again, retry = built(module, "train"), built(module, "train"), built(module, "train", attempt=2)
    assert first == again
    assert first[1]["metadata"]["name"].endswith("-1") and retry[1]["metadata"]["name"].endswith("-2")
    assert first[1]["metadata"]["name"][:-2] == retry[1]["metadata"]["name"][:-2]


def test_a_misspelt_key_in_what_the_task_sends_is_rejected(flows: Path) -> None:
    """The validation above can fail: the same Job with one key misspelt does not pass."""
    [job] = built(load_module(flows / "feed-ranking.py"), "train")
    broken = copy.deepcopy(job)
    broken["spec"]["activeDeadlineSecond"] = broken["spec"].pop("activeDeadlineSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


HOSTILE = """pipegen: 1
name: hostile
params:
  note: "a$(HOME)b {{ prefect.variables.x }} {% raw %} $$"
backends:
  k:
    type: kubernetes
    image: img:1
    env: {NOTE: "$(PATH) {{ $HOME }} ${params.note}"}
steps:
  - name: work
    task:
      backend: k
      command: [sh, -c, "echo $(HOSTNAME) {{ flow_run.id }}", "${params.note}"]
      distributed: {nodes: 2, launcher: none}
"""


def test_spec_text_reaches_the_pods_as_written(tmp_path: Path) -> None:
    """Neither the kubelet's `$(VAR)` nor Prefect's `{{ }}` rewrites spec text: every `$` of it is doubled for the
    kubelet (which reads `$$` as `$`), braces pass untouched, and prefect.yaml holds none of it."""
    spec = tmp_path / "hostile.yaml"
    spec.write_text(HOSTILE, encoding="utf-8")
    out = compile_prefect(tmp_path / "out", spec)
    note = "a$(HOME)b {{ prefect.variables.x }} {% raw %} $$"
    for obj in (objects := built(load_module(out / "hostile.py"), "work", params={"note": note})):
        validate(obj)
    [node] = objects[1]["spec"]["template"]["spec"]["containers"]
    doubled = note.replace("$", "$$")
    assert node["command"] == ["sh", "-c", "echo $$(HOSTNAME) {{ flow_run.id }}", doubled]
    env = {e["name"]: e.get("value") for e in node["env"]}
    assert env["NOTE"] == "$$(PATH) {{ $$HOME }} " + doubled
    assert "echo" not in (out / "prefect.yaml").read_text(encoding="utf-8")


@pytest.mark.usefixtures("prefect_harness")
def test_the_task_calls_the_kubernetes_api_in_prefects_engine(
    flows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 16-node step's task in Prefect's engine, against a kubeconfig whose API server refuses connections: it gets
    as far as creating the headless Service, and fails there with the client's connection error."""
    from prefect import flow

    port = free_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: here\n"
        f"clusters: [{{name: here, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: me, user: {token: not-a-secret}}]\n"
        "contexts: [{name: here, context: {cluster: here, user: me}}]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    module = load_module(flows / "feed-ranking-16gpu.py")
    task = module._kubernetes_job.with_options(retries=0)

    @flow(name="k8s-task")
    def one_step() -> Any:
        return task("train", module.REQUESTS["train"], PARAMS, "flow-run-1", "2026-03-08", RUN)

    state = one_step(return_state=True)
    assert state.is_failed(), state
    with pytest.raises(OSError, match=f"Cannot connect to host 127.0.0.1:{port}"):
        state.result()
