"""The Argo target's own checks (located diagnostics) and its deterministic output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.argo.strict import documents
from tests.cases import REPO
from tests.conftest import CliResult

Cli = Callable[..., CliResult]

BASE = """\
pipegen: 1
name: {name}
params: {{p: {param}}}
backends:
  pods: {{type: kubernetes, image: "reg/x:1", namespace: ml}}
  other: {{type: kubernetes, image: "reg/y:1", namespace: {other_ns}}}
steps:
  - name: {step}
    task: {{backend: pods, command: [{arg}]}}
  - name: two
    task: {{backend: other, command: [run, "${{params.p}}"]}}
{targets}
"""


def _compile(cli: Cli, tmp_path: Path, **fields: str) -> CliResult:
    values = {
        "name": "x",
        "param": "1",
        "other_ns": "ml",
        "step": "one",
        "arg": "run",
        "targets": "targets: {argo: {runtime_image: reg/runtime:1}}",
    } | fields
    spec = tmp_path / "x.yaml"
    spec.write_text(BASE.format(**values), encoding="utf-8")
    return cli("compile", str(spec), "-t", "argo", "-o", str(tmp_path / "out"))


def test_clean_spec_compiles(cli: Cli, tmp_path: Path) -> None:
    result = _compile(cli, tmp_path)
    assert result.code == 0, result.err
    doc = documents((tmp_path / "out" / "argo" / "x.yaml").read_text())[0]
    assert doc["metadata"]["namespace"] == "ml"
    tasks = doc["spec"]["templates"][0]["dag"]["tasks"]
    assert [t.get("depends") for t in tasks] == [None, "one.Succeeded"]


@pytest.mark.parametrize(
    ("fields", "line", "message"),
    [
        ({"step": "pipegen_run"}, 8, "error[PG601]: step name 'pipegen_run'"),
        (
            {"other_ns": "other"},
            6,
            "error[PG602]: target 'argo' runs every pod of a workflow in its own namespace 'ml'",
        ),
        ({"arg": '"{{x}}"'}, 9, "error[PG602]: target 'argo' cannot pass the command of container step 'one'"),
        ({"arg": '"${secret.tok}"'}, 9, "cannot put ${secret.tok} in the command"),
        ({"param": '"{{x}}"'}, 3, "cannot pass the default of parameter 'p' unchanged"),
    ],
)
def test_what_argo_cannot_express_is_located(
    cli: Cli, tmp_path: Path, fields: dict[str, str], line: int, message: str
) -> None:
    result = _compile(cli, tmp_path, **fields)
    assert result.code == 1
    first = next(line for line in result.err.splitlines() if "error[" in line)
    assert f"x.yaml:{line}:" in first and message in first, result.err
    assert "Traceback" not in result.err


def test_runtime_steps_need_the_runtime_image(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "x.yaml"
    spec.write_text(
        "pipegen: 1\nname: x\nsteps:\n  - name: g\n    gate: {check: partition_exists, path: /tmp}\n"
        "targets: {argo: {}}\n",
        encoding="utf-8",
    )
    result = cli("compile", str(spec), "-t", "argo", "-o", str(tmp_path / "out"))
    assert result.code == 1
    assert "x.yaml:6:" in result.err and "error[PG604]: target 'argo' needs targets.argo.runtime_image" in result.err


def test_long_name_gets_a_52_character_cron_workflow(cli: Cli, tmp_path: Path) -> None:
    name = "a" * 60
    result = _compile(cli, tmp_path, name=name, targets="schedule: '@daily'\ntargets: {argo: {runtime_image: r/x:1}}")
    assert result.code == 0, result.err
    docs = documents((tmp_path / "out" / "argo" / f"{name}.yaml").read_text())
    assert docs[1]["kind"] == "CronWorkflow"
    assert len(docs[1]["metadata"]["name"]) <= 52
    assert docs[1]["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == name


def test_same_spec_same_bytes_under_two_hash_seeds(tmp_path: Path) -> None:
    texts = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-m", "pipegen", "compile", "specs/feed-ranking.yaml", "-t", "argo", "-o", str(out)],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        texts.append((out / "argo" / "feed-ranking.yaml").read_bytes())
    assert texts[0] == texts[1]
