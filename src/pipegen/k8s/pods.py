"""What the SparkApplication and RayJob builders share: how a target writes run-time values into a Kubernetes
object (PodValues), a step's env as EnvVar entries, and names and labels of the objects a step creates.

The builders know the Kubernetes objects; a target knows how its own run-time values (parameters, the run's id and
date, a training step's MLflow run) are written in them. PodValues is that seam.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pipegen.expr import parse_template

# Every object pipegen creates carries these labels (selectable with kubectl -l); label values are at most 63.
MANAGED_BY = {"app.kubernetes.io/managed-by": "pipegen"}
# The part of a generated name pipegen chooses: KubeRay refuses RayJob names past 47 characters and Spark names the
# driver's Service `<app>-<16 hex>-driver-svc` (63 at most); the API server adds 5 random characters to generateName.
NAME_BASE_LENGTH = 30


class PodValues(Protocol):
    """How a target writes spec text (literal parts, ${params.X}, ${run.id}, ${run.date}) into a Kubernetes object."""

    def text(self, value: str) -> str:
        """The text where nothing but the target reads it (Spark conf, files, images)."""

    def pod_text(self, value: str) -> str:
        """The text as a container's argument or env value, which the kubelet reads for `$(VAR)` too."""

    def shell_line(self, words: Sequence[str]) -> str:
        """Texts as the words of one POSIX shell command line that is itself a container's argument."""


@dataclass(frozen=True)
class StepObject:
    """What a builder needs besides the step: the object's base name and labels, and a training step's MLflow env.

    run_env: EnvVar entries (MLFLOW_RUN_ID, MLFLOW_EXPERIMENT_ID, MLFLOW_TRACKING_URI) in the target's own
    references; empty for a step that does not train. They win over the step's env of the same name.
    """

    pipeline: str
    step: str
    values: PodValues
    run_env: Sequence[dict[str, Any]] = ()

    def metadata(self, namespace: str) -> dict[str, Any]:
        """generateName (a retried task creates a new object), the namespace, pipegen's labels."""
        base = re.sub(r"[^a-z0-9-]+", "-", f"{self.pipeline}-{self.step}".lower())[:NAME_BASE_LENGTH].strip("-")
        return {
            "generateName": f"{base}-",
            "labels": {**MANAGED_BY, "pipegen.dev/pipeline": self.pipeline[:63], "pipegen.dev/step": self.step[:63]},
            "namespace": namespace,
        }


def secret_env(var: str, secret: str) -> dict[str, Any]:
    """An env var read from the Kubernetes secret that ${secret.NAME} names (key NAME), never the value itself."""
    from pipegen.targets.base import kubernetes_name

    return {"name": var, "valueFrom": {"secretKeyRef": {"name": kubernetes_name(secret), "key": secret}}}


def env_entries(
    env: Mapping[str, str], values: PodValues, run_env: Sequence[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """A step's env as EnvVar entries sorted by name: a whole ${secret.X} as a secretKeyRef, other text as the
    kubelet keeps it; run_env entries replace the step's of the same name."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in env.items():
        ref = parse_template(value).single_ref
        if ref is not None and ref.namespace == "secret":
            out[key] = secret_env(key, ref.name)
        else:
            out[key] = {"name": key, "value": values.pod_text(value)}
    for entry in run_env:
        out[str(entry["name"])] = dict(entry)
    return [out[k] for k in sorted(out)]


def cpu_quantity(cores: float) -> str:
    """A CPU amount as Kubernetes writes it: whole cores, else millicores ('500m')."""
    millicores = round(cores * 1000)
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"
