"""Custom resources on Airflow (issues 18 and 20): the Spark Operator's SparkApplication through
SparkKubernetesOperator, and KubeRay's RayJob, a JobSet and a TrainJob through KubernetesCreateResourceOperator, a
sensor on the object's status and its deletion as a teardown.

No Kubernetes cluster runs here: the DAGs load in DagBag, each task is rendered as a worker renders it, and the
object it would send is built as the operator builds it (the SparkApplication by the provider's own
CustomObjectLauncher) and validated strictly against its published models or CRD. Hostile parameter values reach the
objects as one string each, unchanged after the kubelet's `$$` and the shell's quoting.
"""

from __future__ import annotations

import copy
import shlex
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.airflow.test_distributed import RUN_ID, kubelet_expand, load, render
from tests.cases import REPO
from tests.k8s.strict import Invalid, validate_ray_job, validate_spark_application
from tests.k8s.test_distributed import validate_custom

SPARK_RAY = REPO / "specs" / "spark-ray-k8s.yaml"
MULTINODE = REPO / "tests" / "specs" / "multinode-runtimes.yaml"
DIGEST = uuid.uuid5(uuid.NAMESPACE_URL, RUN_ID).hex[:8]
HOSTILE = 'it\'s "{{ 7*7 }}" $(HOME) $$ `id`\nline two {% raw %}'


