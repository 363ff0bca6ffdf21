"""prefect.yaml as Prefect reads it: its own loader and models, CronSchedule for each schedule, each entrypoint's flow.

`prefect deploy` validates prefect.yaml with models that ignore unknown keys (a misspelt key would be dropped
silently), so the tests also check every key the file holds is one those models know.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cases import GOLDEN
from tests.prefect.support import DEMO, PRICING, compile_prefect

SCHEDULED = """\
pipegen: 1
name: nightly-paris
params: {depth: 3, rate: 0.25, label: "a b", on: true}
schedule: {cron: "30 6 * * 1-5", timezone: Europe/Paris}
backends:
  here: {type: local}
steps:
  - name: hello
    task: {backend: here, command: [python, -c, "print(1)"]}
targets:
  prefect:
    work_pool:
      name: ml-process
      job_variables: {env: {OMP_NUM_THREADS: "2"}, working_dir: /srv/pipelines}
"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """demo, pricing and a scheduled spec with a work pool, compiled together into one prefect.yaml."""
    root = tmp_path_factory.mktemp("deployments")
    scheduled = root / "nightly-paris.yaml"
    scheduled.write_text(SCHEDULED)
    return compile_prefect(root / "out", DEMO, PRICING, scheduled)


def _load(prefect_file: Path) -> list[dict[str, Any]]:
    """The deployments as `prefect deploy` loads them; it prints (and skips the file) on a validation error."""
    from prefect.cli.deploy._config import _load_deploy_configs_and_actions
    from rich.console import Console

    out = io.StringIO()
    configs, actions = _load_deploy_configs_and_actions(prefect_file, console=Console(file=out))
    assert out.getvalue() == "", out.getvalue()
    assert actions == {"build": [], "push": [], "pull": None}
    return configs


def _known_keys(raw: dict[str, Any]) -> None:
    from prefect.cli.deploy._models import DeploymentConfig, PrefectYamlModel, RawScheduleConfig, WorkPoolConfig

    top = {f.alias or name for name, f in PrefectYamlModel.model_fields.items()}
    assert set(raw) <= top, set(raw) - top
    for deployment in raw["deployments"]:
        assert set(deployment) <= set(DeploymentConfig.model_fields), deployment
        assert set(deployment.get("work_pool", {})) <= set(WorkPoolConfig.model_fields), deployment
        for schedule in deployment.get("schedules") or []:
            RawScheduleConfig.model_validate(schedule)  # extra="forbid": an unknown key fails here


@pytest.mark.parametrize("folder", ["compiled", "golden"])
def test_prefect_yaml_loads_with_prefects_models(folder: str, request: pytest.FixtureRequest) -> None:
    from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule
    from prefect.client.schemas.schedules import CronSchedule

    directory = request.getfixturevalue("compiled") if folder == "compiled" else GOLDEN / "prefect"
    raw = yaml.safe_load((directory / "prefect.yaml").read_text())
    _known_keys(raw)
    configs = _load(directory / "prefect.yaml")
    names = [c["name"] for c in configs]
    assert names == sorted(names)
    for config in configs:
        assert config["entrypoint"] == f"{config['name']}.py:{config['name'].replace('-', '_')}"
        for schedule in config["schedules"]:
            cron = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
            # What `prefect deploy` builds from the entry is that same schedule.
            assert _schedule_config_to_deployment_schedule(schedule)["schedule"] == cron
    by_name = {c["name"]: c for c in configs}
    assert by_name["demo"]["schedules"] == []
    assert by_name["pricing"]["schedules"] == [{"cron": "0 0 * * *", "timezone": "UTC", "active": True}]
    if folder == "compiled":
        scheduled = by_name["nightly-paris"]
        assert scheduled["schedules"] == [{"cron": "30 6 * * 1-5", "timezone": "Europe/Paris", "active": True}]
        assert scheduled["work_pool"] == {
            "name": "ml-process",
            "job_variables": {"env": {"OMP_NUM_THREADS": "2"}, "working_dir": "/srv/pipelines"},
        }
        # Prefect's cron schedule fires at 06:30 Paris time on weekdays.
        cron = CronSchedule(cron="30 6 * * 1-5", timezone="Europe/Paris")
        assert cron.timezone == "Europe/Paris"


def test_each_entrypoint_is_a_flow_with_the_specs_parameters(compiled: Path) -> None:
    from prefect.flows import load_flow_from_entrypoint

    expected = {
        "demo": {"alpha": 0.5, "n_samples": 400},
        "pricing": {"max_depth": 8},
        "nightly-paris": {"depth": 3, "rate": 0.25, "label": "a b", "on": True},
    }
    for config in _load(compiled / "prefect.yaml"):
        flow = load_flow_from_entrypoint(str(compiled / config["entrypoint"]), use_placeholder_flow=False)
        assert flow.name == config["name"]
        schema = flow.parameters.model_dump()
        defaults = {name: prop.get("default") for name, prop in schema["properties"].items()}
        assert defaults == expected[config["name"]]
        assert not schema.get("required")
