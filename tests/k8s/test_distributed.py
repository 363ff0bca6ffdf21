"""The multi-node Kubernetes objects (pipegen.k8s.distributed) validate strictly against their published schemas.

Core kinds (Job, Service) go through kubernetes-validate's strict schemas (unknown keys rejected); JobSet and
TrainJob through the kubeflow-trainer-api models, which ignore unknown keys: an object must survive a round trip
through them unchanged, so a key they do not know (dropped on the way) fails the comparison.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import kubernetes_validate
import pytest
from kubeflow_trainer_api import models

from pipegen.frontend import check_source
from pipegen.k8s.distributed import (
    NodeContainer,
    kubelet_text,
    node_plan,
    object_name,
    objects,
    spec_container,
)
from pipegen.loader import Source
from pipegen.resolve import Pipeline, resolve
from pipegen.spec import DISTRIBUTED_RUNTIMES
from tests.cases import REPO

KUBERNETES = "1.37.0"
SPEC_16 = REPO / "specs" / "feed-ranking-16gpu.yaml"


def validate_core(obj: dict[str, Any]) -> None:
    """kubernetes-validate, strict: additionalProperties false everywhere."""
    kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def validate_custom(obj: dict[str, Any]) -> None:
    """The Kubeflow models, made strict by a round trip: what they drop or change was not theirs to accept."""
    model = {"JobSet": models.JobsetV1alpha2JobSet, "TrainJob": models.TrainerV1alpha1TrainJob}[obj["kind"]]
    back = model.from_dict(obj)
    assert back is not None
    assert back.to_dict() == obj, f"{obj['kind']} does not survive the {model.__name__} round trip"


def validate(obj: dict[str, Any]) -> None:
    """The right validator for the kind."""
    (validate_core if obj["kind"] in ("Job", "Service") else validate_custom)(obj)


def pipeline_of(text: str) -> Pipeline:
    checked = check_source(Source("spec.yaml", text))
    assert checked.ok, [d.format() for d in checked.diagnostics]
    return resolve(checked)


def spec_16() -> Pipeline:
    return pipeline_of(SPEC_16.read_text())


def built(pipeline: Pipeline, runtime: str, container: NodeContainer | None = None) -> list[dict[str, Any]]:
    step = pipeline.step("train")
    plan = dataclasses.replace(node_plan(pipeline, step), runtime=runtime)
    return objects(plan, container or spec_container(pipeline, step))


SMALL = """
pipegen: 1
name: small
backends:
  k:
    type: kubernetes
    image: img:1
    distributed_runtime: {runtime}
steps:
  - name: train
    train:
      backend: k
      command: [python, train.py, "--cost=$(HOME)", "$$5"]
      distributed: {{nodes: 2, launcher: {launcher}}}
