"""The services every differential test shares in one pytest session: started once, stopped at its end."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.differential.harness import ENGINES, Services, engine_module_exists, uses_ray

SCENARIOS = Path(__file__).parent / "scenarios"


def selected_scenarios(session: pytest.Session) -> list[str]:
    """The scenarios this session's selected test_engines_agree items run."""
    return [
        item.callspec.params["scenario"]
        for item in session.items
        if getattr(item, "originalname", None) == "test_engines_agree" and hasattr(item, "callspec")
    ]


@pytest.fixture(scope="session")
def services(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """One MLflow server per engine, the webhook receiver, moto and a migrated Airflow DB, for every test; a Ray
    head (~15-30 s to start, ~730 MB) only when a selected scenario has Ray steps.

    Session-wide: the scenarios (test_differential.py), the engine modules' own tests (test_engines.py) and
    the broken-lowering run share them (each MLflow server start, `airflow db migrate` and moto's import is
    tens of CPU seconds on a 2-core machine).
    """
    engines = [e for e in ENGINES if engine_module_exists(e)]
    ray = any(uses_ray(str(SCENARIOS / f"{name}.yaml")) for name in selected_scenarios(request.session))
    shared = Services(tmp_path_factory.mktemp("differential"), engines, aws=True, ray=ray)
    shared.start()
    try:
        yield shared
    finally:
        shared.stop()
        # The session's whole cost: this process and everything it waited for (servers, engine modules).
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
        print(f"\ndifferential session CPU (pytest and the processes it waited for): {cpu:.0f}s")
