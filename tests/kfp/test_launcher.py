"""KFP's launcher steps (Spark Operator, KubeRay, multi-node): the objects a compiled pipeline hands the runtime's
launcher validate strictly once the run's values are in, literal text stays literal, and what KFP cannot put in an
object is a located diagnostic.

The objects are read from the compiled module's `pipegen_spec` input (what the component receives), filled the way
the launcher fills them (runtime.k8s_launch.filled/named), then validated: SparkApplication and RayJob with
tests/k8s/strict.py, Job and Service with kubernetes-validate (strict), JobSet and TrainJob through the Kubeflow
models' round trip. No cluster runs here: nothing is created.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.k8s_launch import ApiCluster, filled, named, object_name
from pipegen.spec import DISTRIBUTED_RUNTIMES
from tests.cases import REPO
from tests.k8s import strict
from tests.k8s.test_distributed import validate as validate_node_object

VALUES = {"params": {"x": "a", "sample": 0.25, "note": "it's $(HOME) {{$}}", "learning_rate": 0.01, "epochs": 3}}
RUN = {"run_id": "3f9a0c1d2e", "experiment_id": "12"}


def compiled(text: str, name: str = "spec.yaml") -> str:
    result = compile_checked(check_source(Source(name, text)), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    [module] = [o.text for o in result.outputs if o.path.endswith(".py")]
    return module


def launcher_requests(module: str) -> list[dict[str, Any]]:
    """Every launcher step's request in a compiled module, as the component decodes it."""
    out = []
    for call in re.finditer(r"= pipegen_kubernetes_resource(?:_train)?\(\n\s+pipegen_spec=(.+),\n", module):
        out.append(json.loads(ast.literal_eval(call.group(1))))
    return out


def render(text: str) -> str:
    """${params.X}, ${run.id}, ${run.date} as a run renders them (runtime.templating)."""
    from pipegen.runtime.templating import Values

    return Values(VALUES["params"], "run-7", "2026-12-02", environ={}).string(text)


def objects_of(request: dict[str, Any], attempt: int = 1) -> list[dict[str, Any]]:
    name = object_name(request["base"], "run-7", attempt)
    return named(filled(request["objects"], request["slots"], render, RUN), request["slots"], name)


def validate(document: dict[str, Any]) -> None:
    if document["kind"] in ("SparkApplication", "RayJob"):
        strict.validate(document)
    else:
        validate_node_object(document)


def test_the_spark_operator_and_kuberay_objects_validate_with_the_runs_values() -> None:
    module = compiled((REPO / "specs" / "spark-ray-k8s.yaml").read_text(), "specs/spark-ray-k8s.yaml")
    spark, ray = launcher_requests(module)
    [app] = objects_of(spark)
    [job] = objects_of(ray)
    for document in (app, job):
        validate(document)
        assert "\x00" not in json.dumps(document)
        assert document["metadata"]["name"] == object_name(
            f"clickstream-{document['metadata']['labels']['pipegen.dev/step']}", "run-7", 1
        )
    assert app["spec"]["arguments"] == ["--date", "2026-12-02", "--sample", "0.25"]
    # The RayJob's entrypoint: one shell line (KubeRay's submitter hands it to bash), '$' doubled for the kubelet.
    assert job["spec"]["entrypoint"] == (
        "python -m clickstream.train --date 2026-12-02 --note 'it'\"'\"'s $$(HOME) {{$$}}'"
    )
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in head["env"]}
    assert env["MLFLOW_RUN_ID"]["value"] == "3f9a0c1d2e" and env["MLFLOW_EXPERIMENT_ID"]["value"] == "12"
    # The tracking URI is a secret: a reference in the object, never its value.
    assert env["MLFLOW_TRACKING_URI"]["valueFrom"]["secretKeyRef"]["key"] == "MLFLOW_TRACKING_URI"
    assert "#   namespace ml: verbs [create, get, delete] on apiGroups ['ray.io'] resources [rayjobs];" in module


