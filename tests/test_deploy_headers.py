"""The Airflow DAG and Prefect flow headers say what to install, and what they say matches the lock and the module.

The versions a header names are the ones the tests run (uv.lock's airflow, providers and prefect groups); the
providers it names are exactly the ones whose modules the file imports; the runtime's requirement is this
project's distribution with extras it declares.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.cases import GOLDEN, REPO

LOCK = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
LOCKED = {p["name"]: Version(p["version"]) for p in LOCK["package"] if "version" in p}
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
PROVIDERS = sorted(name for name in LOCKED if name.startswith("apache-airflow-providers-"))
AIRFLOW_FILES = sorted((GOLDEN / "airflow").glob("*.py"))
PREFECT_FILES = sorted((GOLDEN / "prefect").glob("*.py"))


def _header(path: Path) -> str:
    """The comment block a generated module starts with."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))])


def _named(header: str) -> dict[str, tuple[SpecifierSet, str | None]]:
    """Every `name>=x,<y (tested: v)` the header names."""
    found = re.findall(r"([a-z][a-z0-9-]+)((?:[<>=!]=?[\d.]+,?)+)(?: \(tested: ([\d.]+))?", header)
    return {name: (SpecifierSet(spec), tested or None) for name, spec, tested in found}


def _provider_of(module: str) -> str:
    """The provider distribution that ships an airflow.providers.* module (the longest matching name)."""
    parts = module.split(".")[2:]
    for end in range(len(parts), 0, -1):
        name = "apache-airflow-providers-" + "-".join(parts[:end]).replace("_", "-")
        if name in LOCKED:
            return name
    raise AssertionError(f"no locked provider ships {module}")


def _imported_providers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return {_provider_of(m) for m in modules if m.startswith("airflow.providers.")}


def _runtime_requirement(header: str) -> Requirement:
    (line,) = re.findall(r'pip install "([^"]+)"', header)
    return Requirement(line)


def _check_runtime(header: str) -> None:
    requirement = _runtime_requirement(header)
    assert requirement.name == PROJECT["name"] == "pipegen-ml"
    # The runtime's own extras always; a flow with Spark or Ray steps adds the extras they need.
    assert {"runtime", "aws", "sql"} <= requirement.extras <= {"runtime", "aws", "sql", "spark", "ray"}
    assert requirement.extras <= set(PROJECT["optional-dependencies"])
    # mlflow-skinny's range is the runtime extra's.
    (skinny,) = [Requirement(r) for r in PROJECT["optional-dependencies"]["runtime"] if r.startswith("mlflow-skinny")]
    assert _named(header)["mlflow-skinny"][0] == skinny.specifier
    assert "pip install pipegen " not in header


def _check_versions(named: dict[str, tuple[SpecifierSet, str | None]]) -> None:
    """Each range admits the locked version, and a `tested:` version is the locked one's release."""
    for name, (spec, tested) in named.items():
        if name == "mlflow-skinny":
            continue
        assert spec.contains(LOCKED[name]), (name, spec, LOCKED[name])
        if tested:
            assert str(LOCKED[name]).startswith(tested), (name, tested, LOCKED[name])


@pytest.mark.parametrize("path", AIRFLOW_FILES, ids=lambda p: p.name)
def test_airflow_header_names_airflow_the_imported_providers_and_the_runtime(path: Path) -> None:
    header = _header(path)
    named = _named(header)
    assert named["apache-airflow"][1] == str(LOCKED["apache-airflow"])
    providers = {name for name in named if name.startswith("apache-airflow-providers-")}
    # Exactly the providers the module imports, and the standard provider (its task decorators).
    assert providers == _imported_providers(path) | {"apache-airflow-providers-standard"}
    _check_versions(named)
    _check_runtime(header)
    assert "DAG processor" in header


def test_airflow_headers_cover_both_provider_families() -> None:
    """The examples import both provider families, so the conditional lines are both exercised."""
    imported = set().union(*(_imported_providers(p) for p in AIRFLOW_FILES))
    assert {"apache-airflow-providers-amazon", "apache-airflow-providers-cncf-kubernetes"} <= imported
    assert any(not _imported_providers(p) for p in AIRFLOW_FILES)


@pytest.mark.parametrize("path", PREFECT_FILES, ids=lambda p: p.name)
def test_prefect_header_names_prefect_and_the_runtime(path: Path) -> None:
    header = _header(path)
    named = _named(header)
    assert named["prefect"][1] == str(LOCKED["prefect"])
    # The flow imports Prefect, and prefect-kubernetes exactly when the header names it.
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert modules - {"prefect_kubernetes"} <= {"prefect", "pipegen", "__future__"}
    integrations = {"prefect-kubernetes"} if "prefect_kubernetes" in modules else set()
    assert set(named) == {"prefect", "mlflow-skinny", *integrations}
    _check_versions(named)
    _check_runtime(header)
