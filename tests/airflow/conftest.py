"""Airflow test set-up: AIRFLOW_HOME and a migrated sqlite metadata DB, made before airflow is imported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Airflow reads its configuration when first imported, so the environment is fixed here, at collection.
HOME = Path(tempfile.mkdtemp(prefix="pipegen-airflow-"))
DAGS = HOME / "dags"
DAGS.mkdir()
os.environ.update(
    AIRFLOW_HOME=str(HOME),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
    AIRFLOW__CORE__UNIT_TEST_MODE="True",
)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated metadata DB (`airflow db migrate` once per session, ~8 s)."""
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    return HOME


@pytest.fixture
def dags_folder() -> Path:
    """The DAGS_FOLDER, emptied for each test (dag.test() needs the file inside it)."""
    for child in DAGS.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    return DAGS


# ---- Ray: one head per session for the DAGs that submit Ray jobs (tests/support_ray.py) -----------------------
from tests.support_ray import ray_client_env, ray_head  # noqa: E402, F401 - fixtures, registered here once
