"""`distributed:` and the kubernetes backend's multi-node keys: located diagnostics for nonsense, PG602 from every
target that does not map multi-node steps yet (Airflow does), and what `pipegen run` refuses."""

from __future__ import annotations

import pytest

from pipegen.compiler import compile_checked
from pipegen.diagnostics import Diagnostic
from pipegen.frontend import check_file, check_source
from pipegen.loader import Source
from pipegen.localrun import unsupported_backends
from pipegen.resolve import resolve
from pipegen.targets import available
from tests.cases import REPO, rel

SPEC_16 = REPO / "specs" / "feed-ranking-16gpu.yaml"

BASE = """\
pipegen: 1
name: d
backends:
  k8s: {{type: kubernetes, image: "img:1"{k8s}}}
  sm: {{type: sagemaker, role_arn: "arn:aws:iam::123456789012:role/r", image: i, instance_type: ml.p4d.24xlarge, output_path: s3://b/o{sm}}}
  batch: {{type: aws_batch, job_queue: q, job_definition: d}}
  spark: {{type: spark}}
  ray: {{type: ray, address: local}}
steps:
  - name: train
    train:
      backend: {backend}
      command: [python, train.py]
{extra}      distributed: {dist}
"""


def diagnostics(
    backend: str = "k8s", dist: str = "{nodes: 2}", extra: str = "", k8s: str = "", sm: str = ""
) -> list[str]:
    text = BASE.format(backend=backend, dist=dist, extra=extra, k8s=k8s, sm=sm)
    checked = check_source(Source("d.yaml", text))
    return [d.format() for d in checked.diagnostics if d.code != "PG700"]  # unused backends are warned about


def test_a_plain_distributed_step_is_valid() -> None:
    assert diagnostics() == []
    assert diagnostics("batch", extra="      resources: {gpu: 8}\n", dist="{nodes: 4, procs_per_node: 8}") == []
    assert diagnostics("sm", sm=", instance_count: 4", dist="{nodes: 4}") == []


@pytest.mark.parametrize(
    ("dist", "expected"),
    [
        (
            "{nodes: 0}",
            "d.yaml:14:28: error[PG210]: nodes 0 is below the limit: at least 1; hint: use a value from 1 to 1000",
        ),
        (
            "{nodes: 1001}",
            "d.yaml:14:28: error[PG210]: nodes 1001 exceeds the limit: at most 1000 (AWS Batch runs at most 1,000 nodes "
            "in a multi-node parallel job); hint: use a value from 1 to 1000",
        ),
        (
            "{nodes: 2, procs_per_node: 0}",
            "d.yaml:14:47: error[PG210]: procs_per_node 0 is below the limit: at least 1",
        ),
        ("{nodes: 2, launcher: deepspeed}", "d.yaml:14:41: error[PG202]: invalid value 'deepspeed'"),
        ("{nodes: 2, node: 3}", "d.yaml:14:31: error[PG200]: unknown key 'node'"),
    ],
)
def test_nonsense_values_are_located(dist: str, expected: str) -> None:
    (found,) = diagnostics(dist=dist)
    assert found.startswith(expected), found


def test_backends_that_cannot_run_nodes() -> None:
    """Spark and Ray scale on their own; a SageMaker instance_count that disagrees with nodes; mpi without a launcher pod."""
    (spark,) = diagnostics("spark")
    assert spark.startswith(
        "d.yaml:14:20: error[PG400]: step 'train' is distributed over 2 nodes, but spark backend 'spark' scales on its "
        "own (its executors are the nodes); hint: remove 'distributed' and size the spark backend"
    ), spark
    (ray,) = diagnostics("ray")
    assert "ray backend 'ray' scales on its own (its workers are the nodes)" in ray and ray.startswith("d.yaml:14:20:")
    (sagemaker,) = diagnostics("sm", sm=", instance_count: 2", dist="{nodes: 4}")
    assert sagemaker == (
        "d.yaml:14:28: error[PG400]: step 'train' asks for 4 nodes, but SageMaker backend 'sm' sets instance_count: 2; "
        "hint: remove instance_count from the backend: distributed.nodes sets it"
    )
    (mpi,) = diagnostics(dist="{nodes: 2, launcher: mpi}")
    assert mpi.startswith("d.yaml:14:41: error[PG400]: launcher 'mpi' of step 'train' needs an MPI launcher pod")
    assert diagnostics(dist="{nodes: 2, launcher: mpi}", k8s=", distributed_runtime: trainjob") == []


