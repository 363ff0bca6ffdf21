"""A kubernetes training step on Prefect ends the MLflow run its Job left RUNNING, as the runtime's steps end theirs:
FAILED when the Job failed, FINISHED when it succeeded without touching MLflow; a run the job ended keeps its status.

The task runs in Prefect's engine against the session's real `mlflow server`. No Kubernetes API server can run here
(DESIGN.md §7), so a small HTTP server answers the five calls the task's wait loop makes (create, read status, list
pods, read a log, delete) with documents kubernetes-validate accepts strictly, shaped as the API server returns them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.cases import REPO
from tests.prefect.support import compile_prefect, load_module

KUBERNETES = "1.37.0"
T0 = "2026-03-08T02:00:00Z"
UID = "0b7e5a52-8c1d-4f0e-9a51-3c1f0d2b6a77"
PARAMS = {"learning_rate": 0.01, "epochs": 10}


def real(obj: dict[str, Any]) -> dict[str, Any]:
    kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    return obj


class Cluster(ThreadingHTTPServer):
    """The Kubernetes API as the task's loop sees it: every Job it creates ends at once as `outcome` says."""

    outcome = "Complete"
    jobs: dict[str, dict[str, Any]]


class Api(BaseHTTPRequestHandler):
    server: Cluster

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, body: Any, status: int = 200) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        job = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        job["metadata"] |= {"uid": UID, "creationTimestamp": T0}
        job["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}
        self.server.jobs[job["metadata"]["name"]] = job
        self._send(real(job), 201)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        [job] = self.server.jobs.values()
        failed = self.server.outcome == "Failed"
        if path.endswith("/status"):
            reason = ("BackoffLimitExceeded", "Job has reached the specified backoff limit") if failed else ("", "")
            condition = {"type": self.server.outcome, "status": "True", "lastProbeTime": T0, "lastTransitionTime": T0}
            condition |= {"reason": reason[0], "message": reason[1]} if failed else {}
            status = {"startTime": T0, "conditions": [condition], ("failed" if failed else "succeeded"): 1}
            self._send(real({**job, "status": status}))
        elif path.endswith("/log"):
            self._send("Killed\n" if failed else "trained\n")
        else:
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"{job['metadata']['name']}-x7k2p", "namespace": job["metadata"]["namespace"]},
                "spec": job["spec"]["template"]["spec"],
                "status": {"phase": "Failed" if failed else "Succeeded", "startTime": T0},
            }
            self._send({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [real(pod)]})

    def do_DELETE(self) -> None:
        self._send({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Success"})


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One server for the module, named by KUBECONFIG and by kubernetes_asyncio's default location, which it reads from
    KUBECONFIG once, on import (an earlier module may have imported it with a kubeconfig of its own)."""
    from kubernetes_asyncio.config import kube_config

    server = Cluster(("127.0.0.1", 0), Api)
    server.jobs = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path_factory.mktemp("kube") / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: here\n"
        f"clusters: [{{name: here, cluster: {{server: 'http://127.0.0.1:{server.server_address[1]}'}}}}]\n"
        "users: [{name: me, user: {token: not-a-secret}}]\n"
        "contexts: [{name: here, context: {cluster: here, user: me}}]\n",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(kubeconfig))
        patch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
        patch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def cluster(api_server: Cluster) -> Cluster:
    api_server.jobs.clear()
    return api_server


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_module(
        compile_prefect(tmp_path_factory.mktemp("k8s"), REPO / "specs" / "feed-ranking.yaml") / "feed-ranking.py"
    )


def train(module: Any, cluster: Cluster, tracking: str, name: str, outcome: str) -> tuple[Any, str]:
    """The train step's task in Prefect's engine, its Job ending as outcome says; (its state, the run's status)."""
    import mlflow
    from prefect import flow

    cluster.outcome = outcome
    client = mlflow.MlflowClient(tracking_uri=tracking)
    run = client.create_run(client.create_experiment(name)).info
    task = module._kubernetes_job.with_options(retries=0)
    mlflow_run = {"run_id": run.run_id, "experiment_id": run.experiment_id}

    @flow(name="k8s-train")
    def one_step() -> Any:
        return task("train", module.REQUESTS["train"], PARAMS, "flow-run-1", "2026-03-08", mlflow_run)

    state = one_step(return_state=True)
    [job] = cluster.jobs.values()
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLFLOW_RUN_ID"] == run.run_id and env["MLFLOW_TRACKING_URI"] == tracking
    return state, client.get_run(run.run_id).info.status


@pytest.mark.usefixtures("prefect_harness")
def test_a_job_that_failed_leaves_its_run_failed(module: Any, cluster: Cluster, tracking: str, name: str) -> None:
    state, status = train(module, cluster, tracking, name, "Failed")
    assert state.is_failed(), state
    with pytest.raises(RuntimeError, match="BackoffLimitExceeded"):
        state.result()
    assert status == "FAILED"


@pytest.mark.usefixtures("prefect_harness")
def test_a_job_that_succeeded_without_touching_mlflow_leaves_its_run_finished(
    module: Any, cluster: Cluster, tracking: str, name: str
) -> None:
    state, status = train(module, cluster, tracking, name, "Complete")
    assert state.is_completed(), state
    assert status == "FINISHED"


def test_a_secret_tracking_uri_reaches_the_pods_as_the_secret_and_the_closer_as_the_spec_wrote_it(
    tmp_path: Path,
) -> None:
    """The pods read the URI from the Kubernetes secret; the task renders ${secret.X} as its other runtime tasks do."""
    from pipegen.runtime.kubernetes_job import step_objects
    from pipegen.runtime.step import decode

    spec = tmp_path / "feed-ranking.yaml"
    text = (REPO / "specs" / "feed-ranking.yaml").read_text()
    spec.write_text(text.replace("${env.MLFLOW_TRACKING_URI}", "${secret.mlflow_uri}"), encoding="utf-8")
    request = decode(load_module(compile_prefect(tmp_path / "out", spec) / "feed-ranking.py").REQUESTS["train"])
    assert request["tracking_uri"] == "${secret.mlflow_uri}" and request["tracking_uri_secret"] is True
    run = {"run_id": "0123456789abcdef", "experiment_id": "7"}
    [job] = step_objects(request, params=PARAMS, run_id="r", run_date="2026-03-08", key="k", attempt=1, mlflow_run=run)
    env = {e["name"]: e for e in real(job)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLFLOW_TRACKING_URI"] == {
        "name": "MLFLOW_TRACKING_URI",
        "valueFrom": {"secretKeyRef": {"name": "mlflow-uri", "key": "mlflow_uri"}},
    }
    assert env["MLFLOW_RUN_ID"]["value"] == run["run_id"]
