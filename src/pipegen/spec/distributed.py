"""Multi-node training (`distributed:` on a task or train step) and the Kubernetes scheduling keys it needs.

`distributed` sits on the step's task/train body, beside `resources`, because `resources` is what each node gets:
N nodes of that size. The backend says where the nodes run; the Kubernetes backend adds how (`distributed_runtime`),
which GPU pools the pods may land on (`tolerations`) and how long a large image may take to start (`startup_timeout`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from pipegen.spec.base import Model
from pipegen.spec.limits import LIMITS, bounded_duration, bounded_integer
from pipegen.spec.scalars import Duration

Nodes = Annotated[
    int,
    Field(ge=LIMITS["distributed.nodes"].low, le=LIMITS["distributed.nodes"].high),
    bounded_integer("distributed.nodes"),
]
ProcsPerNode = Annotated[
    int,
    Field(ge=LIMITS["distributed.procs_per_node"].low, le=LIMITS["distributed.procs_per_node"].high),
    bounded_integer("distributed.procs_per_node"),
]
StartupTimeout = Annotated[Duration, bounded_duration("startup_timeout")]
TolerationSeconds = Annotated[
    int,
    Field(ge=LIMITS["toleration_seconds"].low, le=LIMITS["toleration_seconds"].high),
    bounded_integer("toleration_seconds"),
]
LAUNCHERS = ("torchrun", "mpi", "none")
DISTRIBUTED_RUNTIMES = ("indexed_job", "jobset", "trainjob")
# A label key as Kubernetes validates it: an optional DNS prefix and '/', then a name of at most 63 characters.
_LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"


class Distributed(Model):
    """Run the command on `nodes` machines at once, `procs_per_node` processes each, started by `launcher`.

    procs_per_node defaults to the step's resources.gpu (one process per GPU), else 1: see
    `procs_per_node_of`. Every node gets the step's `resources`.
    """

    nodes: Nodes
    procs_per_node: ProcsPerNode | None = None
    launcher: Literal["torchrun", "mpi", "none"] = "torchrun"


class Toleration(Model):
    """A Kubernetes Toleration (core/v1), in the spec's snake_case: which node taints the pods accept."""

    key: Annotated[str, Field(pattern=_LABEL_KEY)] | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: Annotated[str, Field(max_length=63)] | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: TolerationSeconds | None = None

    @model_validator(mode="after")
    def _as_kubernetes_validates(self) -> Toleration:
        # The API server's own rules (ValidateTolerations): say them here rather than at `kubectl apply`.
        if self.operator == "Exists" and self.value is not None:
            raise PydanticCustomError(
                "pg_combination",
                "a toleration with operator 'Exists' takes no 'value'",
                {"hint": "remove 'value', or use operator: Equal"},
            )
        if self.key is None and self.operator != "Exists":
            raise PydanticCustomError(
                "pg_combination",
                "a toleration without 'key' must use operator 'Exists' (it then tolerates every taint)",
                {"hint": "add the taint's key, or set operator: Exists"},
            )
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise PydanticCustomError(
                "pg_combination",
                "'toleration_seconds' applies only to effect 'NoExecute'",
                {"hint": "set effect: NoExecute, or remove toleration_seconds"},
            )
        return self


def procs_per_node_of(distributed: Distributed, gpu: int | None) -> int:
    """Processes per node: as written, else one per GPU of the step's resources, else 1."""
    if distributed.procs_per_node is not None:
        return distributed.procs_per_node
    return gpu if gpu else 1
