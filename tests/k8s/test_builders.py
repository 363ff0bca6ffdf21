"""The SparkApplication and RayJob builders: what each step becomes, validated strictly against the published
models (kubeflow-spark-api) and CRD schema (KubeRay's), for a plain spec and for hostile text in every field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipegen.k8s import ray as k8s_ray
from pipegen.k8s import spark as k8s_spark
from tests.hostile import dump, hostile_spec
from tests.k8s.strict import validate
from tests.k8s.support import RUN_ENV, pipeline_of, step_objects

SPEC = """\
pipegen: 1
name: k8s
defaults: {timeout: 2h}
mlflow: {tracking_uri: "${secret.MLFLOW_URI}", experiment: k8s}
backends:
  spark:
    type: spark
    platform: kubernetes
    kubernetes: {image: "spark:4.0.1", spark_version: 4.0.1, namespace: ml, service_account: spark-sa}
    driver: {cores: 1, memory: 2g}
    executors: {instances: 3, cores: 2, memory: 4g}
    conf: {spark.sql.shuffle.partitions: "8"}
    py_files: [local:///app/lib.zip]
    jars: [local:///app/extra.jar]
    packages: ["org.apache.hadoop:hadoop-aws:3.4.1"]
  jvm:
    type: spark
    platform: kubernetes
    kubernetes: {image: "spark:4.0.1", spark_version: 4.0.1}
    main_class: com.example.Features
  ray:
    type: ray
    cluster:
      image: rayproject/ray:2.60.0
      ray_version: 2.60.0
      namespace: ml
      service_account: ray-sa
      head: {cpus: 0.5, memory: 2Gi}
      workers: [{name: gpu, replicas: 3, cpus: 4, gpus: 2, memory: 16Gi}, {name: cpu, replicas: 1}]
    runtime_env: {pip: [scikit-learn], env_vars: {A: "1"}}
    entrypoint_resources: {cpus: 1, gpus: 0.5}
steps:
  - name: features
    task:
      backend: spark
      command: [local:///app/features.py, --out, "s3://b/$(HOME)/x"]
      env: {TOKEN: "${secret.FEATURE_TOKEN}", MODE: fast}
  - name: jvm_features
    task: {backend: jvm, command: [local:///app/features.jar, "1"]}
  - name: train
    train:
      backend: ray
      command: [python, train.py, --note, "it's $(HOME) \\"quoted\\""]
      env: {MODE: fast}
"""


def _objects() -> dict[str, dict[str, Any]]:
    return {step.name: obj for step, obj in step_objects(pipeline_of(SPEC))}


def test_spark_application() -> None:
    app = _objects()["features"]
    validate(app)
    assert app["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
    assert app["metadata"]["generateName"] == "k8s-features-"
    assert app["metadata"]["namespace"] == "ml"
    spec = app["spec"]
    assert spec["type"] == "Python" and spec["mode"] == "cluster"
    assert spec["restartPolicy"] == {"type": "Never"}  # the orchestrator retries
    assert spec["mainApplicationFile"] == "local:///app/features.py"
    # The arguments are the driver container's args: '$' doubled, so the kubelet leaves $(HOME) as written.
    assert spec["arguments"] == ["--out", "s3://b/$$(HOME)/x"]
    assert spec["sparkConf"] == {"spark.sql.shuffle.partitions": "8"}
    assert spec["deps"] == {
        "jars": ["local:///app/extra.jar"],
        "packages": ["org.apache.hadoop:hadoop-aws:3.4.1"],
        "pyFiles": ["local:///app/lib.zip"],
    }
    assert spec["driver"]["cores"] == 1 and spec["driver"]["memory"] == "2g"
    assert spec["driver"]["serviceAccount"] == "spark-sa"
    assert (spec["executor"]["instances"], spec["executor"]["cores"], spec["executor"]["memory"]) == (3, 2, "4g")
    token = {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"key": "FEATURE_TOKEN", "name": "feature-token"}}}
    assert spec["driver"]["env"] == [{"name": "MODE", "value": "fast"}, token]
    assert spec["executor"]["env"] == spec["driver"]["env"]
    assert spec["timeToLiveSeconds"] == k8s_spark.TIME_TO_LIVE_SECONDS


def test_jvm_application_and_train_env() -> None:
    app = _objects()["jvm_features"]
    validate(app)
    assert app["spec"]["type"] == "Scala" and app["spec"]["mainClass"] == "com.example.Features"
    assert "serviceAccount" not in app["spec"]["driver"]
    pipeline = pipeline_of(SPEC.replace("task: {backend: jvm", "train: {backend: jvm"))
    [app] = [obj for step, obj in step_objects(pipeline) if step.name == "jvm_features"]
    validate(app)
    # A training step's MLflow run reaches the driver (where the application's mlflow calls run), not the executors.
    assert app["spec"]["driver"]["env"] == RUN_ENV
    assert "env" not in app["spec"]["executor"]


def test_ray_job() -> None:
    job = _objects()["train"]
    validate(job)
    spec = job["spec"]
    assert job["apiVersion"] == "ray.io/v1" and job["metadata"]["namespace"] == "ml"
    assert spec["entrypoint"] == "python train.py --note 'it'\"'\"'s $$(HOME) \"quoted\"'"
    assert (spec["submissionMode"], spec["backoffLimit"], spec["shutdownAfterJobFinishes"]) == ("K8sJobMode", 0, True)
    assert spec["activeDeadlineSeconds"] == 7200
    assert spec["ttlSecondsAfterFinished"] == k8s_ray.TTL_SECONDS_AFTER_FINISHED
    assert (spec["entrypointNumCpus"], spec["entrypointNumGpus"]) == (1, 0.5)
    # The user's runtime_env alone: the step's env and the MLflow run are on the cluster's containers.
    assert json.loads(spec["runtimeEnvYAML"]) == {"env_vars": {"A": "1"}, "pip": ["scikit-learn"]}
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == "2.60.0"
    head = cluster["headGroupSpec"]["template"]["spec"]
    assert head["serviceAccountName"] == "ray-sa"
    [container] = head["containers"]
    assert container["resources"] == {
        "limits": {"cpu": "500m", "memory": "2Gi"},
        "requests": {"cpu": "500m", "memory": "2Gi"},
    }
    assert container["env"] == sorted([*RUN_ENV, {"name": "MODE", "value": "fast"}], key=lambda e: e["name"])
    gpu, cpu = cluster["workerGroupSpecs"]
    assert (gpu["groupName"], gpu["replicas"], gpu["minReplicas"], gpu["maxReplicas"]) == ("gpu", 3, 3, 3)
    worker = gpu["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "2"}
    assert worker["env"] == container["env"]
    assert "resources" not in cpu["template"]["spec"]["containers"][0]


def test_fractional_gpus_are_found() -> None:
    pipeline = pipeline_of(SPEC.replace("gpus: 2, memory: 16Gi", "gpus: 1.5, memory: 16Gi"))
    [backend] = [s.backend for s in pipeline.steps if s.name == "train"]
    assert k8s_ray.fractional_gpus(backend) == [(("cluster", "workers", 0, "gpus"), 1.5)]  # type: ignore[arg-type]


def test_same_spec_same_objects() -> None:
    assert json.dumps(_objects(), sort_keys=True) == json.dumps(_objects(), sort_keys=True)


@pytest.mark.parametrize("variant", ["spark.kubernetes", "ray.cluster"])
def test_hostile_text_builds_objects_the_api_accepts(variant: str) -> None:
    data, _ = hostile_spec(variant)
    objects = step_objects(pipeline_of(dump(data)))
    assert {s.name for s, _ in objects} == {"prep", "fit"}
    for _, obj in objects:
        validate(obj)
