"""The runtime-only environment holds what a worker installs, and nothing else.

`make test-runtime` runs the runtime tests in `.venv-runtime` (and `.venv-runtime-oldest`), made from the
lock with only `pipegen-ml[runtime,aws,sql]` and the test runner. These tests prove that: without them a
stray full `mlflow` (or moto, or flask) would let the runtime tests pass for the wrong reason.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import json
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.cases import REPO
from tests.support_tools import tool

DISTRIBUTION = "pipegen-ml"
EXTRAS = ("runtime", "aws", "sql")
# The runtime-test dependency group in pyproject.toml.
TEST_RUNNER = ("pytest", "pytest-xdist")


def _closure(roots: list[tuple[str, frozenset[str]]]) -> set[str]:
    """Every distribution the roots require in this environment, following extras and markers."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(roots)
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            wanted = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in wanted):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return {name for name, _ in seen}


def test_full_mlflow_is_absent() -> None:
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution("mlflow")
    # mlflow-skinny ships the server's modules but none of what they need.
    with pytest.raises(ImportError):
        importlib.import_module("mlflow.server")
    assert metadata.distribution("mlflow-skinny").version


def test_only_the_runtime_extras_and_the_test_runner_are_installed() -> None:
    roots = [(DISTRIBUTION, frozenset(EXTRAS))] + [(name, frozenset()) for name in TEST_RUNNER]
    installed = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()}
    assert installed == _closure(roots)
    for absent in ("mlflow", "moto", "flask", "pipegen"):
        assert absent not in installed


def test_mlflow_skinny_is_within_the_declared_range() -> None:
    declared = [Requirement(r) for r in metadata.requires(DISTRIBUTION) or []]
    runtime = [
        r for r in declared if r.name == "mlflow-skinny" and r.marker and r.marker.evaluate({"extra": "runtime"})
    ]
    assert len(runtime) == 1
    assert runtime[0].specifier.contains(metadata.version("mlflow-skinny"))


def test_pipegen_is_this_project_installed_from_a_built_wheel() -> None:
    """Not the checkout's src/: what a worker's `pip install` puts in site-packages."""
    import pipegen

    assert metadata.packages_distributions()["pipegen"] == [DISTRIBUTION]
    assert REPO / "src" not in Path(pipegen.__file__).parents
    origin = json.loads(metadata.distribution(DISTRIBUTION).read_text("direct_url.json") or "{}")
    assert not origin.get("dir_info", {}).get("editable", False)
    # The command keeps its name.
    assert Path(sys.executable).with_name("pipegen").exists()


def test_servers_come_from_another_environment() -> None:
    for name in ("mlflow", "moto_server"):
        assert tool(name).parent != Path(sys.executable).parent
