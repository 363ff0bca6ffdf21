"""`pipegen compile --ir` writes the IR with tasks sharing identical components, and it means what kfp wrote.

kfp gives every task its own copy of a component (and executor); pipegen's IR keeps one per runtime action and
settings (pipegen.targets.kfp.ir_share). The differential suite runs that IR in kfp.local (its fan-out scenario
shares start_run, evaluate and promote components between branches); here every task is checked to resolve to
exactly what kfp compiled for it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipegen.targets.kfp.ir_share import shared_ir
from tests.cases import GOLDEN, REPO
from tests.kfp.test_compile import load

FANOUT = REPO / "tests" / "differential" / "scenarios" / "fanout.yaml"


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def tasks(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, task) for every task of the root DAG and of the DAG components under it."""
    components = docs[0]["components"]

    def walk(dag: dict[str, Any], at: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, task in sorted(dag["tasks"].items()):
            yield f"{at}/{key}", task
            inner = components[task["componentRef"]["name"]].get("dag")
            if inner is not None:
                yield from walk(inner, f"{at}/{key}")

    yield from walk(docs[0]["root"]["dag"], "root")


def meaning(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Each task -> what runs for it: its own spec, its component's interface, executor and Kubernetes settings
    (the names that tie them together left out)."""
    components = docs[0]["components"]
    executors = docs[0]["deploymentSpec"]["executors"]
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if len(docs) > 1 else {}
    out = {}
    for path, task in tasks(docs):
        component = components[task["componentRef"]["name"]]
        label = component.get("executorLabel")
        own = {k: v for k, v in task.items() if k != "componentRef"}
        body = {k: v for k, v in component.items() if k not in ("executorLabel", "dag")}
        out[path] = json.dumps([own, body, executors.get(label), platform.get(label)], sort_keys=True)
    return out


def kfp_ir(module: Path, tmp_path: Path) -> str:
    from kfp import compiler

    out = tmp_path / f"{module.stem}.kfp.yaml"
    compiler.Compiler().compile(load(module).pipeline, package_path=str(out))
    return out.read_text()


@pytest.mark.parametrize("name", ["feed-ranking", "pricing", "sparkray"])
def test_every_task_runs_what_kfp_compiled_for_it(name: str, tmp_path: Path) -> None:
    written = kfp_ir(GOLDEN / "kfp" / f"{name}.py", tmp_path)
    shared = shared_ir(written)
    before, after = documents(written), documents(shared)
    assert meaning(after) == meaning(before)
    # Nothing is left that no task uses, and no task points at something missing.
    used = {t["componentRef"]["name"] for _, t in tasks(after)} | {"root"}
    assert set(after[0]["components"]) | {"root"} == used
    labels = {c["executorLabel"] for c in after[0]["components"].values() if "executorLabel" in c}
    assert set(after[0]["deploymentSpec"]["executors"]) == labels
    assert shared_ir(shared) == shared  # a second pass finds nothing more to merge


def test_the_fanout_ir_shares_each_action_once(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "pipegen"), "compile", str(FANOUT), "-t", "kfp", "-o", str(tmp_path), "--ir"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    docs = documents((tmp_path / "kfp" / "diff-fanout.yaml").read_text())
    executors = [c for c in docs[0]["components"].values() if "executorLabel" in c]
    all_tasks = [t for _, t in tasks(docs) if "executorLabel" in docs[0]["components"][t["componentRef"]["name"]]]
    # Two branches, each start_run, train, evaluate and promote: the branches' actions share their components.
    assert len(executors) < len(all_tasks)
    refs = [t["componentRef"]["name"] for t in all_tasks]
    assert len(set(refs)) == len(executors)
    # The IR kfp wrote for the same module means the same, task by task.
    module = tmp_path / "kfp" / "diff-fanout.py"
    assert meaning(docs) == meaning(documents(kfp_ir(module, tmp_path)))


TIMEOUTS = """\
pipegen: 1
name: timeouts
steps:
  - {name: a, task: {command: [python, -c, pass]}, timeout: 1h}
  - {name: b, task: {command: [python, -c, pass]}, timeout: 2h, after: [a]}
  - {name: c, task: {command: [python, -c, pass]}, timeout: 1h, after: [b]}
targets:
  kfp: {base_image: registry.example.com/ml/pipegen-runtime:0.1}
"""


def test_components_that_differ_only_in_kubernetes_settings_stay_apart(tmp_path: Path) -> None:
    # A step's timeout is its executor's activeDeadlineSeconds in the platform document, not in the component.
    (tmp_path / "timeouts.yaml").write_text(TIMEOUTS)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "pipegen"), "compile", "timeouts.yaml", "-t", "kfp", "-o", "out", "--ir"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    docs = documents((tmp_path / "out" / "kfp" / "timeouts.yaml").read_text())
    refs = {key: t["componentRef"]["name"] for key, t in docs[0]["root"]["dag"]["tasks"].items()}
    deadline = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    by_step = {docs[0]["root"]["dag"]["tasks"][k]["taskInfo"]["name"]: v for k, v in refs.items()}
    assert by_step["a"] == by_step["c"] != by_step["b"]
    labels = {name: docs[0]["components"][name]["executorLabel"] for name in by_step.values()}
    assert deadline[labels[by_step["a"]]]["activeDeadlineSeconds"] == "3600"
    assert deadline[labels[by_step["b"]]]["activeDeadlineSeconds"] == "7200"
    assert meaning(docs) == meaning(documents(kfp_ir(tmp_path / "out" / "kfp" / "timeouts.py", tmp_path)))


def test_an_ir_with_nothing_to_share_is_kept_byte_for_byte() -> None:
    text = "# PIPELINE DEFINITION\n# Name: x\ncomponents:\n  comp-a:\n    executorLabel: exec-a\n"
    text += "deploymentSpec:\n  executors:\n    exec-a:\n      container: {image: i}\n"
    text += "root:\n  dag:\n    tasks:\n      a:\n        componentRef: {name: comp-a}\n"
    assert shared_ir(text) == text