def created(dag: Any, step: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The object `<step>_create` would create: its yaml_conf, rendered and read as the operator reads it."""
    task, _ = render(dag, f"{step}_create", params=params)
    (obj,) = list(yaml.safe_load_all(task.yaml_conf))
    assert isinstance(obj, dict)
    return obj


def watched(dag: Any, step: str) -> tuple[str, str]:
    """(name, namespace) the sensor reads and the cleanup deletes: the same object."""
    sensor, _ = render(dag, step)
    args = sensor.op_kwargs
    cleanup, _ = render(dag, f"{step}_cleanup")
    (target,) = list(yaml.safe_load_all(cleanup.yaml_conf))
    assert (target["metadata"]["name"], target["metadata"]["namespace"]) == (args["name"], args["namespace"])
    return args["name"], args["namespace"]


def test_the_spark_ray_k8s_dag_creates_a_spark_application_and_a_ray_job_that_validate(dags_folder: Path) -> None:
    from airflow.providers.cncf.kubernetes.operators.custom_object_launcher import CustomObjectLauncher

    dag = load(dags_folder, "clickstream", SPARK_RAY.read_text(encoding="utf-8"))
    assert {"features", "pipegen_start_run_train", "train_create", "train", "train_cleanup"} == set(dag.task_ids) - {
        "quality",
        "promote",
    }
    features, _ = render(dag, "features", params={"sample": HOSTILE, "note": "n"})
    assert features.template_spec["spark"]["metadata"]["name"] == f"clickstream-features-{DIGEST}-1"
    validate_spark_application(features.template_spec["spark"])
    # What the operator sends: its launcher's body, named by create_job_name (no random suffix).
    name = features.create_job_name()
    assert name == f"clickstream-features-{DIGEST}-1" and len(name) <= 35
    body = CustomObjectLauncher(name, features.namespace, None, None, features.manage_template_specs()).body
    validate_spark_application(body)
    spec = body["spec"]
    assert spec["arguments"][:2] == ["--date", "2026-01-02"]
    assert kubelet_expand(spec["arguments"][3], {"HOME": "/root"}) == HOSTILE
    env = {e["name"]: e for e in spec["driver"]["env"]}
    assert env["API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "clickstream-api-token",
        "key": "CLICKSTREAM_API_TOKEN",
    }
    assert (features.random_name_suffix, features.reattach_on_restart, features.delete_on_termination) == (
        False,
        True,
        True,
    )

    job = created(dag, "train", params={"sample": 0.1, "note": HOSTILE})
    validate_ray_job(job)
    assert job["metadata"]["name"] == f"clickstream-train-{DIGEST}" == watched(dag, "train")[0]
    assert job["spec"]["backoffLimit"] == 1  # the step's retries, run by KubeRay
    # The submitter runs the entrypoint through bash (after the kubelet's $$): the words come back as written.
    entrypoint = kubelet_expand(job["spec"]["entrypoint"], {"HOME": "/root"})
    assert shlex.split(entrypoint) == ["python", "-m", "clickstream.train", "--date", "2026-01-02", "--note", HOSTILE]
    cluster = job["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for pod in pods:
        (container,) = pod["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert (env["MLFLOW_RUN_ID"]["value"], env["MLFLOW_EXPERIMENT_ID"]["value"]) == ("r1", "e1")
        assert env["MLFLOW_TRACKING_URI"]["valueFrom"]["secretKeyRef"]["key"] == "MLFLOW_TRACKING_URI"
    cleanup = dag.get_task("train_cleanup")
    assert cleanup.is_teardown and dag.get_task("train_create").is_setup
    assert "train" in dag.get_task("quality").upstream_task_ids


def test_jobset_and_trainjob_validate_and_carry_the_run(dags_folder: Path) -> None:
    dag = load(dags_folder, "multinode-runtimes", MULTINODE.read_text(encoding="utf-8"))
    jobset = created(dag, "pretrain")
    validate_custom(jobset)
    name = jobset["metadata"]["name"]
    assert name == f"multinode-runtimes-pretrain-{DIGEST}" == watched(dag, "pretrain")[0]
    assert jobset["spec"]["failurePolicy"]["maxRestarts"] == 2
    (replicated,) = jobset["spec"]["replicatedJobs"]
    (node,) = replicated["template"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in node["env"]}
    assert env["MASTER_ADDR"]["value"] == f"{name}-node-0-0.{name}"
    assert (env["MLFLOW_RUN_ID"]["value"], env["MLFLOW_EXPERIMENT_ID"]["value"]) == ("r1", "e1")
    assert env["FEATURE_STORE_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "feature_store_token"
    words = [kubelet_expand(w, {"HOME": "/root"}) for w in node["command"]]
    note = str(dag.params["note"])
    assert words[-8:] == [
        "python",
        "-m",
        "feed.pretrain",
        "--date",
        "2026-01-02",
        "--note",
        note,
        "--literal={{ x }} $(HOME)",
    ]

    trainjob = created(dag, "finetune", params={"note": HOSTILE})
    validate_custom(trainjob)
    assert trainjob["metadata"]["name"] == f"multinode-runtimes-finetune-{DIGEST}" == watched(dag, "finetune")[0]
    trainer = trainjob["spec"]["trainer"]
    assert kubelet_expand(trainer["command"][-1], {"HOME": "/root"}) == HOSTILE
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (2, 2)


def test_a_misspelt_field_in_what_the_dag_embeds_is_caught(dags_folder: Path) -> None:
    dag = load(dags_folder, "multinode-runtimes", MULTINODE.read_text(encoding="utf-8"))
    jobset = copy.deepcopy(created(dag, "pretrain"))
    jobset["spec"]["failurePolicy"]["maxRestart"] = jobset["spec"]["failurePolicy"].pop("maxRestarts")
    with pytest.raises(AssertionError):
        validate_custom(jobset)
    job = created(load(dags_folder, "clickstream", SPARK_RAY.read_text(encoding="utf-8")), "train")
    job["spec"]["backofLimit"] = job["spec"].pop("backoffLimit")
    with pytest.raises(Invalid):
        validate_ray_job(job)


RAY = [("status.jobStatus", ["SUCCEEDED"], ["FAILED", "STOPPED"]), ("status.jobDeploymentStatus", [], ["Failed"])]


@pytest.mark.parametrize(
    ("states", "obj", "expected"),
    [
        (RAY, {"status": {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"}}, None),
        (RAY, {}, None),
        (RAY, {"status": {"jobStatus": "SUCCEEDED", "jobDeploymentStatus": "Complete"}}, True),
        # jobDeploymentStatus says Complete for a failed job too: Ray's own status decides.
        (RAY, {"status": {"jobStatus": "FAILED", "jobDeploymentStatus": "Complete", "message": "boom"}}, False),
        (RAY, {"status": {"jobDeploymentStatus": "Failed", "message": "deadline"}}, False),
        ([("status.terminalState", ["Completed"], ["Failed"])], {"status": {"terminalState": "Failed"}}, False),
        ([("status.terminalState", ["Completed"], ["Failed"])], {"status": {"terminalState": "Completed"}}, True),
        (
            [("status.conditions", ["Complete"], ["Failed"])],
            {
                "status": {
                    "conditions": [{"type": "Created", "status": "True"}, {"type": "Complete", "status": "False"}]
                }
            },
            None,
        ),
        (
            [("status.conditions", ["Complete"], ["Failed"])],
            {"status": {"conditions": [{"type": "Failed", "status": "True", "message": "rank 3 exited 1"}]}},
            False,
        ),
        (
            [("status.conditions", ["Complete"], ["Failed"])],
            {"status": {"conditions": [{"type": "Complete", "status": "True"}]}},
            True,
        ),
    ],
)
def test_the_sensor_reads_the_final_status(
    dags_folder: Path, states: list[Any], obj: dict[str, Any], expected: bool | None
) -> None:
    import importlib.util

    load(dags_folder, "multinode-runtimes", MULTINODE.read_text(encoding="utf-8"))
    module_spec = importlib.util.spec_from_file_location("multinode_dag", dags_folder / "multinode-runtimes.py")
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    outcome = module._object_outcome(obj, states)
    assert (outcome[0] if outcome else None) is expected
    if outcome is not None and not outcome[0]:
        # The failure names the status and the controller's own message.
        assert outcome[1].startswith(states[0][0].split(".")[0]) and (
            "boom" in outcome[1] or "deadline" in outcome[1] or "rank 3" in outcome[1] or "Failed" in outcome[1]
        )


def errors(text: str) -> list[str]:
    checked = check_source(Source("s.yaml", text))
    assert checked.ok, [d.format() for d in checked.diagnostics]
    return [d.format() for d in compile_checked(checked, ["airflow"]).diagnostics]


def test_a_step_named_like_a_create_task_is_refused() -> None:
    text = MULTINODE.read_text(encoding="utf-8").replace("name: quality", "name: pretrain_create")
    found = errors(text)
    assert len(found) == 1 and "'pretrain_create'" in found[0] and "error[PG602]" in found[0], found


def test_spark_text_ending_like_a_template_file_stays_text(dags_folder: Path) -> None:
    """SparkKubernetesOperator reads a templated string ending with yaml, yml or json as a template file's name."""
    text = (
        "pipegen: 1\nname: ext\nbackends:\n  op:\n    type: spark\n    platform: kubernetes\n"
        "    kubernetes: {image: i, spark_version: 4.0.1}\n    conf: {spark.files: conf.yaml}\n"
        "steps:\n  - name: job\n    task:\n      backend: op\n"
        "      command: [local:///app.py, conf.json, '${params.p}', settings.yml]\n"
        "params:\n  p: x.json\n"
    )
    dag = load(dags_folder, "ext", text)
    task, _ = render(dag, "job")
    spec = task.template_spec["spark"]["spec"]
    assert spec["arguments"] == ["conf.json", "x.json", "settings.yml"]
    assert spec["sparkConf"] == {"spark.files": "conf.yaml"}


def test_the_template_files_guarded_are_the_operators_own() -> None:
    """The resource operators read no template file; SparkKubernetesOperator reads strings ending like these."""
    from airflow.providers.cncf.kubernetes.operators.resource import (
        KubernetesCreateResourceOperator,
        KubernetesDeleteResourceOperator,
    )
    from airflow.providers.cncf.kubernetes.operators.spark_kubernetes import SparkKubernetesOperator

    from pipegen.targets.airflow.manifests import SPARK_TEMPLATE_EXT

    assert tuple(SparkKubernetesOperator.template_ext) == SPARK_TEMPLATE_EXT
    assert tuple(KubernetesCreateResourceOperator.template_ext) == ()
    assert tuple(KubernetesDeleteResourceOperator.template_ext) == ()
