"""Compile specs for Prefect and load the generated flows, as a user's worker would import them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pipegen.runtime.redacted_output import end_group
from tests.cases import REPO
from tests.support_tools import free_port

DEMO = REPO / "specs" / "demo.yaml"
PRICING = REPO / "specs" / "pricing.yaml"
PREFECT = Path(sys.executable).parent / "prefect"
# A Prefect API server (the harness's or `prefect server start`) takes 25-40 s to answer on a busy 2-core machine.
STARTUP_SECONDS = 180


def compile_prefect(out: Path, *specs: Path) -> Path:
    """`pipegen compile SPECS -t prefect -o OUT` as users run it; returns OUT/prefect."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipegen", "compile", *map(str, specs), "-t", "prefect", "-o", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "prefect"


def load_module(path: Path) -> ModuleType:
    """Import a generated module from its file (a fresh module object each time)."""
    spec = importlib.util.spec_from_file_location(f"pipegen_prefect_{path.stem.replace('-', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_flow(folder: Path, spec_name: str) -> Any:
    """The flow a spec compiled to: function `<name with - as _>` in `<name>.py` (the target's contract)."""
    return getattr(load_module(folder / f"{spec_name}.py"), spec_name.replace("-", "_"))


def demo_variant(folder: Path, model: str, *, replace: dict[str, str] | None = None, append: str = "") -> Path:
    """specs/demo.yaml with its own model and experiment (tests share one MLflow server), edited as told."""
    text = DEMO.read_text().replace("model: pipegen-demo", f"model: {model}")
    text = text.replace("experiment: pipegen-demo", f"experiment: {model}")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo.yaml"
    path.write_text(text + append)
    return path


@dataclass
class PrefectServer:
    """A running `prefect server start` and the environment its clients (CLI, workers) need."""

    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop the server and the processes it started."""
        end_group(self.process, grace=20)


def start_prefect_server(root: Path) -> PrefectServer:
    """`prefect server start` on a free port with its own PREFECT_HOME under root; waits until /api/health answers."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    log = root / "server.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2):
                return PrefectServer({**env, "PREFECT_API_URL": api}, process)
        except OSError:
            time.sleep(0.5)
    end_group(process, grace=20)
    raise RuntimeError(f"prefect server did not answer in {STARTUP_SECONDS}s: {log.read_text()[-3000:]}")
