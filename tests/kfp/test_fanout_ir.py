"""A fan-out's branches have no dependency between them in the IR KFP stores, so KFP runs them side by side.

kfp.local runs one task at a time, so the differential suite cannot show KFP's fan-out parallelism here;
what decides it on a cluster is the IR: the KFP backend starts every task whose `dependentTasks` are done.
BENCHMARKS.md's fan-out section rests on this test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.cases import REPO

FANOUT = REPO / "tests" / "differential" / "scenarios" / "fanout.yaml"


def compiled_ir(tmp_path: Path) -> dict[str, Any]:
    """The fan-out scenario compiled by `pipegen compile --ir` (the real kfp compiler writes the IR)."""
    pipegen = Path(sys.executable).parent / "pipegen"
    proc = subprocess.run(
        [str(pipegen), "compile", str(FANOUT), "-t", "kfp", "-o", str(tmp_path), "--ir"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return dict(next(yaml.safe_load_all((tmp_path / "kfp" / "diff-fanout.yaml").read_text())))


def upstream(ir: dict[str, Any]) -> dict[str, set[str]]:
    """Each task (at any depth) -> every task it waits for, directly or not.

    A task inside a dsl.If group also waits for what its group waits for.
    """
    direct: dict[str, set[str]] = {}
    # Tasks by their display names (a step's name, `_` -> `-`): runtime steps share their action's component,
    # and kfp names a task after its component.
    shown: dict[str, str] = {}

    def walk(dag: dict[str, Any], around: set[str]) -> None:
        for name, task in dag["tasks"].items():
            shown[name] = task["taskInfo"]["name"].replace("_", "-")
            direct[name] = set(task.get("dependentTasks", [])) | around
            inner = ir["components"].get(task["componentRef"]["name"], {}).get("dag")
            if inner is not None:
                walk(inner, direct[name])

    walk(ir["root"]["dag"], set())
    direct = {shown[name]: {shown[t] for t in ups} for name, ups in direct.items()}
    closed: dict[str, set[str]] = {}
    for name in direct:
        seen: set[str] = set()
        pending = list(direct[name])
        while pending:
            task = pending.pop()
            if task not in seen:
                seen.add(task)
                pending += direct.get(task, set())
        closed[name] = seen
    return closed


def test_the_two_branches_of_the_fanout_share_no_dependency(tmp_path: Path) -> None:
    waits = upstream(compiled_ir(tmp_path))
    branch = {side: {t for t, up in waits.items() if f"train-{side}" in up or t == f"train-{side}"} for side in "ab"}
    # Each branch is train -> judge -> promote (inside its condition), nothing of the other side upstream.
    assert {"train-a", "judge-a", "promote-a"} <= branch["a"] and {"train-b", "judge-b", "promote-b"} <= branch["b"]
    assert not branch["a"] & branch["b"]
    for side, other in (("a", "b"), ("b", "a")):
        for task in branch[side]:
            assert not waits[task] & branch[other], f"{task} waits for {waits[task] & branch[other]}"
    # And the two trainings wait for nothing they share (each waits only for its own run being started).
    assert not waits["train-a"] & waits["train-b"], (waits["train-a"], waits["train-b"])
