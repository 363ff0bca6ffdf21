"""The validators themselves: a misspelt key, a key in the wrong place or a value of the wrong type is refused by
each, and an object the projects' own examples describe passes (a validator that accepts anything proves nothing)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.k8s.strict import Invalid, validate_ray_job, validate_spark_application

SPARK: dict[str, Any] = {
    "apiVersion": "sparkoperator.k8s.io/v1beta2",
    "kind": "SparkApplication",
    "metadata": {"name": "pi", "namespace": "default"},
    "spec": {
        "type": "Python",
        "mode": "cluster",
        "image": "spark:4.0.1",
        "sparkVersion": "4.0.1",
        "mainApplicationFile": "local:///opt/spark/examples/src/main/python/pi.py",
        "arguments": ["10"],
        "restartPolicy": {"type": "Never"},
        "driver": {"cores": 1, "memory": "512m", "serviceAccount": "spark"},
        "executor": {"instances": 1, "cores": 1, "memory": "512m"},
    },
}
RAY: dict[str, Any] = {
    "apiVersion": "ray.io/v1",
    "kind": "RayJob",
    "metadata": {"name": "sample"},
    "spec": {
        "entrypoint": "python /home/ray/samples/sample_code.py",
        "shutdownAfterJobFinishes": True,
        "rayClusterSpec": {
            "rayVersion": "2.60.0",
            "headGroupSpec": {
                "rayStartParams": {},
                "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0"}]}},
            },
            "workerGroupSpecs": [
                {
                    "groupName": "small",
                    "replicas": 1,
                    "minReplicas": 1,
                    "maxReplicas": 1,
                    "rayStartParams": {},
                    "template": {"spec": {"containers": [{"name": "ray-worker", "image": "rayproject/ray:2.60.0"}]}},
                }
            ],
        },
    },
}


def _changed(document: dict[str, Any], path: tuple[Any, ...], key: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(document)
    at = out
    for part in path:
        at = at[part]
    at[key] = value
    return out


def test_valid_objects_pass() -> None:
    validate_spark_application(SPARK)
    validate_ray_job(RAY)


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        (("spec",), "sparkConfs", {"a": "b"}),  # misspelt sparkConf
        (("spec", "driver"), "coers", 1),  # misspelt cores, one level down
        (("spec", "restartPolicy"), "typ", "Never"),
        (("spec", "driver"), "cores", "1"),  # a string where the API has an integer
    ],
)
def test_spark_application_refuses(path: tuple[Any, ...], key: str, value: Any) -> None:
    with pytest.raises(Invalid):
        validate_spark_application(_changed(SPARK, path, key, value))


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        (("spec",), "entrypont", "python x.py"),  # misspelt entrypoint
        (("spec", "rayClusterSpec", "headGroupSpec"), "rayStartParam", {}),
        (("spec", "rayClusterSpec", "workerGroupSpecs", 0, "template", "spec", "containers", 0), "imag", "x"),
        (("spec",), "backoffLimit", "0"),  # a string where the API has an integer
    ],
)
def test_ray_job_refuses(path: tuple[Any, ...], key: str, value: Any) -> None:
    with pytest.raises(Invalid):
        validate_ray_job(_changed(RAY, path, key, value))
