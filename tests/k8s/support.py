"""Building the custom resources of a spec's steps outside any target, for the builder tests."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from pipegen.expr import Lit, parse_template
from pipegen.frontend import check_source
from pipegen.k8s.pods import StepObject
from pipegen.k8s.ray import ray_job
from pipegen.k8s.spark import spark_application
from pipegen.loader import Source
from pipegen.resolve import Pipeline, ResolvedStep, resolve
from pipegen.spec import RayBackend, SparkBackend

RUN_ENV = [
    {"name": "MLFLOW_EXPERIMENT_ID", "value": "7"},
    {"name": "MLFLOW_RUN_ID", "value": "0123456789abcdef"},
    {"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow.ml:5000"},
]


# What run-time references stand for here (each target writes its own; these tests need only some text).
SAMPLE = {"params": "P", "run.id": "run-1", "run.date": "2026-01-01"}


def _literal(value: str) -> str:
    parts = parse_template(value).parts
    return "".join(
        p.text if isinstance(p, Lit) else SAMPLE[p.namespace if p.namespace != "run" else f"run.{p.name}"]
        for p in parts
    )


class LiteralValues:
    """PodValues writing references as SAMPLE values: text as it is, `$` doubled where the kubelet reads it,
    shell-quoted where bash does."""

    def text(self, value: str) -> str:
        return _literal(value)

    def pod_text(self, value: str) -> str:
        return _literal(value).replace("$", "$$")

    def shell_line(self, words: Sequence[str]) -> str:
        return shlex.join(_literal(w) for w in words).replace("$", "$$")


def pipeline_of(text: str) -> Pipeline:
    """The resolved pipeline of a spec's text (which must be valid)."""
    checked = check_source(Source("spec.yaml", text))
    assert checked.ok, [d.format() for d in checked.diagnostics]
    return resolve(checked)


def step_objects(pipeline: Pipeline) -> list[tuple[ResolvedStep, dict[str, Any]]]:
    """Each Spark-on-Kubernetes and Ray-cluster step with the object it runs as; train steps get RUN_ENV."""
    out = []
    for step in pipeline.steps:
        made = StepObject(pipeline.name, step.name, LiteralValues(), RUN_ENV if step.kind == "train" else ())
        if isinstance(step.backend, SparkBackend) and step.backend.kubernetes is not None:
            out.append((step, spark_application(step, made)))
        elif isinstance(step.backend, RayBackend) and step.backend.cluster is not None:
            out.append((step, ray_job(step, made)))
    return out
