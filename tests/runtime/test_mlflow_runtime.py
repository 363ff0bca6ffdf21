"""start_run, evaluate and promote against a real `mlflow server` (sqlite backend store)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import mlflow
import pytest

from pipegen.runtime import tags
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.evaluate import evaluate
from pipegen.runtime.lambda_handler import handler
from pipegen.runtime.promote import promote
from pipegen.runtime.start_run import start_run, training_env
from tests.cases import REPO
from tests.support_mlflow import MlflowServer, play_training, start_mlflow_server
from tests.support_tools import tool

pytestmark = pytest.mark.xdist_group("mlflow")


def trained(server: MlflowServer, name: str, metrics: dict[str, float], key: str = "k1") -> str:
    run = start_run(
        pipeline="demo",
        step="train",
        spec_sha256="a" * 64,
        target="local",
        run_key=f"{name}-{key}",
        experiment=name,
        tracking_uri=server.uri,
    )
    play_training(server.uri, run["run_id"], metrics)
    return str(run["run_id"])


def champion(name: str, mode: str = "max", min_delta: float = 0.0, metric: str = "auc") -> dict[str, Any]:
    return {"metric": metric, "mode": mode, "min_delta": min_delta, "model": name, "alias": "champion"}


def holder(server: MlflowServer, model: str) -> str:
    return str(mlflow.MlflowClient(server.uri).get_model_version_by_alias(model, "champion").version)


def test_start_run_tags_and_is_idempotent(mlflow_server: MlflowServer, name: str) -> None:
    args = dict(
        pipeline="demo",
        step="train",
        spec_sha256="b" * 64,
        target="airflow",
        run_key=f"{name}-r1",
        experiment=name,
        tracking_uri=mlflow_server.uri,
        git_commit="abc123",
    )
    first = start_run(**args)  # type: ignore[arg-type]
    again = start_run(**args)  # type: ignore[arg-type]
    assert first == again
    run = mlflow.MlflowClient(mlflow_server.uri).get_run(first["run_id"])
    assert {k: v for k, v in run.data.tags.items() if k.startswith("pipegen.")} == {
        tags.PIPELINE: "demo",
        tags.STEP: "train",
        tags.SPEC_SHA256: "b" * 64,
        tags.TARGET: "airflow",
        tags.RUN_KEY: f"{name}-r1",
        tags.GIT_COMMIT: "abc123",
    }


def test_plain_mlflow_start_run_logs_into_the_started_run(mlflow_server: MlflowServer, name: str) -> None:
    run = start_run(
        pipeline="demo",
        step="train",
        spec_sha256="c" * 64,
        target="local",
        run_key=name,
        experiment=name,
        tracking_uri=mlflow_server.uri,
    )
    script = "import mlflow\nwith mlflow.start_run():\n    mlflow.log_metric('auc', 0.91)\n"
    env = {**training_env(run, mlflow_server.uri), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=REPO, capture_output=True)
    logged = mlflow.MlflowClient(mlflow_server.uri).get_run(run["run_id"]).data.metrics
    assert logged == {"auc": 0.91}


def test_thresholds_pass_and_fail(mlflow_server: MlflowServer, name: str) -> None:
    run_id = trained(mlflow_server, name, {"auc": 0.82, "loss": 0.4})
    ok = evaluate(run_id=run_id, thresholds=["auc > 0.8", "loss <= 0.4"], tracking_uri=mlflow_server.uri)
    assert ok == {
        "passed": True,
        "metrics": {"auc": 0.82, "loss": 0.4},
        "reasons": ["auc > 0.8: ok (auc = 0.82)", "loss <= 0.4: ok (loss = 0.4)"],
    }
    bad = evaluate(run_id=run_id, thresholds=["auc > 0.9", "loss <= 0.4"], tracking_uri=mlflow_server.uri)
    assert bad["passed"] is False
    assert bad["reasons"][0] == "auc > 0.9: failed (auc = 0.82)"
    run = mlflow.MlflowClient(mlflow_server.uri).get_run(run_id)
    assert run.data.tags[tags.EVALUATION] == "failed"


def test_metric_never_logged_is_a_clear_failure(mlflow_server: MlflowServer, name: str) -> None:
    run_id = trained(mlflow_server, name, {"auc": 0.82})
    result = evaluate(run_id=run_id, thresholds=["ndcg > 0.5"], tracking_uri=mlflow_server.uri)
    assert result["passed"] is False
    assert result["reasons"] == [f"ndcg > 0.5: metric 'ndcg' was not logged by run {run_id}"]


def test_no_champion_yet_thresholds_decide(mlflow_server: MlflowServer, name: str) -> None:
    run_id = trained(mlflow_server, name, {"auc": 0.7})
    result = evaluate(run_id=run_id, thresholds=["auc > 0.5"], champion=champion(name), tracking_uri=mlflow_server.uri)
    assert result["passed"] is True
    assert result["reasons"][-1] == f"champion: {name}@champion has no holder yet; thresholds alone decide"


@pytest.mark.parametrize(
    ("mode", "first", "worse", "better"),
    [("max", 0.80, 0.79, 0.85), ("min", 12.0, 12.5, 11.0)],
)
def test_champion_comparison(
    mlflow_server: MlflowServer, name: str, mode: str, first: float, worse: float, better: float
) -> None:
    ch = champion(name, mode=mode, metric="score")
    v1 = trained(mlflow_server, name, {"score": first}, "a")
    assert evaluate(run_id=v1, thresholds=[], champion=ch, tracking_uri=mlflow_server.uri)["passed"]
    assert promote(run_id=v1, model=name, champion=ch, tracking_uri=mlflow_server.uri)["version"] == "1"
    loser = trained(mlflow_server, name, {"score": worse}, "b")
    judged = evaluate(run_id=loser, thresholds=[], champion=ch, tracking_uri=mlflow_server.uri)
    assert judged["passed"] is False
    assert "does not beat version 1" in judged["reasons"][-1]
    winner = trained(mlflow_server, name, {"score": better}, "c")
    assert evaluate(run_id=winner, thresholds=[], champion=ch, tracking_uri=mlflow_server.uri)["passed"]
    result = promote(run_id=winner, model=name, champion=ch, tracking_uri=mlflow_server.uri)
    assert result == {
        "model": name,
        "version": "2",
        "alias": "champion",
        "holder": "2",
        "previous": "1",
        "alias_moved": True,
    }
    assert holder(mlflow_server, name) == "2"


def test_min_delta(mlflow_server: MlflowServer, name: str) -> None:
    ch = champion(name, min_delta=0.01)
    promote(
        run_id=trained(mlflow_server, name, {"auc": 0.80}, "a"), model=name, champion=ch, tracking_uri=mlflow_server.uri
    )
    small = trained(mlflow_server, name, {"auc": 0.805}, "b")
    assert not evaluate(run_id=small, thresholds=[], champion=ch, tracking_uri=mlflow_server.uri)["passed"]
    enough = trained(mlflow_server, name, {"auc": 0.811}, "c")
    assert evaluate(run_id=enough, thresholds=[], champion=ch, tracking_uri=mlflow_server.uri)["passed"]


def test_promote_tags_the_version_and_is_idempotent(mlflow_server: MlflowServer, name: str) -> None:
    run_id = trained(mlflow_server, name, {"auc": 0.9})
    first = promote(run_id=run_id, model=name, thresholds=["auc > 0.8"], tracking_uri=mlflow_server.uri)
    retried = promote(run_id=run_id, model=name, thresholds=["auc > 0.8"], tracking_uri=mlflow_server.uri)
    assert first["version"] == retried["version"] == "1"
    client = mlflow.MlflowClient(mlflow_server.uri)
    versions = client.search_model_versions(f"name = '{name}'")
    assert len(versions) == 1, "a retried promote must not register a second version"
    version_tags = client.get_model_version(name, "1").tags
    assert version_tags[tags.PIPELINE] == "demo"
    assert version_tags[tags.RUN_KEY] == f"{name}-k1"
    assert version_tags[tags.THRESHOLDS] == "auc > 0.8"
    assert version_tags[tags.METRIC_PREFIX + "auc"] == "0.9"


def test_concurrent_promotions_end_on_the_better_model(mlflow_server: MlflowServer, name: str) -> None:
    ch = champion(name)
    runs = {
        "worse": trained(mlflow_server, name, {"auc": 0.81}, "w"),
        "better": trained(mlflow_server, name, {"auc": 0.93}, "b"),
    }
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def go(label: str) -> None:
        barrier.wait()
        results[label] = promote(run_id=runs[label], model=name, champion=ch, tracking_uri=mlflow_server.uri)

    threads = [threading.Thread(target=go, args=(label,)) for label in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    better_version = results["better"]["version"]
    assert holder(mlflow_server, name) == better_version
    assert results["worse"]["holder"] == better_version or results["worse"]["holder"] == results["worse"]["version"]


def test_thresholds_only_promotion_moves_alias_to_newest(mlflow_server: MlflowServer, name: str) -> None:
    promote(run_id=trained(mlflow_server, name, {"auc": 0.95}, "a"), model=name, tracking_uri=mlflow_server.uri)
    result = promote(
        run_id=trained(mlflow_server, name, {"auc": 0.85}, "b"), model=name, tracking_uri=mlflow_server.uri
    )
    # Without a champion comparison, the newest passing run is the one to serve.
    assert result["alias_moved"] and holder(mlflow_server, name) == "2"


def _registered(server: MlflowServer, model: str) -> list[str]:
    return [m.name for m in mlflow.MlflowClient(server.uri).search_registered_models(f"name = '{model}'")]


def test_missing_model_artifact_is_a_clear_failure(mlflow_server: MlflowServer, name: str) -> None:
    run_id = trained(mlflow_server, name, {"auc": 0.9})
    with pytest.raises(RuntimeFailure, match=re.escape(f"run {run_id} has no MLflow Model named 'weights'")):
        promote(run_id=run_id, model=name, artifact="weights", tracking_uri=mlflow_server.uri)
    assert _registered(mlflow_server, name) == [], "a failed promotion left a registered model behind"


def test_files_logged_with_log_artifact_are_not_a_model(mlflow_server: MlflowServer, name: str, tmp_path: Path) -> None:
    """mlflow.log_artifact(path, "model") is not an MLflow Model: say what to log, before touching the registry."""
    run = start_run(
        pipeline="demo", step="train", spec_sha256="a" * 64, target="local", run_key=name, experiment=name,
        tracking_uri=mlflow_server.uri,
    )  # fmt: skip
    weights = tmp_path / "weights.pkl"
    weights.write_bytes(b"not a model")
    mlflow.MlflowClient(mlflow_server.uri).log_artifact(run["run_id"], str(weights), "model")
    with pytest.raises(RuntimeFailure) as failure:
        promote(run_id=run["run_id"], model=name, tracking_uri=mlflow_server.uri)
    message = str(failure.value)
    assert "model/weights.pkl" in message and "log_model(" in message and "not mlflow.log_artifact" in message
    assert _registered(mlflow_server, name) == []


def test_a_model_logged_by_name_registers_quietly(
    mlflow_server: MlflowServer, name: str, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """MLflow 3's log_model(name=...) makes a LoggedModel; registering it prints none of MLflow's console lines."""
    run = start_run(
        pipeline="demo", step="train", spec_sha256="a" * 64, target="local", run_key=name, experiment=name,
        tracking_uri=mlflow_server.uri,
    )  # fmt: skip
    script = (
        "import mlflow, mlflow.pyfunc\n"
        "class M(mlflow.pyfunc.PythonModel):\n"
        "    def predict(self, context, model_input):\n"
        "        return model_input\n"
        "with mlflow.start_run():\n"
        "    mlflow.log_metric('auc', 0.9)\n"
        "    mlflow.pyfunc.log_model(name='model', python_model=M(), pip_requirements=[])\n"
    )
    env = {**training_env(run, mlflow_server.uri), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    # The training job runs in its own image with full MLflow (the tools environment's Python here), not in
    # the runtime-only environment these tests may run in.
    subprocess.run([str(tool("python")), "-c", script], env=env, check=True, capture_output=True, timeout=300)
    capfd.readouterr()
    result = promote(run_id=run["run_id"], model=name, tracking_uri=mlflow_server.uri)
    assert result["version"] == "1" and holder(mlflow_server, name) == "1"
    version = mlflow.MlflowClient(mlflow_server.uri).get_model_version(name, "1")
    # Where MLflow put the model depends on the store (run artifacts or a LoggedModel): the version has the run.
    assert version.run_id == run["run_id"]
    assert version.source.startswith("models:/m-") or version.source.endswith(f"{run['run_id']}/artifacts/model")
    out, err = capfd.readouterr()
    assert "Registered model" not in out + err and "Created version" not in out + err
    assert "no artifacts at artifact path" not in out + err


def test_no_tracking_uri_is_a_failure_not_a_local_mlruns(monkeypatch: pytest.MonkeyPatch, tmp_path, name: str) -> None:
    """With neither the spec's URI nor MLFLOW_TRACKING_URI, MLflow would log into ./mlruns inside the worker."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    for uri in (None, "", "  "):
        with pytest.raises(RuntimeFailure, match="no MLflow tracking server is configured"):
            start_run(
                pipeline="demo", step="train", spec_sha256="a" * 64, target="kfp", run_key=name, experiment=name,
                tracking_uri=uri,
            )  # fmt: skip
        with pytest.raises(RuntimeFailure, match="no MLflow tracking server is configured"):
            evaluate(run_id="0" * 32, thresholds=["auc > 0.5"], tracking_uri=uri)
    assert list(tmp_path.iterdir()) == [], "something was written to a local store"


