"""The target seam: what a target declares, and the capability checks every target shares."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from pipegen.diagnostics import Diagnostic, diag
from pipegen.emit import Output
from pipegen.resolve import Pipeline, ResolvedStep


def kubernetes_name(name: str) -> str:
    """A Kubernetes object name (DNS-1123) for a secret reference: lowercase, '-' for anything else."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "secret"


# A waiting gate's deadline covers its whole wait plus these. The last check starts at most at the wait's
# timeout (run_gate never sleeps past it), so one check's own time must fit after it: a check is one listing
# or one query, and the S3/SQL clients give up well within 5 minutes. The margin covers what happens before
# the first check: pod scheduling, image pull, kfp installing itself, importing the runtime.
GATE_CHECK_ALLOWANCE_SECONDS = 300
GATE_START_MARGIN_SECONDS = 300


def gate_deadline_seconds(step: ResolvedStep) -> int | None:
    """The deadline of a gate step's task, in seconds: its timeout, raised to cover a waiting gate's whole wait.

    A waiting gate must not be killed mid-wait by a step timeout shorter than `wait.timeout`; every target
    uses this one number (wait timeout + one check + start margin, or the step's timeout if longer).
    """
    timeout = step.policy.timeout
    wait = (step.gate or {}).get("wait")
    if step.kind != "gate" or wait is None:
        return timeout
    needed = int(wait["timeout_seconds"]) + GATE_CHECK_ALLOWANCE_SECONDS + GATE_START_MARGIN_SECONDS
    return max(timeout or 0, needed)


def promote_request(pipeline: Pipeline, step: ResolvedStep) -> dict[str, Any]:
    """What the runtime's promote step is given, by every target that calls it with a spec."""
    body = step.body
    spec: dict[str, Any] = {
        "pipeline": pipeline.name,
        "model": body.model,
        "alias": body.alias,
        # The runtime renders its spec strings; the artifact path is literal text.
        "artifact": body.artifact.replace("${", "$${"),
        "thresholds": list(step.judged_by),
        "webhooks": [n.webhook for n in body.notify],
        "tracking_uri": pipeline.spec.mlflow.tracking_uri or "",
    }
    if step.champion is not None:
        spec["champion"] = step.champion
    return spec


class NoOptions(BaseModel):
    """A target without options still rejects unknown keys under `targets.<name>`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


@dataclass(frozen=True)
class Support:
    """What a target can express: backend types, gate checks, and named features with how each maps."""

    backends: dict[str, str]
    gates: dict[str, str]
    features: dict[str, str] = field(default_factory=dict)


class Target(ABC):
    """One orchestrator: a module under pipegen.targets plus templates/<name>/."""

    name: ClassVar[str]
    title: ClassVar[str]
    support: ClassVar[Support]
    options_model: ClassVar[type[BaseModel]] = NoOptions

    def check(self, pipeline: Pipeline, options: BaseModel) -> list[Diagnostic]:
        """Diagnostics for what this target cannot express; targets extend with their own."""
        return list(self._unsupported(pipeline))

    def _unsupported(self, pipeline: Pipeline) -> Iterator[Diagnostic]:
        for step in pipeline.steps:
            if step.backend is not None and step.backend.type not in self.support.backends:
                yield diag(
                    "PG602",
                    f"target '{self.name}' cannot run step '{step.name}' on backend type '{step.backend.type}'"
                    f" (backend '{step.backend_name}')",
                    pipeline.locate(step, step.kind, "backend"),
                    f"{self.title} supports backend types: {', '.join(self.support.backends)}",
                )
            gate = step.step.gate
            if gate is not None and gate.check not in self.support.gates:
                yield diag(
                    "PG602",
                    f"target '{self.name}' cannot run gate check '{gate.check}' of step '{step.name}'",
                    pipeline.locate(step, "gate", "check"),
                    f"{self.title} supports gate checks: {', '.join(self.support.gates)}",
                )

    def finish(self, outputs: list[Output], flags: frozenset[str]) -> list[Output]:
        """A last pass over the rendered files for command-line flags (e.g. kfp's --ir); none by default."""
        return outputs

    @abstractmethod
    def render(self, pipeline: Pipeline, options: BaseModel) -> list[Output]:
        """The files for this pipeline, as paths relative to the output directory."""
