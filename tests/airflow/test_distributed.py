"""A multi-node step on Airflow (issue 20): the DAG of specs/feed-ranking-16gpu.yaml loads, and the headless Service
and Indexed Job its tasks would create (built as the operators build them, after Airflow renders the tasks) validate
strictly against Kubernetes 1.37 and find each other: pod 0's DNS name is MASTER_ADDR on every node."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.airflow.test_hostile_fields import CORE, LEAK
from tests.airflow.test_template_injection import strings
from tests.cases import REPO
from tests.hostile import dump, hostile_spec

SPEC_16 = REPO / "specs" / "feed-ranking-16gpu.yaml"
RUN_ID = "scheduled__2026-01-02T02:00:00+00:00"


def load(dags_folder: Path, name: str, text: str) -> Any:
    """The DAG compiled from text, as Airflow's DagBag loads it."""
    from airflow.dag_processing.dagbag import DagBag

    result = compile_checked(check_source(Source(f"{name}.yaml", text)), ["airflow"])
    assert result.ok, [d.format() for d in result.diagnostics]
    (dags_folder / f"{name}.py").write_text(result.outputs[0].text, encoding="utf-8")
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    return bag.dags[name]


def render(dag: Any, task_id: str, run_id: str = RUN_ID, params: dict[str, Any] | None = None) -> Any:
    """The task with its templated fields rendered as a worker renders them (macros, params, the run's XComs)."""
    from airflow.sdk.execution_time.context import MacrosAccessor

    task = dag.get_task(task_id)
    logical = datetime(2026, 1, 2, 2, tzinfo=UTC)
    context = {
        "dag_run": SimpleNamespace(logical_date=logical, run_after=logical),
        "run_id": run_id,
        "params": params if params is not None else dict(dag.params),
        "macros": MacrosAccessor(),
        "ti": SimpleNamespace(
            xcom_pull=lambda *a, **k: {"run_id": "r1", "experiment_id": "e1"},
            dag_id=dag.dag_id,
            task_id=task_id,
            map_index=-1,
            try_number=1,
        ),
        "dag": dag,
        "task": task,
    }
    task.render_template_fields(context, jinja_env=dag.get_template_env())
    return task, context


def service_of(task: Any) -> dict[str, Any]:
    """The Service KubernetesCreateResourceOperator would create (its yaml_conf, rendered)."""
    import yaml

    docs = list(yaml.safe_load_all(task.yaml_conf))
    assert len(docs) == 1
    service: dict[str, Any] = docs[0]
    return service


