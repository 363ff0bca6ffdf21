"""Prefect's engine at scale: a pipegen flow of N local steps run to its end, against a hand-written flow.

    .venv/bin/python -m benchmarks.prefect_engine [--sizes 100,1000] [--shapes chain,fanout] [--json FILE]

Each step runs `true` (a process that does nothing), so what a run costs is the engine's per-task work and, for
pipegen, its runtime's (rendering the step's request, starting the command through the runtime). The hand-written
flow is what a Prefect user writes for the same shape: one @task running the command with subprocess, submitted
once per step with wait_for on the step before. Both run in a fresh .venv-prefect process against Prefect's
ephemeral API (a throwaway PREFECT_HOME), one run each after a 10-step warm-up of the same kind; the figure is
the flow call's wall time per task, timed after a one-task flow has started the API server. Wall time on a shared machine moves with its load: compare the two flows
of one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import PIPEGEN, ROOT, child_env, python, write_results
from benchmarks.synth import SHAPES, upstream

PREFECT = ROOT / ".venv-prefect"

# Imports the flow module at argv[1], starts the API server, calls the flow named argv[2]; prints the call's wall and
# CPU seconds.
RUN = """
import importlib.util, sys, time
from prefect import flow as prefect_flow
spec = importlib.util.spec_from_file_location("flow_module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
flow = getattr(module, sys.argv[2])
# Starts Prefect's ephemeral API server (it lives as long as this process): its start-up, tens of seconds on a
# busy machine, is no part of the engine's per-task cost.
prefect_flow(name="warm-up")(lambda: None)()
wall, cpu = time.perf_counter(), time.process_time()
flow()
print(time.perf_counter() - wall, time.process_time() - cpu)
"""

HAND_HEAD = '''"""NAME: each step a task running its command, as a Prefect user writes it."""

import subprocess

from prefect import flow, task
from prefect.cache_policies import NO_CACHE


@task(cache_policy=NO_CACHE, task_run_name="s{part}")
def step(part: int) -> None:
    subprocess.run(["true"], check=True)


@flow(name="NAME")
def pipeline() -> None:
    s = {}
'''


def name_of(shape: str, n: int) -> str:
    """The pipeline's name (and the pipegen flow function's, dashes as underscores)."""
    return f"engine-{shape}-{n}"


def spec_text(shape: str, n: int) -> str:
    """n local steps that run `true`, in the shape."""
    lines = [f"pipegen: 1\nname: {name_of(shape, n)}\nbackends: {{here: {{type: local}}}}\nsteps:\n"]
    for i in range(n):
        up = upstream(shape, i)
        after = f", after: [s{up}]" if up is not None else ""
        lines.append(f"  - {{name: s{i}, task: {{backend: here, command: ['true']}}{after}}}\n")
    return "".join(lines)


def hand_text(shape: str, n: int) -> str:
    """The same shape as a hand-written flow."""
    body = []
    for i in range(n):
        up = upstream(shape, i)
        wait = f", wait_for=[s[{up}]]" if up is not None else ""
        body.append(f"    s[{i}] = step.submit({i}{wait})\n")
    tail = "    for future in s.values():\n        future.result()\n"
    return HAND_HEAD.replace("NAME", name_of(shape, n)) + "".join(body) + tail


def run_flow(module: Path, function: str, home: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one flow call in a fresh .venv-prefect process."""
    env = child_env(
        PREFECT_HOME=str(home),
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_API_URL="",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",  # a busy machine starts it slowly
    )
    proc = subprocess.run([python(PREFECT), "-c", RUN, str(module), function], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{module.name}: {proc.stderr[-2000:]}")
    wall, cpu = (float(x) for x in proc.stdout.split()[-2:])
    return wall, cpu


def flows(tmp: Path, shape: str, n: int) -> dict[str, tuple[Path, str]]:
    """{way: (module, flow function)} for pipegen's flow and the hand-written one."""
    spec = tmp / f"{name_of(shape, n)}.yaml"
    spec.write_text(spec_text(shape, n))
    out = tmp / "out"
    subprocess.run([PIPEGEN, "compile", str(spec), "-t", "prefect", "-o", str(out)], check=True, env=child_env())
    hand = tmp / f"hand_{shape}_{n}.py"
    hand.write_text(hand_text(shape, n))
    return {
        "pipegen": (out / "prefect" / f"{name_of(shape, n)}.py", name_of(shape, n).replace("-", "_")),
        "hand": (hand, "pipeline"),
    }


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for shape in args.shapes.split(","):
            warm = tmp / f"warmup-{shape}"
            warm.mkdir()
            for way, (module, function) in flows(warm, shape, 10).items():
                run_flow(module, function, tmp / f"home-warmup-{way}")  # bytecode caches, Prefect's database
            for n in (int(s) for s in args.sizes.split(",")):
                row: dict[str, object] = {"shape": shape, "n": n}
                work = tmp / f"{shape}-{n}"
                work.mkdir()
                for way, (module, function) in flows(work, shape, n).items():
                    wall, cpu = run_flow(module, function, tmp / f"home-{shape}-{n}-{way}")
                    row |= {f"{way}_wall_s": round(wall, 3), f"{way}_cpu_s": round(cpu, 3)}
                    row[f"{way}_ms_per_task"] = round(wall / n * 1000, 1)
                row["wall_ratio"] = round(float(row["pipegen_wall_s"]) / float(row["hand_wall_s"]), 3)  # type: ignore[arg-type]
                rows.append(row)
                print(row, file=sys.stderr)
    write_results(args.json, "prefect_engine", {"rows": rows})


if __name__ == "__main__":
    main()
