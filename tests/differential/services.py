"""The services one differential session shares: an MLflow server per engine, the webhook receiver, moto with
Batch jobs that run, a migrated Airflow DB, a Prefect API server and, when a scenario has Ray steps, a Ray head."""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pipegen.localrun.ray import LocalRayHead
from tests.differential.engines import VENVS
from tests.differential.prefect_server import PrefectServer, start_prefect_server
from tests.differential.receiver import Receiver
from tests.support_mlflow import MlflowServer, start_mlflow_server
from tests.support_ray import isolated_head

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Services:
    """What every engine run of a session shares: one fresh MLflow server per engine, a webhook receiver,
    moto with Batch jobs that run, a migrated Airflow DB, a Prefect API server and (ray=True) one Ray head."""

    root: Path
    engines: list[str]
    aws: bool
    mlflow: dict[str, MlflowServer] = field(default_factory=dict)
    receiver: Receiver | None = None
    moto: subprocess.Popen[bytes] | None = None
    endpoint: str = ""
    airflow_db: Path | None = None
    prefect: PrefectServer | None = None
    ray: bool = False
    ray_head: LocalRayHead | None = None

    def start(self) -> None:
        """Start everything in parallel (MLflow servers take ~20 s each on a busy machine).

        If anything fails to start, what did start is stopped before the error propagates: no server outlives
        a failed session.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self.receiver = Receiver()
        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=len(self.engines) + 3) as pool:
            servers = {e: pool.submit(start_mlflow_server, self.root / f"mlflow-{e}") for e in self.engines}
            airflow = pool.submit(self._migrate_airflow) if "airflow" in self.engines else None
            prefect = pool.submit(self._start_prefect) if "prefect" in self.engines else None
            ray = pool.submit(self._start_ray) if self.ray else None
            try:
                if self.aws:
                    self._start_moto()
            except BaseException as exc:  # noqa: BLE001 - re-raised below, once the servers are accounted for
                failure = exc
            for engine, future in servers.items():
                try:
                    self.mlflow[engine] = future.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    failure = failure or exc
            if airflow is not None:
                try:
                    self.airflow_db = airflow.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    failure = failure or exc
            if prefect is not None:
                try:
                    self.prefect = prefect.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    failure = failure or exc
            if ray is not None:
                try:
                    self.ray_head = ray.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    failure = failure or exc
        if failure is not None:
            self.stop()
            raise failure

    def _start_moto(self) -> None:
        aws_dir = self.root / "aws"
        aws_dir.mkdir(exist_ok=True)
        env = {
            **os.environ,
            **self.aws_credentials("moto"),
            "PYTHONPATH": str(ROOT),
            "PIPEGEN_DIFF_STATE": str(self.root / "state"),
        }
        env["PATH"] = os.pathsep.join([str(ROOT / VENVS["pipegen"] / "bin"), env.get("PATH", "")])
        log = (aws_dir / "moto.log").open("ab")
        self.moto = subprocess.Popen(
            [str(ROOT / ".venv/bin/python"), "-m", "tests.differential.aws", str(aws_dir)],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 300  # importing moto's backends takes minutes on a saturated machine
        while not (aws_dir / "endpoint").exists():
            if self.moto.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto did not start: see {aws_dir / 'moto.log'}")
            time.sleep(0.1)
        self.endpoint = (aws_dir / "endpoint").read_text()

    def _migrate_airflow(self) -> Path:
        home = self.root / "airflow-home"
        home.mkdir(exist_ok=True)
        env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        subprocess.run(
            [str(ROOT / VENVS["airflow"] / "bin/airflow"), "db", "migrate"], check=True, capture_output=True, env=env
        )
        return home / "airflow.db"

    def _start_ray(self) -> LocalRayHead:
        # Jobs run `python -m tests.differential.jobs...` from the copy of a working_dir Ray makes for them:
        # the head's PYTHONPATH (which Ray keeps after the working_dir's) finds the checkout's modules.
        head = isolated_head(self.root / "ray-home", {"PYTHONPATH": str(ROOT)})
        head.start()
        return head

    @property
    def ray_address(self) -> str:
        """The Ray head's job server (RAY_ADDRESS), or "" when this session has none."""
        return self.ray_head.address if self.ray_head is not None else ""

    def _start_prefect(self) -> PrefectServer:
        return start_prefect_server(ROOT / VENVS["prefect"] / "bin" / "python", self.root / "prefect")

    def aws_credentials(self, engine: str) -> dict[str, str]:
        """moto accepts any key; each engine gets its own, so a log line says who called."""
        return {
            "AWS_ACCESS_KEY_ID": f"diff{engine}",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }

    def stop(self) -> None:
        """Stop every service this session started."""
        for server in self.mlflow.values():
            server.stop()
        if self.prefect is not None:
            self.prefect.stop()
        if self.ray_head is not None:
            self.ray_head.stop(keep_logs=self.root / "ray-logs")
        if self.receiver is not None:
            self.receiver.stop()
        if self.moto is not None:
            assert self.moto.stdin is not None
            self.moto.stdin.close()
            try:
                self.moto.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.moto.kill()
                self.moto.wait()
