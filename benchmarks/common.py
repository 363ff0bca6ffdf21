"""Shared helpers for the benchmark scripts: timing, environments, and the JSON they write."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The environments `make bench` prepares (see Makefile): one lock, several environments.
CORE = ROOT / ".venv"
BENCH = ROOT / ".venv-bench"
KFP = ROOT / ".venv-kfp"


# The installed command, as a user runs it.
PIPEGEN = str(CORE / "bin" / "pipegen")


def python(venv: Path) -> str:
    """The interpreter of an environment."""
    return str(venv / "bin" / "python")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for measured processes: bytecode caches on, as after `pip install`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def best(samples: Iterable[float]) -> float:
    """The figure reported for repeated timings: the fastest, as timeit advises.

    Slower samples are other processes on a shared machine interfering (seen here: medians moving by
    half between two runs while the minimum held); the minimum is what the code itself costs.
    """
    return min(samples)


def run_pipegen(*args: str, cwd: Path = ROOT) -> None:
    """Run the pipegen command once (outside any timing), failing loudly."""
    subprocess.run([PIPEGEN, *args], check=True, env=child_env(), cwd=cwd, capture_output=True)


def time_command(cmd: Sequence[str], repeat: int = 5, env: dict[str, str] | None = None, cwd: Path = ROOT) -> float:
    """Best wall time in seconds of a whole process over repeat runs, after one discarded warm-up run."""
    env = env or child_env()
    subprocess.run(cmd, check=True, env=env, cwd=cwd, capture_output=True)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, cwd=cwd, capture_output=True)
        samples.append(time.perf_counter() - start)
    return best(samples)


def time_call(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best wall time in seconds of an in-process call over repeat calls, after one discarded warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return best(samples)


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
    }


def write_results(path: Path | None, name: str, results: dict[str, object]) -> None:
    """Print results as JSON and, when asked, store them for BENCHMARKS.md."""
    doc = {"benchmark": name, "machine": machine(), "results": results}
    text = json.dumps(doc, indent=2, sort_keys=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    print(text, file=sys.stdout)
