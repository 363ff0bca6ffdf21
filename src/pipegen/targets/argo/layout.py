"""The manifest as written: a header comment, then the documents as YAML with sorted keys."""

from __future__ import annotations

from typing import Any

import yaml

from pipegen.resolve import Pipeline
from pipegen.spec import backend_variant
from pipegen.targets.base import header_lines

# libyaml's emitter (when PyYAML has it) writes a 1,000-step manifest several times faster than the pure-Python
# one. The two fold long double-quoted strings differently, and fold nothing else differently: lines are never
# folded (WIDTH), so both write the same bytes (tests/argo/test_layout.py holds them to it).
_BASE: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
WIDTH = 2**31 - 1


class _Dumper(_BASE):  # type: ignore[valid-type,misc]
    """A safe dumper without anchors/aliases (a shared dict is written in full each time, as a reader expects)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class PureDumper(yaml.SafeDumper):
    """The pure-Python dumper with the same settings: what an install without libyaml writes."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class Block(str):
    """A multi-line string written as a literal block (`|`), e.g. a resource template's manifest, readable as it is.

    Where YAML cannot hold the text as a block (trailing spaces, control characters), both emitters quote it.
    """


def _block(dumper: yaml.SafeDumper, data: Block) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")


_Dumper.add_representer(Block, _block)
PureDumper.add_representer(Block, _block)


def dump(doc: dict[str, Any], dumper: type[yaml.SafeDumper] = _Dumper) -> str:
    """One document as YAML: sorted keys, block style, unicode as is, no line folded."""
    return yaml.dump(doc, Dumper=dumper, sort_keys=True, allow_unicode=True, width=WIDTH, default_flow_style=False)


HEADER_NOTE = [
    "# Apply with `kubectl apply -f` (or argo template create / argo cron create) in the namespace below.",
    "# Argo's executor records each pod's outputs as a WorkflowTaskResult: the service account of every pod (the",
    "# workflow's, and a kubernetes backend's service_account) needs a Role bound to it with",
    "#   rules: [{apiGroups: [argoproj.io], resources: [workflowtaskresults], verbs: [create, patch]}]",
]


# Kinds the resource templates of spark, ray and multi-node steps create (argo/spark.py, argo/ray.py,
# argo/distributed.py): API group, resource, and the controller that must run in the cluster for a custom resource.
CREATED = {
    "SparkApplication": ("sparkoperator.k8s.io", "sparkapplications", "the Spark Operator"),
    "RayJob": ("ray.io", "rayjobs", "KubeRay"),
    "JobSet": ("jobset.x-k8s.io", "jobsets", "the JobSet controller"),
    "Job": ("batch", "jobs", ""),
    "Service": ('""', "services", ""),
}


def _created_note(documents: list[dict[str, Any]]) -> list[str]:
    """What the workflow's service account needs for the objects its resource templates create (none: nothing)."""
    text = "".join(str(t["resource"]["manifest"]) for t in documents[0]["spec"]["templates"] if "resource" in t)
    kinds = sorted(k for k in CREATED if f'"kind": "{k}"' in text)
    if not kinds:
        return []
    rules = ", ".join(
        f"{{apiGroups: [{CREATED[k][0]}], resources: [{CREATED[k][1]}], verbs: [create, get, patch]}}" for k in kinds
    )
    controllers = [CREATED[k][2] for k in kinds if CREATED[k][2]]
    needs = f" ({' and '.join(controllers)} installed in the namespace)" if controllers else ""
    return [
        "# Its resource templates create " + " and ".join(kinds) + " objects as the workflow's service account, which",
        f"# needs{needs}:  rules: [{rules}]",
    ]


# What the runtime image needs beyond pipegen-ml[runtime] for the spark-submit, Spark-on-AWS and Ray-address steps
# its runtime containers run (the shared templates pipegen-spark[-n] and pipegen-ray[-n]).
EXTRAS = {
    "spark": "Java 17 and pipegen-ml[spark] (spark-submit)",
    "aws": "pipegen-ml[aws] (Spark jobs on AWS)",
    "ray": "pipegen-ml[ray] (Ray's job submission)",
}


def _runtime_note(pipeline: Pipeline) -> list[str]:
    """What the runtime image needs for the Spark and Ray steps it runs (none: nothing)."""
    needs: set[str] = set()
    for step in pipeline.steps:
        chosen = backend_variant(step.backend) if step.backend is not None else None
        variant = chosen[0] if chosen is not None else None
        if variant == "spark.submit":
            needs.add("spark")
        elif variant is not None and variant.startswith("spark.") and variant != "spark.kubernetes":
            needs.add("aws")
        elif variant == "ray.address":
            needs.add("ray")
    if not needs:
        return []
    return ["# Its runtime image also needs " + " and ".join(EXTRAS[k] for k in EXTRAS if k in needs) + "."]


def manifest_text(pipeline: Pipeline, documents: list[dict[str, Any]]) -> str:
    """The multi-document YAML: deterministic bytes for the same documents."""
    body = "---\n".join(dump(doc) for doc in documents)
    notes = [*HEADER_NOTE, *_created_note(documents), *_runtime_note(pipeline)]
    return "\n".join([*header_lines(pipeline), *notes]) + "\n---\n" + body
