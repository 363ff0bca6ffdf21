"""The runtime Lambda's zip (deploy/lambda_zip.py): built by its documented command, within Lambda's limits, and
answering `step` calls from the unzipped package alone, with only what the Lambda Python runtime adds (boto3).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cases import REPO
from tests.support_mlflow import MlflowServer, play_training, start_mlflow_server
from tests.test_deploy_images import uv_env

pytestmark = pytest.mark.xdist_group("deploy-lambda")

# The documented command (docs/deploying.md), with the output in the test's directory.
COMMAND = [sys.executable, "deploy/lambda_zip.py", "--output"]
MB = 1024 * 1024
# What the Lambda python3.11 runtime ships beside the handler's package (boto3 and its dependencies); the test
# environment's copies stand in for them, placed after the package on the path as Lambda places its own.
LAMBDA_RUNTIME_MODULES = ("boto3", "botocore", "jmespath", "s3transfer", "dateutil", "six.py", "urllib3")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The zip and what the command printed."""
    out = tmp_path_factory.mktemp("lambda") / "pipegen-runtime.zip"
    proc = subprocess.run(
        [*COMMAND, str(out)], cwd=REPO, env=uv_env(), capture_output=True, text=True, check=False, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


@pytest.fixture(scope="module")
def unzipped(built: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as Lambda unpacks it into /var/task."""
    task = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(built[0]) as archive:
        archive.extractall(task)
    return task


@pytest.fixture(scope="module")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands for the Lambda runtime's own site-packages: boto3 and its dependencies, nothing else."""
    import boto3

    site = Path(boto3.__file__).parent.parent
    runtime = tmp_path_factory.mktemp("var-runtime")
    for name in LAMBDA_RUNTIME_MODULES:
        (runtime / name).symlink_to(site / name)
    return runtime


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow"))
    yield server
    server.stop()


def test_zip_is_within_lambda_limits_and_says_its_size(built: tuple[Path, str]) -> None:
    path, printed = built
    sizes = re.search(r"unzipped ([\d.]+) MB \(limit 250.0 MB\), zipped ([\d.]+) MB", printed)
    assert sizes, printed
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    unzipped = sum(i.file_size for i in infos)
    assert unzipped < 250 * MB and float(sizes.group(1)) == round(unzipped / MB, 1)
    assert float(sizes.group(2)) == round(path.stat().st_size / MB, 1)
    # Small enough for a direct upload (50 MB), which the command says.
    assert path.stat().st_size < 50 * MB and "direct upload possible" in printed
    assert "left out (the Lambda Python runtime provides them): boto3, botocore, jmespath, s3transfer" in printed


def test_zip_leaves_out_what_lambda_provides_and_what_the_runtime_never_loads(built: tuple[Path, str]) -> None:
    with zipfile.ZipFile(built[0]) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    tops = {name.split("/")[0] for name in names}
    assert "pipegen" in tops and "mlflow" in tops and "sqlalchemy" in tops
    assert "pipegen/runtime/lambda_handler.py" in names and "pipegen/templates/airflow/dag.py.j2" in names
    assert not {"boto3", "botocore", "jmespath", "s3transfer"} & tops
    assert not any(re.match(r"(boto3|botocore|jmespath|s3transfer)-.*\.dist-info", top) for top in tops)
    parts = [set(name.split("/")) for name in names]
    assert not any({"__pycache__", "tests"} & p for p in parts)
    assert not any(name.endswith((".pyc", "/RECORD", "/direct_url.json", "/uv_cache.json")) for name in names)
    assert ".lock" not in names
    # Compiled extensions are for Lambda's python3.11 on x86_64 Linux.
    extensions = [n for n in names if n.endswith(".so")]
    assert extensions and all(re.search(r"(cpython-311-x86_64-linux-gnu|abi3)\.so$", n) for n in extensions)
    # Reproducible layout: sorted entries, one fixed time, one mode.
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)} and {i.external_attr >> 16 for i in infos} == {0o644}


def test_zip_wheels_load_on_amazon_linux_2(built: tuple[Path, str]) -> None:
    """python3.11 Lambda runs on Amazon Linux 2 (glibc 2.26): every wheel must be pure or need glibc 2.26 at most."""
    legacy = {"manylinux1": 5, "manylinux2010": 12, "manylinux2014": 17}
    with zipfile.ZipFile(built[0]) as archive:
        wheels = {n: archive.read(n).decode() for n in archive.namelist() if n.endswith(".dist-info/WHEEL")}
    # A wheel loads when one of its tags does (a wheel built for glibc 2.17 may also list manylinux_2_28).
    tags = {
        name: {t.rsplit("-", 1)[1] for t in re.findall(r"^Tag: (\S+)$", text, re.M)} for name, text in wheels.items()
    }
    assert len(tags) > 40 and all(tags.values())
    compiled = {name: platforms for name, platforms in tags.items() if "any" not in platforms}
    assert compiled, "the package has compiled wheels (pydantic-core, sqlalchemy, ...)"

    def glibc(platform: str) -> int:
        found = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014|manylinux_2_(\d+))_x86_64", platform)
        return (int(found.group(2)) if found.group(2) else legacy[found.group(1)]) if found else 99

    for name, platforms in compiled.items():
        assert min(glibc(p) for p in platforms) <= 26, (name, platforms)