"""


@pytest.mark.parametrize("runtime", DISTRIBUTED_RUNTIMES)
def test_the_16_node_spec_validates_strictly(runtime: str) -> None:
    """Every object of the 16-node spec, for each distributed_runtime, passes its strict validator."""
    docs = built(spec_16(), runtime)
    assert [d["kind"] for d in docs] == {
        "indexed_job": ["Service", "Job"],
        "jobset": ["JobSet"],
        "trainjob": ["TrainJob"],
    }[runtime]
    for obj in docs:
        validate(obj)


@pytest.mark.parametrize(
    ("kind", "path", "key", "typo"),
    [
        ("Job", ("spec",), "completionMode", "completionMod"),
        ("Job", ("spec", "template", "spec", "containers", 0), "command", "comand"),
        ("Service", ("spec",), "clusterIP", "clusterIp"),
        ("JobSet", ("spec", "network"), "enableDNSHostnames", "enableDNSHostname"),
        ("JobSet", ("spec", "replicatedJobs", 0, "template", "spec"), "completionMode", "completionMod"),
        ("TrainJob", ("spec", "trainer"), "numNodes", "numNode"),
        (
            "TrainJob",
            ("spec", "runtimePatches", 0, "trainingRuntimeSpec", "template", "spec"),
            "replicatedJobs",
            "replicatedJob",
        ),
    ],
)
def test_a_misspelt_field_is_caught(kind: str, path: tuple[str | int, ...], key: str, typo: str) -> None:
    """A key a schema does not have fails validation, at the top and deep inside (pod templates, patches)."""
    runtime = {"Job": "indexed_job", "Service": "indexed_job", "JobSet": "jobset", "TrainJob": "trainjob"}[kind]
    obj = copy.deepcopy(next(d for d in built(spec_16(), runtime) if d["kind"] == kind))
    validate(obj)  # the object as built is valid: the typo alone must fail it
    where: Any = obj
    for part in path:
        where = where[part]
    where[typo] = where.pop(key)
    with pytest.raises((kubernetes_validate.ValidationError, AssertionError)):
        validate(obj)


def test_indexed_job_rendezvous() -> None:
    """N indexed pods in the headless Service's subdomain; pod 0's DNS name is MASTER_ADDR; NODE_RANK is the index."""
    service, job = built(spec_16(), "indexed_job")
    name = "feed-ranking-16gpu-train"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": name}
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 16, 16)
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"] == name
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["MASTER_ADDR"]["value"] == f"{name}-0.{name}"
    assert env["NNODES"]["value"] == "16"
    assert env["NPROC_PER_NODE"]["value"] == "8"  # procs_per_node defaults to the step's gpu count
    index = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    assert env["NODE_RANK"]["valueFrom"] == {"fieldRef": {"fieldPath": index}}
    command = pod["containers"][0]["command"]
    assert command[:8] == [
        "torchrun",
        "--nnodes=16",
        "--nproc-per-node=8",
        "--node-rank=$(NODE_RANK)",
        "--master-addr=$(MASTER_ADDR)",
        "--master-port=$(MASTER_PORT)",
        "--max-restarts=0",
        "--no-python",
    ]
    assert pod["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"


def test_jobset_and_trainjob_shape() -> None:
    """JobSet: one replicated Indexed Job with DNS hostnames; TrainJob: numNodes on the torch runtime, placement patched."""
    (jobset,) = built(spec_16(), "jobset")
    assert jobset["apiVersion"] == "jobset.x-k8s.io/v1alpha2"
    assert jobset["spec"]["network"]["enableDNSHostnames"] is True
    (replicated,) = jobset["spec"]["replicatedJobs"]
    assert replicated["replicas"] == 1
    job = replicated["template"]["spec"]
    assert (job["completions"], job["parallelism"], job["completionMode"]) == (16, 16, "Indexed")
    env = {e["name"]: e.get("value") for e in job["template"]["spec"]["containers"][0]["env"]}
    assert env["MASTER_ADDR"] == "feed-ranking-16gpu-train-node-0-0.feed-ranking-16gpu-train"

    (trainjob,) = built(spec_16(), "trainjob")
    assert trainjob["apiVersion"] == "trainer.kubeflow.org/v1alpha1"
    spec = trainjob["spec"]
    assert spec["runtimeRef"]["name"] == "torch-distributed"
    assert (spec["trainer"]["numNodes"], spec["trainer"]["numProcPerNode"]) == (16, 8)
    assert spec["trainer"]["command"][:2] == ["torchrun", "--no-python"]
    pod = spec["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    assert pod["name"] == "node"
    assert pod["template"]["spec"]["template"]["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"


@pytest.mark.parametrize("runtime", DISTRIBUTED_RUNTIMES)
def test_user_text_cannot_form_a_kubelet_reference(runtime: str) -> None:
    """`$(HOME)` in a command or env value stays literal ($$ escapes); only pipegen's own $(NODE_RANK) expands."""
    pipeline = pipeline_of(SMALL.format(runtime=runtime, launcher="torchrun"))
    step = pipeline.step("train")
    base = spec_container(pipeline, step)
    container = dataclasses.replace(
        base, env=(*base.env, {"name": "MLFLOW_RUN_ID", "value": "abc$(SECRET)"}, {"name": "X", "value": "$$"})
    )
    for obj in built(pipeline, runtime, container):
        validate(obj)
        if obj["kind"] == "Service":
            continue
        if obj["kind"] == "TrainJob":
            node = obj["spec"]["trainer"]
        else:
            job = obj["spec"] if obj["kind"] == "Job" else obj["spec"]["replicatedJobs"][0]["template"]["spec"]
            node = job["template"]["spec"]["containers"][0]
        assert "python" in node["command"]
        assert node["command"][-2:] == ["--cost=$$(HOME)", "$$$$5"]
        env = {e["name"]: e.get("value") for e in node["env"]}
        # The MLflow run's variables reach the one pod template every node is made from.
        assert env["MLFLOW_RUN_ID"] == "abc$$(SECRET)"
        assert env["X"] == "$$$$"
        own = [w for w in node["command"] if "$(" in w.replace("$$(", "")]
        assert own == (
            []
            if runtime == "trainjob"
            else ["--node-rank=$(NODE_RANK)", "--master-addr=$(MASTER_ADDR)", "--master-port=$(MASTER_PORT)"]
        )


def test_launcher_none_runs_the_command_itself() -> None:
    """launcher none: no torchrun; the command gets NNODES/NODE_RANK/MASTER_ADDR/MASTER_PORT to read itself."""
    pipeline = pipeline_of(SMALL.format(runtime="indexed_job", launcher="none"))
    _, job = built(pipeline, "indexed_job")
    node = job["spec"]["template"]["spec"]["containers"][0]
    assert node["command"][0] == "python"
    assert {"NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT"} <= {e["name"] for e in node["env"]}


def test_kubelet_text_and_names() -> None:
    """Every $ doubled; object names stay DNS labels short enough for the pod hostnames derived from them."""
    assert kubelet_text("a$(B)$$c") == "a$$(B)$$$$c"
    assert object_name("feed", "train_big") == "feed-train-big"
    long = object_name("a" * 60, "train")
    assert len(long) <= 40 and long == object_name("a" * 60, "train") and long != object_name("a" * 61, "train")
    # The longest pod hostname, `<jobset>-node-0-<index>` at 1,000 nodes, fits a DNS label.
    assert len(f"{long}-node-0-999") <= 63
