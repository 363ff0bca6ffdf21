"""Every string field of every model (spec and target options) holding hostile text: each target compiles it or
says where it cannot, and the generated Python has the same shape as with benign text (issue 15)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pipegen.spec import Spec
from pipegen.targets import available
from tests.compiler.test_airflow_lowering import shape
from tests.conftest import CliResult
from tests.hostile import (
    BACKEND_TYPES,
    HOSTILE_LINE,
    STRUCTURAL,
    VARIANTS,
    benign_twin,
    dump,
    hostile_spec,
    string_fields,
)

Cli = Callable[..., CliResult]
TARGETS = ("airflow", "kfp", "stepfunctions")
# The backend types each target runs (the others are a located PG602, checked below too).
RUNS = {
    "airflow": {"kubernetes", "aws_batch", "sagemaker", "local", "spark", "ray"},
    "kfp": {"kubernetes", "aws_batch", "sagemaker", "local", "spark", "ray"},
    "stepfunctions": {"kubernetes", "aws_batch", "sagemaker"},
}
LOCATED = re.compile(r"^\S+:\d+:\d+: (error|warning)\[PG\d{3}\]: .+$")


def all_string_fields() -> set[tuple[str, str]]:
    found = string_fields(Spec)
    for target in available().values():
        found |= string_fields(target.options_model)
    return found


def test_every_string_field_is_filled_or_excluded() -> None:
    """A new string field in any model (spec or options) is filled automatically, or this fails."""
    filled: set[tuple[str, str]] = set()
    for backend in BACKEND_TYPES + VARIANTS:
        filled |= hostile_spec(backend)[1]
    fields = all_string_fields()
    assert fields - filled - set(STRUCTURAL) == set()
    # The exclusion list names real fields only, and none that the generator fills anyway.
    assert set(STRUCTURAL) <= fields
    assert set(STRUCTURAL) & filled == set()
    # The generator sees through options models and nested sections.
    assert {("AirflowOptions", "aws_conn_id"), ("EnvSource", "name"), ("EksCluster", "endpoint")} <= filled


def test_the_hostile_text_reaches_free_text_fields() -> None:
    data, _ = hostile_spec("kubernetes")
    assert HOSTILE_LINE.split(" ")[0] in data["description"]
    # Airflow's conn ids accept only Airflow's conn-id characters (PG203): the generator settles for the most
    # hostile of those.
    assert data["targets"]["airflow"]["aws_conn_id"] == "R.-_1"
    assert data["steps"][5]["task"]["command"][2].endswith("${params.p}")


def compile_cli(cli: Cli, tmp_path: Path, text: str, target: str, name: str) -> tuple[CliResult, Path]:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / name
    return cli("compile", str(spec), "-t", target, "-o", str(out)), out


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("backend", BACKEND_TYPES)
def test_hostile_spec_compiles_or_is_located(cli: Cli, tmp_path: Path, backend: str, target: str) -> None:
    data, _ = hostile_spec(backend, target=target)
    result, out = compile_cli(cli, tmp_path, dump(data), target, "h")
    assert "Traceback" not in result.err
    if backend not in RUNS[target]:
        assert result.code == 1, result.err
        errors = [line for line in result.err.splitlines() if "error[" in line]
        assert errors and all(LOCATED.match(line) for line in errors), result.err
        assert not out.exists() or not any(out.rglob("*.*"))
        return
    assert result.code == 0, result.err
    python = sorted(out.rglob("*.py"))
    assert len(python) == (0 if target == "stepfunctions" else 1)
    if python:
        benign, benign_out = compile_cli(cli, tmp_path, dump(benign_twin(data)), target, "b")
        assert benign.code == 0, benign.err
        hostile_shape, constants = shape(python[0].read_text(encoding="utf-8"))
        benign_shape, _ = shape(next(benign_out.rglob("*.py")).read_text(encoding="utf-8"))
        # No hostile text became code: only string constants differ.
        assert hostile_shape == benign_shape
        assert any(HOSTILE_LINE.split(" ")[0] in c for c in constants)