def test_zip_is_reproducible(built: tuple[Path, str], tmp_path: Path) -> None:
    again = tmp_path / "again.zip"
    proc = subprocess.run([*COMMAND, str(again)], cwd=REPO, env=uv_env(), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (built[0], again)]
    assert digest[0] == digest[1]


def _invoke(task: Path, runtime: Path, events: list[dict[str, Any]], env: dict[str, str]) -> list[Any]:
    """Call the handler with each event in a Python that sees only the package and the Lambda runtime's boto3."""
    script = (
        "import json, sys\n"
        "from pipegen.runtime.lambda_handler import handler\n"
        "import mlflow, pipegen, sqlalchemy, boto3\n"
        "where = {m.__name__: m.__file__ for m in (mlflow, pipegen, sqlalchemy, boto3)}\n"
        "results = []\n"
        "for event in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        results.append(handler(event))\n"
        "    except Exception as exc:\n"
        "        results.append({'error': type(exc).__name__, 'message': str(exc)})\n"
        "print(json.dumps({'where': where, 'path': sys.path, 'results': results}))\n"
    )
    # -S: no site-packages of the test environment; -s: no user site. PYTHONPATH is Lambda's order.
    proc = subprocess.run(
        [sys.executable, "-S", "-s", "-c", script, json.dumps(events)],
        env={**env, "PYTHONPATH": f"{task}{os.pathsep}{runtime}"},
        cwd=task,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not any("site-packages" in entry for entry in answer["path"])
    for name, file in answer["where"].items():
        assert Path(file).is_relative_to(runtime if name == "boto3" else task), (name, file)
    results: list[Any] = answer["results"]
    return results


def _event(kind: str, spec: dict[str, Any], run_id: str, **extra: Any) -> dict[str, Any]:
    """A `step` request as the JSONPath state machines send it (spec as one JSON string)."""
    context = {"params": {"max_depth": 8}, "run_id": run_id, "run_date": "2026-12-01"}
    return {"action": "step", "args": {"kind": kind, "spec_json": json.dumps(spec), "context": context, **extra}}


def test_handler_answers_step_calls_from_the_package_alone(
    unzipped: Path, lambda_runtime: Path, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    import mlflow

    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}
    run_key = f"lambda-{uuid.uuid4().hex[:8]}"
    partition = tmp_path / "quotes" / "dt=2026-12-01"
    partition.mkdir(parents=True)
    (partition / "part-0.parquet").write_bytes(b"PAR1")
    gate = {"gate": {"check": "partition_exists", "path": f"file://{tmp_path}/quotes/dt=${{run.date}}/"}}
    missing = {"gate": {"check": "partition_exists", "path": f"file://{tmp_path}/quotes/dt=2026-11-30/"}}
    prepare = {
        "service": "batch",
        "command": ["python", "-m", "pricing.train", "--date", "${run.date}", "--max-depth", "${params.max_depth}"],
        "env": {},
        "start_run": {"pipeline": "pricing", "step": "train", "spec_sha256": "0" * 64, "experiment": run_key},
        "tracking_uri": mlflow_server.uri,
    }
    # A finished training run to evaluate (one Lambda process: each cold start imports MLflow from source).
    client = mlflow.MlflowClient(mlflow_server.uri, registry_uri=mlflow_server.uri)
    trained = client.create_run(client.create_experiment(f"{run_key}-trained")).info
    play_training(mlflow_server.uri, trained.run_id, {"mae": 9.5, "model_size_mb": 12.0})
    run = {"run_id": trained.run_id, "experiment_id": trained.experiment_id}
    thresholds = {"thresholds": ["mae < 12", "model_size_mb < 200"], "tracking_uri": mlflow_server.uri}
    failing = {"thresholds": ["mae < 5"], "tracking_uri": mlflow_server.uri}
    present, absent, prepared, passed, rejected = _invoke(
        unzipped,
        lambda_runtime,
        [
            _event("gate_check", gate, run_key),
            _event("gate_check", missing, run_key),
            _event("prepare", prepare, run_key),
            _event("evaluate", thresholds, run_key, mlflow_run=run),
            _event("evaluate", failing, run_key, mlflow_run=run),
        ],
        env,
    )
    assert present["passed"] is True, present
    assert absent["passed"] is False and "dt=2026-11-30" in absent["reason"]
    assert prepared["job"]["Command"] == ["python", "-m", "pricing.train", "--date", "2026-12-01", "--max-depth", "8"]
    assert passed["passed"] is True and passed["metrics"] == {"mae": 9.5, "model_size_mb": 12.0}
    assert rejected["passed"] is False and rejected["reasons"]
    # The run the Lambda started is on the server, tagged as every target tags it.
    tags = client.get_run(prepared["run"]["run_id"]).data.tags
    assert tags["pipegen.pipeline"] == "pricing" and tags["pipegen.target"] == "stepfunctions"
    assert tags["pipegen.run_key"] == run_key