def test_server_stopped_mid_promotion(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-stop"))
    port = server.uri.rsplit(":", 1)[1]
    try:
        ch = champion(name)
        first = trained(server, name, {"auc": 0.8}, "a")
        promote(run_id=first, model=name, champion=ch, tracking_uri=server.uri)
        second = trained(server, name, {"auc": 0.9}, "b")
        with pytest.raises(
            RuntimeFailure, match=r"cannot reach the MLflow tracking server at http://127\.0\.0\.1:\d+ while promoting"
        ):
            promote(
                run_id=second, model=name, champion=ch, tracking_uri=server.uri, after_register=lambda _: server.stop()
            )
        server = start_mlflow_server(server.root, int(port))
        # Consistent afterwards: the new version exists, the alias has not moved, and a retry finishes the job.
        client = mlflow.MlflowClient(server.uri)
        assert [v.version for v in client.search_model_versions(f"name = '{name}'")] in (["2", "1"], ["1", "2"])
        assert holder(server, name) == "1"
        retried = promote(run_id=second, model=name, champion=ch, tracking_uri=server.uri)
        assert retried["version"] == "2" and holder(server, name) == "2"
        assert len(client.search_model_versions(f"name = '{name}'")) == 2
    finally:
        server.stop()


def test_unreachable_server_fails_clearly(name: str) -> None:
    with pytest.raises(
        RuntimeFailure, match=re.escape("cannot reach the MLflow tracking server at http://127.0.0.1:9 while reading")
    ):
        evaluate(run_id="0" * 32, thresholds=["auc > 0.5"], tracking_uri="http://127.0.0.1:9")


def test_command_line_and_lambda_handler(mlflow_server: MlflowServer, name: str, tmp_path: Any) -> None:
    run_id = trained(mlflow_server, name, {"auc": 0.9})
    args = {"run_id": run_id, "thresholds": ["auc > 0.5"], "tracking_uri": mlflow_server.uri}
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pipegen.runtime", "evaluate", json.dumps(args), "--output", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["passed"] is True
    assert json.loads(out.read_text())["passed"] is True
    assert handler({"action": "evaluate", "args": args})["passed"] is True
    with pytest.raises(ValueError, match="unknown runtime action 'train'"):
        handler({"action": "train", "args": {}})