def test_processes_without_resources() -> None:
    """P processes per node on a backend that sizes pods by the step's resources need resources; gpu sets P itself."""
    (found,) = diagnostics(dist="{nodes: 2, procs_per_node: 4}")
    assert found == (
        "d.yaml:14:47: error[PG400]: step 'train' starts 4 processes per node, but asks its kubernetes backend for no "
        "resources: each node would get the platform's default share; hint: add resources: {gpu: 4} (one process per "
        "GPU) or a cpu count to the step"
    )
    assert diagnostics(dist="{nodes: 2, procs_per_node: 4}", extra="      resources: {cpu: 4}\n") == []
    assert diagnostics(extra="      resources: {gpu: 8}\n") == []


def test_kubernetes_keys() -> None:
    """distributed_runtime is an enum; tolerations follow the API server's rules; startup_timeout is a duration."""
    (runtime,) = diagnostics(k8s=", distributed_runtime: pytorchjob")
    assert runtime.startswith("d.yaml:4:") and "PG2" in runtime
    ok = ", tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}], startup_timeout: 20m"
    assert diagnostics(k8s=ok) == []
    (exists_value,) = diagnostics(k8s=", tolerations: [{key: a, operator: Exists, value: b}]")
    assert "a toleration with operator 'Exists' takes no 'value'" in exists_value
    (seconds,) = diagnostics(k8s=", tolerations: [{key: a, value: b, effect: NoSchedule, toleration_seconds: 60}]")
    assert "'toleration_seconds' applies only to effect 'NoExecute'" in seconds
    (camel,) = diagnostics(k8s=", tolerations: [{key: a, tolerationSeconds: 60}]")
    assert "PG200" in camel and "tolerationSeconds" in camel
    (timeout,) = diagnostics(k8s=", startup_timeout: 0s")
    assert "PG205" in timeout


def mapping(feature: str) -> set[str]:
    """The targets whose support.features list feature (they map it)."""
    return {name for name, target in available().items() if feature in target.support.features}


def test_every_target_that_does_not_map_it_refuses_the_16_node_spec_with_a_located_pg602() -> None:
    """Until a target maps it, it says so at the step's `distributed` key (and nothing is written)."""
    assert "airflow" in mapping("distributed")
    checked = check_file(rel(SPEC_16))
    assert checked.ok, [d.format() for d in checked.diagnostics]
    line = next(i for i, text in enumerate(SPEC_16.read_text().splitlines(), 1) if "distributed: {nodes: 16" in text)
    for target in set(available()) - mapping("distributed"):
        result = compile_checked(checked, [target])
        assert not result.ok and not result.outputs
        errors = [d for d in result.diagnostics if d.code == "PG602" and "multi-node" in d.message]
        assert [d.format() for d in errors] == [
            f"specs/feed-ranking-16gpu.yaml:{line}:20: error[PG602]: target '{target}' does not run multi-node steps "
            "yet: step 'train' asks for 16 nodes; hint: `pipegen targets` lists the targets that run `distributed` steps"
        ]


def test_pod_settings_no_target_applies_yet_are_warned_about() -> None:
    """tolerations and startup_timeout are never dropped silently: a target that does not apply one warns (PG702)
    at the key."""
    checked = check_file(rel(SPEC_16))
    assert {"airflow"} <= mapping("kubernetes.tolerations") & mapping("kubernetes.startup_timeout")
    for target in available():
        warned = {
            d.message.split(" of kubernetes")[0].rsplit(" ", 1)[1]
            for d in compile_checked(checked, [target]).diagnostics
            if d.code == "PG702" and "kubernetes backend 'gpu-cluster'" in d.message
        }
        expected = {key for key in ("tolerations", "startup_timeout") if target not in mapping(f"kubernetes.{key}")}
        assert warned == expected, target


def run_refusals(text: str) -> list[Diagnostic]:
    checked = check_source(Source("r.yaml", text))
    assert checked.ok, [d.format() for d in checked.diagnostics]
    return unsupported_backends(resolve(checked))


def test_pipegen_run_refuses_what_it_cannot_start() -> None:
    """mpi needs mpirun and hosts; multi-node Batch/SageMaker jobs are not submitted from `pipegen run` yet."""
    local = "pipegen: 1\nname: r\nsteps:\n  - name: t\n    task:\n      command: [x]\n      distributed: {dist}\n"
    assert run_refusals(local.format(dist="{nodes: 2}")) == []
    (mpi,) = run_refusals(local.format(dist="{nodes: 2, launcher: mpi}"))
    assert mpi.format().startswith("r.yaml:7:41: error[PG602]: `pipegen run` does not start MPI jobs")
    batch = local.replace("steps:", "backends:\n  b: {type: aws_batch, job_queue: q, job_definition: d}\nsteps:")
    batch = batch.replace("command: [x]", "backend: b\n      command: [x]")
    (multi,) = run_refusals(batch.replace("{dist}", "{nodes: 2}"))
    assert "does not submit multi-node aws_batch jobs yet" in multi.message