@pytest.mark.parametrize("runtime", DISTRIBUTED_RUNTIMES)
def test_every_node_object_of_the_16_node_spec_validates_for_each_runtime(runtime: str) -> None:
    text = (REPO / "specs" / "feed-ranking-16gpu.yaml").read_text()
    text = text.replace("distributed_runtime: indexed_job", f"distributed_runtime: {runtime}")
    [request] = launcher_requests(compiled(text, "specs/feed-ranking-16gpu.yaml"))
    documents = objects_of(request, attempt=2)
    name = object_name("feed-ranking-16gpu-train", "run-7", 2)
    assert [d["kind"] for d in documents] == {
        "indexed_job": ["Service", "Job"],
        "jobset": ["JobSet"],
        "trainjob": ["TrainJob"],
    }[runtime]
    for document in documents:
        validate(document)
        assert document["metadata"]["name"] == name
    text_of = json.dumps(documents)
    assert "\x00" not in text_of and "3f9a0c1d2e" in text_of  # every node gets the training run
    if runtime != "trainjob":
        pod = documents[-1]["spec"]
        pod = (pod["replicatedJobs"][0]["template"]["spec"] if runtime == "jobset" else pod)["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        host = f"{name}-0.{name}" if runtime == "indexed_job" else f"{name}-node-0-0.{name}"
        assert env["MASTER_ADDR"] == host
        assert pod["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]


HOSTILE = """
pipegen: 1
name: hostile
params: {{x: "a"}}
backends:
  k:
    type: kubernetes
    image: img:1
    distributed_runtime: indexed_job
steps:
  - name: work
    task:
      backend: k
      command: [python, "-c", "{word}", "${{params.x}}"]
      distributed: {{nodes: 2, launcher: none}}
targets:
  kfp: {{base_image: registry.example.com/pipegen-runtime:1}}
"""


@pytest.mark.parametrize("word", ["$(HOME)", "$${params.x}", "{{$}}", "'; rm -rf / #", "\\u0000pipegen-x-0\\u0000"])
def test_literal_text_reaches_the_pod_as_written(word: str) -> None:
    [request] = launcher_requests(compiled(HOSTILE.format(word=word.replace('"', '\\"'))))
    _, job = objects_of(request)
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    # The kubelet reads '$$' as '$' and expands nothing else; the spec's `$${` is the text `${`.
    written = json.loads('"' + word + '"').replace("$${", "${")
    assert [w.replace("$$", "$") for w in command] == ["python", "-c", written, "a"]


def test_what_kfp_cannot_put_in_a_launched_object_is_located() -> None:
    text = (REPO / "specs" / "spark-ray-k8s.yaml").read_text()
    text = text.replace('--sample, "${params.sample}"]', '--sample, "${params.sample}", "--token=${secret.TOKEN}"]')
    text = text.replace('runtime_env: {env_vars: {OMP_NUM_THREADS: "8"}}', 'runtime_env: {env_vars: {A: "$HOME"}}')
    result = compile_checked(check_source(Source("specs/spark-ray-k8s.yaml", text)), ["kfp"])
    errors = sorted(d.format() for d in result.diagnostics if d.severity.value == "error")
    assert len(errors) == 2, errors
    assert re.match(
        r"specs/spark-ray-k8s.yaml:\d+:\d+: error\[PG602\]: target 'kfp' cannot pass runtime_env", errors[0]
    )
    assert re.match(
        r"specs/spark-ray-k8s.yaml:\d+:\d+: error\[PG602\]: target 'kfp' cannot put \$\{secret.TOKEN\} in the command "
        r"of step 'features'",
        errors[1],
    )


@pytest.mark.parametrize("runtime", ["jobset", "trainjob"])
def test_the_kfp_compiler_compiles_the_other_runtimes(runtime: str, tmp_path: Path) -> None:
    """The golden is indexed_job's (tests/kfp/test_compile.py compiles it): kfp compiles the other two as well."""
    from tests.kfp.test_compile import compile_ir

    text = (REPO / "specs" / "feed-ranking-16gpu.yaml").read_text()
    module = compiled(text.replace("distributed_runtime: indexed_job", f"distributed_runtime: {runtime}"))
    source = tmp_path / "feed-ranking-16gpu.py"
    source.write_text(module)
    ir = compile_ir(source, tmp_path / "ir.yaml")
    kind = "JobSet" if runtime == "jobset" else "TrainJob"
    assert f'"kind":"{kind}"' in json.dumps(ir).replace("\\", "").replace('\\"', '"')


SINGLE_POD = """
pipegen: 1
name: tolerant
backends:
  k:
    type: kubernetes
    image: img:1
    tolerations:
      - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
      - {key: spot, operator: Equal, value: "true", effect: NoExecute, toleration_seconds: 60}
steps:
  - name: work
    task: {backend: k, command: [python, work.py]}
"""


def test_a_container_step_gets_the_backends_tolerations(tmp_path: Path) -> None:
    from tests.kfp.test_compile import compile_ir

    source = tmp_path / "tolerant.py"
    source.write_text(compiled(SINGLE_POD))
    ir = compile_ir(source, tmp_path / "ir.yaml")
    [platform] = [d for d in yaml.safe_load_all((tmp_path / "ir.yaml").read_text()) if "platforms" in d]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert ir and [e["tolerations"] for e in executors.values()] == [
        [
            {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"},
            {"effect": "NoExecute", "key": "spot", "operator": "Equal", "tolerationSeconds": "60", "value": "true"},
        ]
    ]


def test_without_a_cluster_the_launcher_fails_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kfp's environment has the kubernetes client (kfp depends on it), as a worker with pipegen-ml[k8s] does.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(RuntimeFailure, match=r"cannot reach a Kubernetes API server: not in a pod .*kube-config"):
        ApiCluster()


def test_a_launcher_task_renders_its_request_and_fails_clearly_without_a_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the component runs (kfp_executor.run_action -> run_step), on the compiled input, up to the API server."""
    from pipegen.runtime.kfp_executor import run_action

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    module = compiled((REPO / "specs" / "spark-ray-k8s.yaml").read_text(), "specs/spark-ray-k8s.yaml")
    spec = re.search(r"features_task = pipegen_kubernetes_resource\(\n\s+pipegen_spec=(.+),\n", module)
    assert spec is not None
    values = {
        "pipegen_spec": ast.literal_eval(spec.group(1)),
        "pipegen_run_key": "run-7",
        "pipegen_run_date": "2026-12-02",
    }
    with pytest.raises(RuntimeFailure, match="cannot reach a Kubernetes API server"):
        run_action("kubernetes_resource", "UTC", {**values, **VALUES["params"]})
