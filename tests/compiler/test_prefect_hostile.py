"""Hostile text in every string field, compiled for Prefect: the flow module has the same AST as with benign text,
and no spec string reaches prefect.yaml, which `prefect deploy` templates (issue 17)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.compiler.test_airflow_lowering import shape
from tests.conftest import CliResult
from tests.hostile import BACKEND_TYPES, HOSTILE_LINE, benign_twin, dump, hostile_spec

Cli = Callable[..., CliResult]
RUNS = {"kubernetes", "aws_batch", "sagemaker", "local", "spark", "ray"}
LOCATED = re.compile(r"^\S+:\d+:\d+: (error|warning)\[PG\d{3}\]: .+$")


def compile_cli(cli: Cli, tmp_path: Path, text: str, name: str) -> tuple[CliResult, Path]:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / name
    return cli("compile", str(spec), "-t", "prefect", "-o", str(out)), out


def strings(value: object) -> set[str]:
    """Every string in parsed YAML, keys included."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return {s for k, v in value.items() for s in strings(k) | strings(v)}
    if isinstance(value, list):
        return {s for v in value for s in strings(v)}
    return set()


@pytest.mark.parametrize("backend", BACKEND_TYPES)
def test_hostile_spec_compiles_to_the_benign_shape_or_is_located(cli: Cli, tmp_path: Path, backend: str) -> None:
    data, _ = hostile_spec(backend, target="prefect")
    result, out = compile_cli(cli, tmp_path, dump(data), "h")
    assert "Traceback" not in result.err
    if backend not in RUNS:
        assert result.code == 1, result.err
        errors = [line for line in result.err.splitlines() if "error[" in line]
        assert errors and all(LOCATED.match(line) for line in errors), result.err
        assert not out.exists() or not any(out.rglob("*.*"))
        return
    assert result.code == 0, result.err
    benign, benign_out = compile_cli(cli, tmp_path, dump(benign_twin(data)), "b")
    assert benign.code == 0, benign.err
    hostile_shape, constants = shape((out / "prefect" / "hostile.py").read_text(encoding="utf-8"))
    benign_shape, _ = shape((benign_out / "prefect" / "hostile.py").read_text(encoding="utf-8"))
    # No hostile text became code: only string constants differ.
    assert hostile_shape == benign_shape
    assert any(HOSTILE_LINE.split(" ")[0] in c for c in constants)

    # prefect.yaml: the deployment's own names, the schedule, and the work pool option (refused if it held '{{').
    config = yaml.safe_load((out / "prefect" / "prefect.yaml").read_text(encoding="utf-8"))
    [entry] = config["deployments"]
    pool = data["targets"]["prefect"]["work_pool"]
    assert entry == {
        "name": "hostile",
        "entrypoint": "hostile.py:hostile",
        "work_pool": {"name": pool["name"], "job_variables": pool["job_variables"]},
        "schedules": [{"cron": "0 2 * * *", "timezone": data["schedule"]["timezone"], "active": True}],
    }
    allowed = {
        "deployments",
        "name",
        "entrypoint",
        "work_pool",
        "job_variables",
        "schedules",
        "cron",
        "timezone",
        "active",
    }
    allowed |= {"hostile", "hostile.py:hostile", "0 2 * * *", data["schedule"]["timezone"]}
    assert not (strings(config) - allowed - strings(pool))
    assert not any(HOSTILE_LINE.split(" ")[0] in s for s in strings(config))
    assert "{{" not in (out / "prefect" / "prefect.yaml").read_text(encoding="utf-8")
