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
