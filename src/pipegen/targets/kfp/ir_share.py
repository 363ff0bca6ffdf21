"""The IR with one component per runtime action and settings, however many tasks call it.

kfp's compiler gives every task a component and an executor of its own (comp-pipegen-aws-batch,
comp-pipegen-aws-batch-2, ...), copies of one definition: for lightweight components each copy carries the
component's source and pip preamble, about 2.3 KB, so a 500-step pipeline passed Kubernetes' 1.5 MiB object
limit. The IR refers to components by name (a task's componentRef, a component's executorLabel), and the KFP
backend compiles a task by looking its componentRef up and stores each component spec once per name
(backend/src/v2/compiler/argocompiler: `c.spec.Components[componentName]`, useComponentSpec): tasks that share
a component are what the format means. This pass keeps the first of each set of identical components and points
every task at it; nothing else in the IR changes (task inputs, retry policies, the Kubernetes settings per
executor, which are part of what "identical" compares).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import yaml


def _executors(documents: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the pipeline's executors, the Kubernetes platform's per-executor settings, {} when it has none)."""
    executors: dict[str, Any] = documents[0].get("deploymentSpec", {}).get("executors", {})
    platform: dict[str, Any] = {}
    if len(documents) > 1:
        kubernetes = documents[1].get("platforms", {}).get("kubernetes", {})
        platform = kubernetes.get("deploymentSpec", {}).get("executors", {})
    return executors, platform


def share_components(documents: list[dict[str, Any]]) -> dict[str, str]:
    """Merge identical executor components in place (kfp's IR documents: the pipeline spec, then the platform
    spec if any); returns {merged component: the component its tasks now use}."""
    spec = documents[0]
    components: dict[str, Any] = spec.get("components", {})
    executors, platform = _executors(documents)
    kept: dict[str, str] = {}
    merged: dict[str, str] = {}
    # kfp writes keys sorted, so the first of a set is its plain name (comp-x before comp-x-2): stable output.
    for name in sorted(components):
        label = components[name].get("executorLabel")
        if label is None:
            continue  # a DAG component (exit handler, condition): its tasks are renamed below
        body = {k: v for k, v in components[name].items() if k != "executorLabel"}
        key = json.dumps([body, executors.get(label), platform.get(label)], sort_keys=True)
        if key in kept:
            merged[name] = kept[key]
        else:
            kept[key] = name
    for name in merged:
        label = components.pop(name)["executorLabel"]
        executors.pop(label, None)
        platform.pop(label, None)
    dags = [spec["root"]["dag"], *(c["dag"] for c in components.values() if "dag" in c)]
    for dag in dags:
        for task in dag.get("tasks", {}).values():
            ref = task["componentRef"]
            ref["name"] = merged.get(ref["name"], ref["name"])
    return merged


def shared_ir(text: str) -> str:
    """kfp's IR YAML with identical components merged, written as kfp writes it (its header comments kept)."""
    header = "".join(itertools.takewhile(lambda line: line.startswith("#"), text.splitlines(keepends=True)))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's reader when there: the same data, faster
    documents = [d for d in yaml.load_all(text, Loader=loader) if d is not None]
    if not share_components(documents):
        return text
    return header + yaml.dump_all(documents, sort_keys=True)  # kfp's own call, so unchanged parts keep their bytes