def job_of(task: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The Job KubernetesJobOperator would create: its own build_job_request_obj, serialized as the client sends it."""
    from kubernetes.client import ApiClient

    job: dict[str, Any] = ApiClient().sanitize_for_serialization(task.build_job_request_obj(context))
    return job


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A client configuration (never contacted) for kubernetes_default: building a pod asks the hook whether it
    runs in a cluster. Given through the connection (kube_config_path): the client reads KUBECONFIG once, at import."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config), encoding="utf-8")
    connect(monkeypatch, "kubernetes_default", path)
    return path


def connect(monkeypatch: pytest.MonkeyPatch, conn_id: str, config: Path) -> None:
    """The Airflow connection conn_id, to the cluster in the kubeconfig file config."""
    conn = {"conn_type": "kubernetes", "extra": {"kube_config_path": str(config)}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def kubelet_expand(text: str, env: dict[str, str]) -> str:
    """What the kubelet makes of $(VAR) and $$ in a command word or env value."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]) if m[1] else "$", text)


def test_the_16_node_dag_creates_a_service_and_an_indexed_job_that_validate_and_meet(dags_folder: Path) -> None:
    dag = load(dags_folder, "feed-ranking-16gpu", SPEC_16.read_text(encoding="utf-8"))
    assert {"train_service", "train", "train_cleanup"} <= set(dag.task_ids)
    cleanup = dag.get_task("train_cleanup")
    # The Service goes whatever the Job's outcome: a teardown of its setup, not waited for by the next steps.
    assert cleanup.is_teardown and dag.get_task("train_service").is_setup
    assert cleanup.trigger_rule == "all_done_setup_success"
    assert "train" in dag.get_task("quality").upstream_task_ids
    assert "train_cleanup" not in dag.get_task("quality").upstream_task_ids

    setup, _ = render(dag, "train_service")
    service = service_of(setup)
    kubernetes_validate.validate(service, "1.37.0", strict=True)
    assert service_of(render(dag, "train_cleanup")[0]) == service  # deletes what it made
    assert service["spec"]["clusterIP"] == "None"

    task, context = render(dag, "train")
    job = job_of(task, context)
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (
        "Indexed",
        16,
        16,
        0,
    )
    assert spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["containerName"] == "base"
    assert spec["activeDeadlineSeconds"] == 8 * 3600
    pod = spec["template"]["spec"]
    name = service["metadata"]["name"]
    assert pod["subdomain"] == name
    labels = spec["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    assert pod["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert task.startup_timeout_seconds == 1200

    # Pod 0's address, as every node's kubelet expands it: the Job's name comes from the pod's own label.
    job_name = job["metadata"]["name"]
    env: dict[str, str] = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = kubelet_expand(var["value"], env)
        elif var["name"] == "PIPEGEN_JOB_NAME":
            assert var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['batch.kubernetes.io/job-name']"
            env[var["name"]] = job_name
        else:
            assert var["name"] in ("NODE_RANK", "FEATURE_STORE_TOKEN"), var
    assert env["MASTER_ADDR"] == f"{job_name}-0.{name}"
    assert len(f"{job_name}-15") <= 63  # the last pod's hostname is a DNS label
    assert (env["MLFLOW_RUN_ID"], env["MLFLOW_EXPERIMENT_ID"], env["NNODES"]) == ("r1", "e1", "16")
    argv = [kubelet_expand(w, {"NODE_RANK": "3", **env}) for w in container["command"] + container["args"]]
    assert argv[:4] == ["torchrun", "--nnodes=16", "--nproc-per-node=8", "--node-rank=3"]
    assert argv[argv.index("--no-python") + 1 :] == [
        "python",
        "-m",
        "feed.train",
        "--date",
        "2026-01-02",
        "--lr",
        "0.01",
        "--epochs",
        "10",
    ]


def test_each_run_has_its_own_service(dags_folder: Path) -> None:
    text = SPEC_16.read_text(encoding="utf-8")
    # Rendering changes the task in place: each run renders its own copy of the DAG.
    first = service_of(render(load(dags_folder, "feed-ranking-16gpu", text), "train_service", "manual__1")[0])
    second = service_of(render(load(dags_folder, "feed-ranking-16gpu", text), "train_service", "manual__2")[0])
    first, second = first["metadata"]["name"], second["metadata"]["name"]
    assert first != second and len(first) <= 63


@pytest.mark.parametrize("runtime", ["jobset", "trainjob"])
def test_jobset_and_trainjob_compile_to_a_created_object(runtime: str) -> None:
    text = SPEC_16.read_text(encoding="utf-8").replace(
        "distributed_runtime: indexed_job", f"distributed_runtime: {runtime}"
    )
    result = compile_checked(check_source(Source("feed.yaml", text)), ["airflow"])
    assert result.ok and result.diagnostics == [], [d.format() for d in result.diagnostics]
    dag = result.outputs[0].text
    kind = {"jobset": "JobSet", "trainjob": "TrainJob"}[runtime]
    assert "train_create = KubernetesCreateResourceOperator(" in dag and f"kind='{kind}'" in dag
    assert "KubernetesJobOperator" not in dag


def test_hostile_text_stays_literal_on_every_node(
    dags_folder: Path, monkeypatch: pytest.MonkeyPatch, kubeconfig: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_HIDDEN", LEAK)
    data, _ = hostile_spec("kubernetes", target="airflow")
    for step in data["steps"]:
        for kind in ("task", "train"):
            if kind in step:
                step[kind]["distributed"] = {"nodes": 2, "launcher": "torchrun"}
    connect(monkeypatch, data["targets"]["airflow"]["kubernetes_conn_id"], kubeconfig)
    dag = load(dags_folder, "hostile", dump(data))
    seen = 0
    for task_id in ("prep_service", "prep", "fit"):
        task, context = render(dag, task_id, "manual__1", {"p": "P!"})
        objs = [service_of(task)] if task_id.endswith("_service") else [job_of(task, context)]
        for obj in objs:
            kubernetes_validate.validate(obj, "1.37.0", strict=True)
            for text in strings(json.loads(json.dumps(obj))):
                assert LEAK not in text, (task_id, text)
                if "7*7" in text:
                    # The kubelet reads '$$' as '$': what a node gets is the spec's text exactly.
                    assert CORE in text.replace("$$", "$").replace("%20", " "), (task_id, text)
                    seen += 1
    assert seen >= 3


def test_a_single_pod_step_builds_its_pod_from_hostile_text(
    dags_folder: Path, monkeypatch: pytest.MonkeyPatch, kubeconfig: Path
) -> None:
    """KubernetesPodOperator's service_account_name is not a templated field: it must be the name itself, never
    airflow.sdk.literal() (which only a templated field unwraps: the pod could not be built)."""
    monkeypatch.setenv("AIRFLOW_VAR_HIDDEN", LEAK)
    data, _ = hostile_spec("kubernetes", target="airflow")
    connect(monkeypatch, data["targets"]["airflow"]["kubernetes_conn_id"], kubeconfig)
    dag = load(dags_folder, "hostile", dump(data))
    for task_id in ("prep", "fit"):
        task, context = render(dag, task_id, "manual__1", {"p": "P!"})
        from kubernetes.client import ApiClient

        pod = ApiClient().sanitize_for_serialization(task.build_pod_request_obj(context))
        kubernetes_validate.validate(pod, "1.37.0", strict=True)
        account = data["backends"]["b"]["service_account"]
        assert pod["spec"]["serviceAccountName"] == account


def test_a_step_named_like_a_service_task_is_refused_at_its_name() -> None:
    text = SPEC_16.read_text(encoding="utf-8").replace("  - name: quality\n", "  - name: train_cleanup\n")
    result = compile_checked(check_source(Source("feed.yaml", text)), ["airflow"])
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "name: train_cleanup" in t)
    errors = [d.format() for d in result.diagnostics if d.code == "PG602"]
    assert len(errors) == 1 and errors[0].startswith(f"feed.yaml:{line}:"), errors
    assert "step 'train_cleanup'" in errors[0]
