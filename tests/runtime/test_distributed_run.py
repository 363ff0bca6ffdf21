"""`pipegen run` of a 2-node, 2-process training step against a real `mlflow server`.

The training script is stdlib only (no torch, no mlflow): every rank checks the variables torchrun would give it
(pipegen.localrun.launcher stands in for torchrun: the list is torch's LocalElasticAgent._start_workers') and the
MLflow run's, records them, and rank 0 alone logs a metric and a model over MLflow's REST API. One failing rank
fails the step and stops the others; so does the step's timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from tests.support_mlflow import MlflowServer

pytestmark = pytest.mark.xdist_group("local_run")

TRAIN = r"""
import json, os, sys, time, urllib.request

out, mode = sys.argv[1], sys.argv[2]
env = os.environ
rank, local, node = int(env["RANK"]), int(env["LOCAL_RANK"]), int(env["GROUP_RANK"])
# torchrun's worker variables for 2 nodes x 2 processes, and the node's own (what a pod gets).
assert (env["WORLD_SIZE"], env["LOCAL_WORLD_SIZE"], env["GROUP_WORLD_SIZE"], env["ROLE_WORLD_SIZE"]) == ("4", "2", "2", "4")
assert rank == node * 2 + local and env["ROLE_RANK"] == str(rank) and env["ROLE_NAME"] == "default"
assert env["MASTER_ADDR"] == "127.0.0.1" and int(env["MASTER_PORT"]) > 0
assert (env["NNODES"], env["NPROC_PER_NODE"], env["NODE_RANK"]) == ("2", "2", str(node))
assert env["TORCHELASTIC_RESTART_COUNT"] == "0" and env["TORCHELASTIC_MAX_RESTARTS"] == "0"
assert env["TORCHELASTIC_RUN_ID"] and env["OMP_NUM_THREADS"] == "1"
keys = ["RANK", "LOCAL_RANK", "GROUP_RANK", "WORLD_SIZE", "MASTER_PORT", "NODE_RANK", "MLFLOW_RUN_ID",
        "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "TORCHELASTIC_RUN_ID"]
with open(os.path.join(out, f"rank{rank}.part"), "w") as f:
    json.dump({"pid": os.getpid(), **{k: env[k] for k in keys}}, f)
os.replace(os.path.join(out, f"rank{rank}.part"), os.path.join(out, f"rank{rank}.json"))  # whole, or not there

if mode == "fail":
    if rank == 3:
        # Fail once every rank has recorded itself: a peer stopped before it wrote its record would not be counted.
        deadline = time.monotonic() + 60
        while len([n for n in os.listdir(out) if n.endswith(".json")]) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        sys.exit(7)
    time.sleep(300)  # the others would wait for their peer: the launcher must stop them
if mode == "hang":
    time.sleep(300)

if rank == 0:
    # Only global rank 0 logs, into the run pipegen started (MLFLOW_RUN_ID), over the REST API.
    uri, run = env["MLFLOW_TRACKING_URI"].rstrip("/"), env["MLFLOW_RUN_ID"]

    def call(method, path, body):
        req = urllib.request.Request(uri + path, data=body, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    metric = {"run_id": run, "key": "ndcg", "value": 0.81, "timestamp": int(time.time() * 1000), "step": 0}
    call("POST", "/api/2.0/mlflow/runs/log-metric", json.dumps(metric).encode())
    artifacts = call("GET", f"/api/2.0/mlflow/runs/get?run_id={run}", None)["run"]["info"]["artifact_uri"]
    where = artifacts.split("mlflow-artifacts:", 1)[1].lstrip("/")
    where = where.split("/", 1)[1] if "://" in artifacts else where  # mlflow-artifacts://host:port/path
    call("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{where}/model/MLmodel", b"artifact_path: model\nflavors: {}\n")
"""

SPEC = """\
pipegen: 1
name: {name}
params:
  mode: ok
mlflow:
  tracking_uri: ${{env.MLFLOW_TRACKING_URI}}
  experiment: {name}
steps:
  - name: train
    timeout: {timeout}
    train:
      command: [python, train.py, {out}, "${{params.mode}}"]
      distributed: {{nodes: 2, procs_per_node: 2}}
      metrics: [ndcg]
  - name: quality
    evaluate: {{run_of: train, thresholds: ["ndcg > 0.78"]}}
  - name: promote
    promote: {{model: {name}, run_of: train}}
"""


def run(
    tmp_path: Path, server: MlflowServer, name: str, mode: str, timeout: str = "5m"
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, str]]]:
    out = tmp_path / f"ranks-{mode}"
    out.mkdir()
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "spec.yaml").write_text(SPEC.format(name=name, out=json.dumps(str(out)), timeout=timeout))
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.uri}
    proc = subprocess.run(
        [sys.executable, "-m", "pipegen", "run", "spec.yaml", "--param", f"mode={mode}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    ranks = [json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))]
    return proc, ranks


def alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    return True


def test_two_nodes_two_processes_promote_once(tmp_path: Path, mlflow_server: MlflowServer, name: str) -> None:
    """Four ranks see their torchrun variables and the one MLflow run; rank 0 logs; the model is promoted once."""
    proc, ranks = run(tmp_path, mlflow_server, name, "ok")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r["RANK"] for r in ranks] == ["0", "1", "2", "3"]
    assert {r["MLFLOW_RUN_ID"] for r in ranks} == {ranks[0]["MLFLOW_RUN_ID"]}  # every rank, the same run
    assert {r["MLFLOW_TRACKING_URI"] for r in ranks} == {mlflow_server.uri}
    assert len({r["MASTER_PORT"] for r in ranks}) == 1 and len({r["TORCHELASTIC_RUN_ID"] for r in ranks}) == 1
    assert [(r["GROUP_RANK"], r["NODE_RANK"]) for r in ranks] == [("0", "0"), ("0", "0"), ("1", "1"), ("1", "1")]

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [ranks[0]["MLFLOW_RUN_ID"]]  # one MLflow run for all four ranks
    assert [m.value for m in client.get_metric_history(runs[0].info.run_id, "ndcg")] == [0.81]  # logged once
    versions = client.search_model_versions(f"name = '{name}'")
    assert [v.version for v in versions] == ["1"] or [str(v.version) for v in versions] == ["1"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    assert "promote" in proc.stderr and "2 nodes" in proc.stdout


def test_one_failing_rank_fails_the_step_and_stops_the_others(
    tmp_path: Path, mlflow_server: MlflowServer, name: str
) -> None:
    """Rank 3 exits 7 while the others wait for it: the step fails at once, naming node 1, and no rank is left."""
    started = time.monotonic()
    proc, ranks = run(tmp_path, mlflow_server, name, "fail")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert time.monotonic() - started < 120  # not the 300 s the other ranks would sleep
    assert "node 1 of 2 exited with code 7; every node was stopped" in proc.stdout, proc.stdout
    assert len(ranks) == 4
    assert not [r["RANK"] for r in ranks if alive(int(r["pid"]))]
    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri)
    assert client.search_model_versions(f"name = '{name}'") == []
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    assert [r.info.status for r in client.search_runs([experiment.experiment_id])] == ["FAILED"]


def test_the_step_timeout_stops_every_rank(tmp_path: Path, mlflow_server: MlflowServer, name: str) -> None:
    """All ranks hang: the step's timeout ends every node and every worker."""
    proc, ranks = run(tmp_path, mlflow_server, name, "hang", timeout="15s")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "timed out after 15s: every node was stopped" in proc.stdout, proc.stdout
    assert len(ranks) == 4
    assert not [r["RANK"] for r in ranks if alive(int(r["pid"]))]


NODES_ONLY = r"""
import json, os, sys
env = os.environ
# launcher none: no torchrun variables, the node's own place only.
assert "RANK" not in env and "LOCAL_RANK" not in env
assert (env["NNODES"], env["NPROC_PER_NODE"], env["MASTER_ADDR"]) == ("3", "1", "127.0.0.1")
with open(os.path.join(sys.argv[1], "node" + env["NODE_RANK"]), "w") as f:
    f.write(env["MASTER_PORT"])
"""


def test_launcher_none_starts_each_node_once(tmp_path: Path) -> None:
    """launcher none: N processes, one per node, each with its NODE_RANK and the shared MASTER_ADDR/PORT."""
    (tmp_path / "nodes.py").write_text(NODES_ONLY)
    out = tmp_path / "nodes"
    out.mkdir()
    spec = (
        "pipegen: 1\nname: nodes\nsteps:\n  - name: spread\n    task:\n"
        f"      command: [python, nodes.py, {json.dumps(str(out))}]\n"
        "      distributed: {nodes: 3, launcher: none}\n"
    )
    (tmp_path / "spec.yaml").write_text(spec)
    proc = subprocess.run(
        [sys.executable, "-m", "pipegen", "run", "spec.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["node0", "node1", "node2"]
    assert len({p.read_text() for p in out.iterdir()}) == 1  # one MASTER_PORT for all
