"""Prefect at scale: import time of pipegen's flow module against a hand-written flow of the same pipeline.

    .venv/bin/python -m benchmarks.prefect_import [--sizes 100,1000] [--shapes chain,fanout] [--repeat 10] [--json FILE]

A Prefect worker imports a deployment's flow module at every run (and `prefect deploy` once). For each
synthetic spec: pipegen's module (`pipegen compile -t prefect`) and the flow a Prefect user would write
(benchmarks/synth.prefect_flow_text: one Batch-job task submitted once per step), each imported in a fresh
.venv-prefect process, best of several runs after a warm-up (bytecode caches on). Two figures per module: the
whole import, prefect's own included, and the module's own part (prefect already imported). Wall times are
the goal's; CPU times are given too, as the machine is shared.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import PIPEGEN, ROOT, best, child_env, python, write_results
from benchmarks.synth import SHAPES, name_of, prefect_flow_text, write_specs

PREFECT = ROOT / ".venv-prefect"
# Imports the module at argv[1]; with argv[2] == "own", prefect's modules the flows use are imported first.
IMPORT = """
import importlib.util, sys, time
if sys.argv[2] == "own":
    import prefect, prefect.cache_policies, prefect.runtime, prefect.states  # noqa: F401
wall, cpu = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("flow_module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def import_once(path: Path, part: str) -> tuple[float, float]:
    """Wall and CPU seconds of importing path in a fresh process (part: 'whole' or 'own')."""
    proc = subprocess.run(
        [python(PREFECT), "-c", IMPORT, str(path), part], check=True, env=child_env(), capture_output=True, text=True
    )
    wall, cpu = (float(x) for x in proc.stdout.split()[-2:])
    return wall, cpu


def import_times(modules: dict[str, Path], repeat: int) -> dict[str, float]:
    """Best wall and CPU seconds per module and part; the modules' runs interleaved, so that load on a shared
    machine weighs on both alike; the first round warms the bytecode caches and is dropped."""
    samples: dict[str, list[float]] = {}
    for i in range(repeat + 1):
        for way, path in modules.items():
            for part in ("whole", "own"):
                wall, cpu = import_once(path, part)
                if i:
                    samples.setdefault(f"{way}_{part}_wall_s", []).append(wall)
                    samples.setdefault(f"{way}_{part}_cpu_s", []).append(cpu)
    return {k: round(best(v), 4) for k, v in samples.items()}


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        for spec in write_specs(Path(tmp) / "specs", tuple(args.shapes.split(",")), sizes):
            shape, n = spec.stem.split("-")[1], int(spec.stem.split("-")[2])
            subprocess.run(
                [PIPEGEN, "compile", str(spec), "-t", "prefect", "-o", str(out)], check=True, env=child_env()
            )
            hand = Path(tmp) / f"hand_{shape}_{n}.py"
            hand.write_text(prefect_flow_text(shape, n))
            modules = {"pipegen": out / "prefect" / f"{name_of(shape, n)}.py", "hand": hand}
            row: dict[str, object] = {"shape": shape, "n": n}
            row |= {f"{way}_bytes": path.stat().st_size for way, path in modules.items()}
            row |= import_times(modules, args.repeat)
            for kind in ("wall", "cpu"):
                row[f"whole_{kind}_ratio"] = round(
                    float(row[f"pipegen_whole_{kind}_s"]) / float(row[f"hand_whole_{kind}_s"]),  # type: ignore[arg-type]
                    3,
                )
            rows.append(row)
            print(row, file=sys.stderr)
    worst = max(float(r["whole_wall_ratio"]) for r in rows if r["n"] == max(sizes))  # type: ignore[arg-type]
    write_results(args.json, "prefect_import", {"rows": rows, "worst_whole_wall_ratio_at_largest": worst})


if __name__ == "__main__":
    main()
