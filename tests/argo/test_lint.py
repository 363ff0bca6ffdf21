"""The lint of what Argo's models cannot see: every golden is clean, and each rule rejects a manifest broken for it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.argo.lint import lint_manifest
from tests.argo.strict import documents
from tests.cases import GOLDEN

GOLDENS = sorted((GOLDEN / "argo").glob("*.yaml"))


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: p.stem)
def test_golden_is_clean(path: Path) -> None:
    assert lint_manifest(documents(path.read_text())) == []


def _template(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(t for t in docs[0]["spec"]["templates"] if t["name"] == name)


def _dag(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _template(docs, "pipegen-dag")["dag"]["tasks"]  # type: ignore[no-any-return]


def _task(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(t for t in _dag(docs) if t["name"] == name)


Breaker = Callable[[list[dict[str, Any]]], None]
BROKEN: dict[str, tuple[Breaker, str]] = {
    "template name with _": (lambda d: _template(d, "train").update(name="train_x"), "not a valid Argo name"),
    "missing entrypoint": (lambda d: d[0]["spec"].update(entrypoint="main"), "template 'main' does not exist"),
    "missing onExit": (lambda d: d[0]["spec"].update(onExit="exit"), "template 'exit' does not exist"),
    "task template missing": (lambda d: _task(d, "train").update(template="trainer"), "does not exist"),
    "depends on a missing task": (
        lambda d: _task(d, "quality").update(depends="trainer.Succeeded"),
        "depends on 'trainer'",
    ),
    "depends result unknown": (lambda d: _task(d, "quality").update(depends="train.Done"), "is not <task>.<result>"),
    "depends cycle": (
        lambda d: _task(d, "pipegen-context").update(depends="promote.Succeeded"),
        "through a cycle",
    ),
    "duplicate task": (lambda d: _dag(d).append(dict(_task(d, "train"))), "task names are not unique"),
    "unresolved reference": (
        lambda d: _template(d, "train")["container"]["command"].append("{{inputs.parameters.x}}"),
        "is not a reference Argo resolves",
    ),
    "reference to a task without outputs": (
        lambda d: _template(d, "train")["container"]["command"].append("{{tasks.train.outputs.parameters.result}}"),
        "is not a reference Argo resolves",
    ),
    "task output read inside a template": (
        lambda d: _template(d, "train")["container"]["command"].append(
            "{{tasks.pipegen-run-train.outputs.parameters.result}}"
        ),
        "is not a reference Argo resolves",
    ),
    "task output expression inside a template": (
        lambda d: _template(d, "pipegen-promote")["container"]["args"].append(
            "{{=jsonpath(tasks['pipegen-context'].outputs.parameters.result, '$.run_date')}}"
        ),
        "is not a reference Argo resolves",
    ),
    "input not passed": (
        lambda d: _task(d, "promote")["arguments"]["parameters"].pop(),
        "passes ['mlflow-run', 'run-date'] to template 'pipegen-promote'",
    ),
    "kubelet reference in an argument": (
        lambda d: _task(d, "promote")["arguments"]["parameters"][-1].update(value="$(HOME)"),
        "holds '$(HOME)' for the kubelet",
    ),
    "spec text as an expression": (
        lambda d: _template(d, "train")["container"]["command"].append("{{ 7*7 }}"),
        "is not a reference Argo resolves",
    ),
    "kubelet reference": (
        lambda d: _template(d, "train")["container"]["command"].append("$(HOME)"),
        "the kubelet expands '$(HOME)'",
    ),
    "retry policy": (
        lambda d: _template(d, "train")["retryStrategy"].update(retryPolicy="Sometimes"),
        "retryPolicy 'Sometimes'",
    ),
    "parameter name": (
        lambda d: d[0]["spec"]["arguments"]["parameters"].append({"name": "a b", "value": ""}),
        "parameter name 'a b'",
    ),
    "cron": (lambda d: d[1]["spec"].update(schedules=["0 25 * * *"]), "is not a five-field cron"),
    "singular schedule": (lambda d: d[1]["spec"].update(schedule="0 2 * * *"), "has no `schedule`"),
    "timezone": (lambda d: d[1]["spec"].update(timezone="Mars/Olympus"), "not an IANA timezone"),
    "concurrency": (lambda d: d[1]["spec"].update(concurrencyPolicy="Never"), "concurrencyPolicy 'Never'"),
    "cron name length": (lambda d: d[1]["metadata"].update(name="x" * 53), "longer than 52"),
    "template ref": (
        lambda d: d[1]["spec"]["workflowSpec"]["workflowTemplateRef"].update(name="other"),
        "is not the WorkflowTemplate",
    ),
    "unknown argument": (
        lambda d: d[1]["spec"]["workflowSpec"].update(arguments={"parameters": [{"name": "nope", "value": "1"}]}),
        "argument 'nope'",
    ),
}


@pytest.mark.parametrize("rule", sorted(BROKEN))
def test_each_rule_rejects_a_broken_manifest(rule: str) -> None:
    docs = copy.deepcopy(documents((GOLDEN / "argo" / "feed-ranking.yaml").read_text()))
    breaker, expected = BROKEN[rule]
    breaker(docs)
    problems = lint_manifest(docs)
    assert any(expected in p for p in problems), problems


def _manifest(docs: list[dict[str, Any]], name: str, old: str, new: str) -> None:
    resource = _template(docs, name)["resource"]
    assert old in resource["manifest"], old
    resource["manifest"] = resource["manifest"].replace(old, new, 1)


RESOURCES: dict[str, tuple[Breaker, str]] = {
    "misspelt field in a SparkApplication": (
        lambda d: _manifest(d, "features", '"sparkVersion"', '"sparkVersoin"'),
        "not an object its API accepts",
    ),
    "misspelt field in a RayJob": (
        lambda d: _manifest(d, "train", '"entrypoint"', '"entrypont"'),
        "not an object its API accepts",
    ),
    "manifest Argo leaves broken": (lambda d: _manifest(d, "train", "{", "{,"), "not an object its API accepts"),
    "object in another namespace": (
        lambda d: _manifest(d, "features", '"namespace": "ml"', '"namespace": "other"'),
        "in the workflow's namespace",
    ),
    "kubelet reference in a driver argument": (
        lambda d: _manifest(d, "features", '"arguments": [', '"arguments": ["$(HOME)",'),
        "the kubelet expands '$(HOME)' in arguments",
    ),
    "not owned by the workflow": (
        lambda d: _template(d, "train")["resource"].update(setOwnerReference=False),
        "owned by the workflow",
    ),
    "no failure condition": (
        lambda d: _template(d, "train")["resource"].pop("failureCondition"),
        "waits for nothing or forever",
    ),
    "expression outside pipegen's form": (
        lambda d: _manifest(d, "features", "toJson(", "toJson(sprig.upper("),
        "is not a reference Argo resolves",
    ),
}


@pytest.mark.parametrize("rule", sorted(RESOURCES))
def test_each_resource_rule_rejects_a_broken_manifest(rule: str) -> None:
    docs = copy.deepcopy(documents((GOLDEN / "argo" / "clickstream.yaml").read_text()))
    breaker, expected = RESOURCES[rule]
    breaker(docs)
    problems = lint_manifest(docs)
    assert any(expected in p for p in problems), problems
