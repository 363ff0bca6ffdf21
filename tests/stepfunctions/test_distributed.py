"""Multi-node steps on Step Functions: the 16-node spec on EKS (Indexed Job + headless Service), SageMaker
(InstanceCount) and AWS Batch (multi-node parallel job), from the goldens and the runtime's own prepare.

The Kubernetes objects the state machine sends are rebuilt as the service would (each `.$` read replaced by what
the state data holds: the prepare Lambda's rendering, the MD5 States.Hash gives) and validated strictly; the node
launchers SageMaker and Batch nodes run are executed here with the platforms' variables and files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from pipegen.runtime.prepare import prepare
from pipegen.runtime.templating import Values
from pipegen.targets.stepfunctions.nodes import SAGEMAKER_LAUNCH
from tests.cases import GOLDEN
from tests.stepfunctions.asl import all_states, compile_text, validate, with_targets

K8S = "1.37.0"
EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:feed-ranking-16gpu:scheduled-2026-01-02"
VALUES = Values(
    params={"learning_rate": 0.01, "epochs": 10}, run_id="scheduled-2026-01-02", run_date="2026-01-02", environ={}
)
HOSTILE = ["$(HOME)", "a b", "*", "'", '"', "$${x}", "--", ""]
# What the runtime renders them to (`$${` is the spec's escape of `${`).
RENDERED = [h.replace("$${", "${") for h in HOSTILE]


def definition(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / "stepfunctions" / f"{name}.asl.json").read_text())


def rendered_job(state: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """What the prepare Lambda state gives (its request's start_run left out: no MLflow here)."""
    spec = json.loads(state["Parameters"]["Payload"]["args"]["spec_json"])
    spec.pop("start_run", None)
    spec.pop("tracking_uri", None)
    spec.update(overrides)
    return prepare(spec, VALUES, target="stepfunctions", tracking_uri=None)["job"]


def resolve_reads(value: Any, reads: dict[str, Any]) -> Any:
    """A JSONPath Parameters template with each `key.$` replaced by reads[path] (the state data's value)."""
    if isinstance(value, list):
        return [resolve_reads(v, reads) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key.endswith(".$"):
            out[key[:-2]] = reads[item]
        else:
            out[key] = resolve_reads(item, reads)
    return out


def kubelet_expand(text: str, env: dict[str, str]) -> str:
    """What the kubelet makes of a command word or env value: $(VAR) from env, $$ as $."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: "$" if m.group(0) == "$$" else env[m.group(1)], text
    )


def test_the_16_node_spec_on_eks_creates_a_service_and_an_indexed_job_that_validate_and_meet() -> None:
    states = definition("feed-ranking-16gpu")["States"]
    chain = ["train", "train.service_name", "train.service", "train.job", "train.cleanup"]
    assert [states[s].get("Next") for s in chain[:-1]] == chain[1:]
    assert states["train.job"]["Catch"][0]["Next"] == "train.cleanup_failed"
    # Either way the MLflow run the job left RUNNING is ended (train.close, train.closing) before the run goes on or fails.
    assert states["train.cleanup"]["Next"] == "train.close"
    assert states["train.cleanup_failed"]["Next"] == states["train.service"]["Catch"][0]["Next"] == "train.closing"
    assert states["train.closing"]["Next"] == "pipegen.failed"
    # What States.Hash($$.Execution.Id, 'MD5') gives, as the Pass state formats it.
    digest = hashlib.md5(EXECUTION_ID.encode()).hexdigest()
    naming = states["train.service_name"]["Parameters"]
    assert naming["name.$"] == "States.Format('feed-ranking-16gpu-train-{}', States.Hash($$.Execution.Id, 'MD5'))"
    service_name = f"feed-ranking-16gpu-train-{digest}"
    path = f"/api/v1/namespaces/ml-training/services/{service_name}"
    assert naming["path.$"].replace("{}", digest).startswith(f"States.Format('{path}'")
    job_render = rendered_job(states["train"])
    reads = {
        "$.nodes.train.name": service_name,
        "$.nodes.train.path": path,
        "$.prepared.train.job.command": job_render["command"],
        "$.prepared.train.job.env": job_render["env"],
    }
    service_call = resolve_reads(states["train.service"]["Parameters"], reads)
    assert (service_call["Method"], service_call["Path"]) == ("POST", "/api/v1/namespaces/ml-training/services")
    service = service_call["RequestBody"]
    kubernetes_validate.validate(service, K8S, strict=True)
    run = resolve_reads(states["train.job"]["Parameters"], reads)
    job = run["Job"]
    kubernetes_validate.validate(job, K8S, strict=True)
    assert resolve_reads(states["train.cleanup"]["Parameters"], reads)["Path"] == path
    assert len(service["metadata"]["name"]) <= 63

    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (
        "Indexed",
        16,
        16,
        0,
    )
    pod = spec["template"]
    # The Service selects this run's pods, and names them: pod i is <job>-<i>.<service>.
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert pod["spec"]["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert pod["spec"]["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    (node,) = pod["spec"]["containers"]
    assert node["resources"]["limits"]["nvidia.com/gpu"] == "8"

    # Play the kubelet on pod 5 of a Job the API server named feed-ranking-16gpu-train-x7k2p.
    job_name = "feed-ranking-16gpu-train-x7k2p"
    fields = {
        "metadata.annotations['batch.kubernetes.io/job-completion-index']": "5",
        "metadata.labels['batch.kubernetes.io/job-name']": job_name,
        "metadata.labels['pipegen.dev/service']": pod["metadata"]["labels"]["pipegen.dev/service"],
    }
    env: dict[str, str] = {}
    for entry in node["env"]:
        if "valueFrom" in entry and "fieldRef" in entry["valueFrom"]:
            env[entry["name"]] = fields[entry["valueFrom"]["fieldRef"]["fieldPath"]]
        elif "value" in entry:
            env[entry["name"]] = kubelet_expand(entry["value"], env)
    assert env["MASTER_ADDR"] == f"{job_name}-0.{service_name}"
    assert (env["NODE_RANK"], env["NNODES"], env["NPROC_PER_NODE"], env["MASTER_PORT"]) == ("5", "16", "8", "29500")
    argv = [kubelet_expand(w, env) for w in node["command"] + node["args"]]
    assert argv[:8] == [
        "torchrun",
        "--nnodes=16",
        "--nproc-per-node=8",
        "--node-rank=5",
        f"--master-addr={job_name}-0.{service_name}",
        "--master-port=29500",
        "--max-restarts=0",
        "--no-python",
    ]
    assert argv[8:] == ["python", "-m", "feed.train", "--date", "2026-01-02", "--lr", "0.01", "--epochs", "10"]
    # The feature store token stays a secret reference on every node.
    assert {
        "name": "FEATURE_STORE_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "feature-store-token", "key": "feature_store_token"}},
    } in node["env"]


def test_strict_validation_catches_a_misspelt_field() -> None:
    """The check above can fail: an unknown key in the Job is refused."""
    states = definition("feed-ranking-16gpu")["States"]
    job = json.loads(json.dumps(states["train.job"]["Parameters"]["Job"]))
    job["spec"]["template"]["spec"] = {"restartPolicy": "Never", "containers": [{"name": "n", "image": "i"}]}
    kubernetes_validate.validate(job, K8S, strict=True)
    job["spec"]["completion"] = 16
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S, strict=True)


SPEC = """\
pipegen: 1
name: nodes
params: {{epochs: 10}}
backends:
  k8s: {{type: kubernetes, namespace: "{namespace}", image: "img:1", env: {{A: "$(NODE_RANK)"}}{k8s}}}
  sm: {{type: sagemaker, role_arn: "arn:aws:iam::123456789012:role/r", image: "img:1", instance_type: ml.p5.48xlarge, output_path: s3://b/o}}
  batch: {{type: aws_batch, job_queue: q, job_definition: "mnp:1"}}
steps:
  - name: t
    task:
      backend: {backend}
      command: {command}
      resources: {{gpu: 8}}
      distributed: {dist}
"""
EKS = {"name": "c", "endpoint": "https://e.example.com", "certificate_authority": "Q0E="}


def compiled(
    tmp_path: Path,
    backend: str,
    *,
    dist: str = "{nodes: 2}",
    command: Any = ("python", "t.py"),
    k8s: str = "",
    namespace: str = "ml",
    language: str = "JSONPath",
) -> tuple[dict[str, Any] | None, list[str]]:
    """The definition (None when refused) and the diagnostics of SPEC compiled for Step Functions."""
    text = SPEC.format(backend=backend, dist=dist, command=json.dumps(list(command)), k8s=k8s, namespace=namespace)
    files, problems = compile_text(with_targets(text, query_language=language, eks_cluster=EKS), tmp_path)
    # Unused backends and params are warned about (PG700, PG701); paths are shown relative to the spec's folder.
    problems = [p.replace(f"{tmp_path}/", "") for p in problems if "PG700" not in p and "PG701" not in p]
    asl = files.get("stepfunctions/nodes.asl.json")
    return (json.loads(asl) if asl is not None else None), problems


@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
@pytest.mark.parametrize("backend", ["k8s", "sm", "batch"])
def test_every_backend_and_language_passes_asl_validator(tmp_path: Path, backend: str, language: str) -> None:
    doc, problems = compiled(tmp_path, backend, command=["python", *HOSTILE], language=language)
    assert doc is not None and problems == [], problems
    path = tmp_path / "nodes.asl.json"
    path.write_text(json.dumps(doc))
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hostile_text_reaches_every_eks_node_literally(tmp_path: Path) -> None:
    """Every `$` of the step's text is doubled for the kubelet; only the $(...) pipegen writes expand."""
    doc, _ = compiled(
        tmp_path, "k8s", command=["python", *HOSTILE, "${params.epochs}"], dist="{nodes: 2, launcher: none}"
    )
    assert doc is not None
    states = doc["States"]
    job = rendered_job(states["t"])
    node = resolve_reads(
        states["t.job"]["Parameters"],
        {"$.nodes.t.name": "nodes-t-x", "$.prepared.t.job.command": job["command"], "$.prepared.t.job.env": job["env"]},
    )["Job"]["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for entry in node["env"]:
        env[entry["name"]] = kubelet_expand(entry["value"], env) if "value" in entry else "1"
    assert [kubelet_expand(w, env) for w in node["command"]] == [
        "python",
        *[h.replace("$${", "${") for h in HOSTILE],
        "10",
    ]
    assert env["A"] == "$(NODE_RANK)" and "args" not in node


def test_jobset_and_trainjob_are_refused_at_the_key(tmp_path: Path) -> None:
    for runtime in ("jobset", "trainjob"):
        doc, problems = compiled(tmp_path, "k8s", k8s=f", distributed_runtime: {runtime}")
        assert doc is None and problems[0].startswith("spec.yaml:5:"), problems
        assert [p.split(": ", 1)[1] for p in problems] == [
            "error[PG602]: target 'stepfunctions' does not run distributed_runtime "
            f"'{runtime}' (step 't', backend 'k8s'): eks:runJob waits for a Job only; hint: use distributed_runtime: "
            "indexed_job (an Indexed Job and its headless Service)"
        ], problems


def test_mpi_is_refused_off_kubernetes_and_a_namespace_must_be_a_name(tmp_path: Path) -> None:
    for backend in ("sm", "batch"):
        doc, problems = compiled(tmp_path, backend, dist="{nodes: 2, launcher: mpi}")
        assert doc is None and len(problems) == 1, problems
        assert problems[0].startswith("spec.yaml:14:41: error[PG602]: target 'stepfunctions' does not start MPI on")
    doc, problems = compiled(tmp_path, "k8s", namespace="ml')")
    assert doc is None and len(problems) == 1 and problems[0].startswith("spec.yaml:5:"), problems
    assert "cannot put namespace 'ml')' of backend 'k8s' in a Kubernetes API path" in problems[0]


def test_sagemaker_runs_one_instance_per_node(tmp_path: Path) -> None:
    states = definition("feed-ranking-16gpu-sagemaker")["States"]
    assert states["train.job"]["Parameters"]["ResourceConfig"]["InstanceCount"] == 16
    job = rendered_job(states["train"])
    algorithm = job["AlgorithmSpecification"]
    assert algorithm["ContainerEntrypoint"] == ["python3"]
    # SageMaker takes at most 256 characters per ContainerArguments item.
    assert algorithm["ContainerArguments"][:2] == ["-c", SAGEMAKER_LAUNCH] and len(SAGEMAKER_LAUNCH) <= 256
    assert {k: job["Environment"][k] for k in ("NNODES", "NPROC_PER_NODE", "MASTER_PORT")} == {
        "NNODES": "16",
        "NPROC_PER_NODE": "8",
        "MASTER_PORT": "29500",
    }
    # Any node count: the backend's instance_count (1 by default) gives way to distributed.nodes.
    doc, problems = compiled(tmp_path, "sm", dist="{nodes: 4}")
    assert (
        problems == []
        and doc is not None
        and doc["States"]["t.job"]["Parameters"]["ResourceConfig"]["InstanceCount"] == 4
    )


def _show_env() -> list[str]:
    """A node command printing what it got: its argv and the rendezvous variables."""
    code = (
        "import json,os,sys;print(json.dumps([sys.argv[1:], {k: os.environ.get(k) for k in "
        "('NODE_RANK','PET_NODE_RANK','MASTER_ADDR','PET_MASTER_ADDR')}]))"
    )
    return [sys.executable, "-c", code, *HOSTILE]


def test_the_sagemaker_launcher_reads_the_hosts_sagemaker_writes(tmp_path: Path) -> None:
    """The exact words prepare renders, run with a resourceconfig.json as SageMaker writes it (algo-1..algo-16)."""
    states = definition("feed-ranking-16gpu-sagemaker")["States"]
    words = json.loads(states["train"]["Parameters"]["Payload"]["args"]["spec_json"])["command"]
    config = tmp_path / "resourceconfig.json"
    hosts = [f"algo-{i}" for i in range(1, 17)]
    spec = {"service": "sagemaker", "image": "i", "output_path": "s3://b", "job_name": "j", "env": {}}
    for current, rank in (("algo-1", "0"), ("algo-10", "1"), ("algo-9", "15")):
        config.write_text(json.dumps({"current_host": current, "hosts": hosts[::-1], "network_interface_name": "eth0"}))
        algorithm = prepare(spec | {"command": words[:3] + _show_env()}, VALUES, target="t", tracking_uri=None)["job"][
            "AlgorithmSpecification"
        ]
        argv = algorithm["ContainerEntrypoint"] + algorithm["ContainerArguments"]
        argv[2] = argv[2].replace("/opt/ml/input/config/resourceconfig.json", str(config))
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
        got_argv, env = json.loads(out)
        assert got_argv == RENDERED
        assert env == {"NODE_RANK": rank, "PET_NODE_RANK": rank, "MASTER_ADDR": "algo-1", "PET_MASTER_ADDR": "algo-1"}


def test_batch_submits_a_multi_node_parallel_job() -> None:
    states = definition("feed-ranking-16gpu-batch")["States"]
    params = states["train.job"]["Parameters"]
    assert "ContainerOverrides" not in params
    overrides = params["NodeOverrides"]
    assert overrides["NumNodes"] == 16
    (node,) = overrides["NodePropertyOverrides"]
    assert node["TargetNodes"] == "0:"
    assert node["ContainerOverrides"]["Command.$"] == "$.prepared.train.job.Command"
    assert {"Type": "GPU", "Value": "8"} in node["ContainerOverrides"]["ResourceRequirements"]


@pytest.mark.parametrize(
    ("index", "main", "main_ip", "rank", "addr"),
    [
        ("0", "0", None, "0", "127.0.0.1"),
        ("3", "0", "10.0.0.5", "3", "10.0.0.5"),
        ("1", "2", "10.0.0.7", "15", "10.0.0.7"),
    ],
)
def test_the_batch_launcher_reads_the_variables_batch_sets(
    index: str, main: str, main_ip: str | None, rank: str, addr: str
) -> None:
    """The exact words prepare renders, run by sh with the variables AWS Batch gives each node of a 16-node job."""
    states = definition("feed-ranking-16gpu-batch")["States"]
    words = json.loads(states["train"]["Parameters"]["Payload"]["args"]["spec_json"])["command"]
    spec = {"service": "batch", "env": {}, "command": words[:4] + _show_env()}
    argv = prepare(spec, VALUES, target="t", tracking_uri=None)["job"]["Command"]
    env = {"PATH": os.environ["PATH"], "AWS_BATCH_JOB_NODE_INDEX": index, "AWS_BATCH_JOB_MAIN_NODE_INDEX": main}
    env |= {"AWS_BATCH_JOB_NUM_NODES": "16", "NNODES": "16"}  # NNODES: the step's, from the job's Environment
    if main_ip is not None:  # set on child nodes only
        env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = main_ip
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60, env=env).stdout
    got_argv, got = json.loads(out)
    assert got_argv == RENDERED
    assert got == {"NODE_RANK": rank, "PET_NODE_RANK": rank, "MASTER_ADDR": addr, "PET_MASTER_ADDR": addr}


def test_a_batch_job_without_the_steps_node_count_stops_at_once() -> None:
    """A job definition whose node count NodeOverrides could not set: the nodes say so instead of waiting."""
    states = definition("feed-ranking-16gpu-batch")["States"]
    words = json.loads(states["train"]["Parameters"]["Payload"]["args"]["spec_json"])["command"]
    argv = prepare({"service": "batch", "env": {}, "command": words}, VALUES, target="t", tracking_uri=None)["job"]
    env = {"PATH": os.environ["PATH"], "AWS_BATCH_JOB_NODE_INDEX": "0", "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0"}
    env |= {"AWS_BATCH_JOB_NUM_NODES": "2", "NNODES": "16"}
    done = subprocess.run(argv["Command"], capture_output=True, text=True, check=False, timeout=60, env=env)
    assert done.returncode == 64
    assert "pipegen: this job has 2 nodes, the step asks for 16" in done.stderr


def test_prepare_keeps_a_pods_text_from_the_kubelet() -> None:
    """Regression: prepare gave an EKS pod's rendered command and env as they were, and the kubelet expanded their
    $(VAR) (a spec command `echo $(A)` printed A's value). Every `$` is now doubled; node_env comes first, as is."""
    node_env = [{"name": "NODE_RANK", "value": "0"}]
    spec = {"service": "eks", "command": ["echo", "$(A)", "${run.id}"], "env": {"A": "$(B)"}, "node_env": node_env}
    job = prepare(spec, Values(params={}, run_id="r$(X)", run_date="d", environ={}), target="t", tracking_uri=None)
    assert job["job"]["command"] == ["echo", "$$(A)", "r$$(X)"]
    assert job["job"]["env"] == [*node_env, {"name": "A", "value": "$$(B)"}]


def test_a_single_pod_eks_step_keeps_its_text_from_the_kubelet(tmp_path: Path) -> None:
    """Regression: a literal single-pod command went into the Job as written, and the kubelet expanded `$(A)`."""
    text = SPEC.format(backend="k8s", dist="{nodes: 1}", command='[echo, "$(A)"]', k8s="", namespace="ml").replace(
        "      distributed: {nodes: 1}\n", ""
    )
    files, problems = compile_text(with_targets(text, eks_cluster=EKS), tmp_path)
    assert not [p for p in problems if "error" in p], problems
    states = json.loads(files["stepfunctions/nodes.asl.json"])["States"]
    container = states["t"]["Parameters"]["Job"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["echo", "$$(A)"]
    assert container["env"] == [{"name": "A", "value": "$$(NODE_RANK)"}]


def test_a_single_pod_eks_step_gets_the_backends_tolerations(tmp_path: Path) -> None:
    """tolerations apply to every EKS pod (single-pod steps too), and the Job validates strictly."""
    toleration = "{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}"
    text = SPEC.format(
        backend="k8s", dist="{nodes: 1}", command="[python, t.py]", k8s=f", tolerations: [{toleration}]", namespace="ml"
    ).replace("      distributed: {nodes: 1}\n", "")
    files, problems = compile_text(with_targets(text, eks_cluster=EKS), tmp_path)
    assert not [p for p in problems if "error" in p or "tolerations" in p], problems
    job = json.loads(files["stepfunctions/nodes.asl.json"])["States"]["t"]["Parameters"]["Job"]
    assert job["spec"]["template"]["spec"]["tolerations"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}
    ]
    kubernetes_validate.validate(job, K8S, strict=True)


FANOUT = """\
pipegen: 1
name: wide
backends:
  k8s: {type: kubernetes, namespace: ml, image: "img:1"}
steps:
  - name: a
    after: []
    task: {backend: k8s, command: [python, a.py], distributed: {nodes: 2}}
  - name: b
    after: []
    task: {backend: k8s, command: [python, b.py], distributed: {nodes: 2}}
"""


@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
def test_a_failed_multi_node_job_in_a_branch_fails_with_its_own_error(tmp_path: Path, language: str) -> None:
    """Two independent EKS multi-node steps run in a Parallel: a failed Job's error is kept while its Service is
    deleted, and the branch fails with it ("<Error>: <Cause>"), as a train step's branch does."""
    files, problems = compile_text(with_targets(FANOUT, query_language=language, eks_cluster=EKS), tmp_path)
    assert problems == [], problems
    path = tmp_path / "wide.asl.json"
    path.write_text(files["stepfunctions/wide.asl.json"])
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(files["stepfunctions/wide.asl.json"])
    assert any("Branches" in s for s in doc["States"].values())
    states = all_states(doc["States"])
    for step in ("a", "b"):
        [catch] = states[f"{step}.job"]["Catch"]
        assert catch["Next"] == f"{step}.cleanup_failed"
        failed = states[f"{step}.failed"]
        assert failed["Type"] == "Fail" and failed["Error"] == "pipegen.StepFailed"
        if language == "JSONPath":
            # The Catch keeps the error where the Fail state reads it.
            assert catch["ResultPath"] == f"$.failures.{step}"
            assert (
                failed["CausePath"] == f"States.Format('{{}}: {{}}', $.failures.{step}.Error, $.failures.{step}.Cause)"
            )
        else:
            [(variable, value)] = catch["Assign"].items()
            assert value == "{% $states.errorOutput %}"
            assert failed["Cause"] == f"{{% ${variable}.Error & ': ' & ${variable}.Cause %}}"


def test_the_last_steps_service_left_undeleted_does_not_fail_the_run(tmp_path: Path) -> None:
    doc, problems = compiled(tmp_path, "k8s")
    assert doc is not None and problems == [], problems
    cleanup = doc["States"]["t.cleanup"]
    assert cleanup["End"] is True
    [catch] = cleanup["Catch"]
    assert doc["States"][catch["Next"]]["Type"] == "Succeed"
