"""Compile cost and artifact size: whole-process `pipegen compile -t all` of synthetic specs.

    .venv/bin/python -m benchmarks.compile [--sizes 10,100,1000] [--shapes chain,fanout] [--repeat N]
        [--memory-sizes 1000,10000] [--json FILE]

Reports, per shape and size: the whole process's best time for all five targets (and each alone), the
compiler's own work per step inside a process (linear growth keeps it flat), bytes per step of each target's
output, and whether the Step Functions definition fits the service's 1 MiB definition and request limits. Floors: an empty
Python, and a Python that imports the compiler's four libraries. Peak memory: the resident set
(ru_maxrss) of one compile process per target on long chains, where a per-step cost that grows with
the chain's length (quadratic in all) shows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import CORE, PIPEGEN, best, child_env, python, time_command, write_results
from benchmarks.synth import SHAPES, SIZES, name_of, write_specs

MIB = 1_048_576
REQUEST_ROOM = 8_192  # what pipegen keeps for the rest of the CreateStateMachine request
TARGETS = ("airflow", "kfp", "stepfunctions", "prefect", "argo")  # `-t all`


# Times the compiler's own work inside one fresh process, after its imports: no startup noise.
WORK = """
import sys, time
from pipegen.compiler import compile_checked
from pipegen.frontend import check_file
start = time.perf_counter()
result = compile_checked(check_file(sys.argv[1]), ["airflow", "kfp", "stepfunctions", "prefect", "argo"])
assert result.ok, [d.format() for d in result.diagnostics]
print(time.perf_counter() - start)
"""


def work_time(spec: Path, repeat: int) -> float:
    """Best in-process time of checking and compiling a spec for all targets (fresh process each time)."""
    samples = []
    for _ in range(repeat + 1):
        proc = subprocess.run(
            [python(CORE), "-c", WORK, str(spec)], check=True, env=child_env(), capture_output=True, text=True
        )
        samples.append(float(proc.stdout.strip().splitlines()[-1]))
    return best(samples[1:])


# One target's compile in a fresh process; prints its peak resident set (KiB), wall time and exit code.
# The address space is capped so a quadratic target fails with MemoryError instead of calling the OOM
# killer on a shared machine.
MEMORY_CAP = 1024**3
MEMORY = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[4]), int(sys.argv[4])))
from pipegen.cli import main
start = time.perf_counter()
try:
    code = main(["compile", sys.argv[1], "-t", sys.argv[2], "-o", sys.argv[3]])
except SystemExit as exc:
    code = exc.code or 0
except MemoryError:
    code = "MemoryError"
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - start, code)
"""


def peak_memory(spec: Path, target: str, outdir: Path) -> dict[str, object]:
    """Peak resident set (MiB), wall time and exit of one process compiling spec for one target."""
    proc = subprocess.run(
        [python(CORE), "-c", MEMORY, str(spec), target, str(outdir), str(MEMORY_CAP)],
        check=False,
        env=child_env(),
        capture_output=True,
        text=True,
    )
    fields = proc.stdout.split()[-3:]
    if len(fields) != 3:  # killed, or died in a way it could not report
        return {"target": target, "peak_mib": None, "seconds": None, "exit": str(proc.returncode)}
    rss_kib, seconds, code = fields
    return {
        "target": target,
        "peak_mib": round(int(rss_kib) / 1024, 1),
        "seconds": round(float(seconds), 2),
        "exit": code,
    }


def artifact_sizes(outdir: Path, name: str, n: int) -> dict[str, object]:
    """Bytes (and bytes per step) of each target's output; the ASL as written, compact and as uploaded."""
    airflow = (outdir / "airflow" / f"{name}.py").read_bytes()
    kfp = (outdir / "kfp" / f"{name}.py").read_bytes()
    prefect = (outdir / "prefect" / f"{name}.py").read_bytes()
    argo = (outdir / "argo" / f"{name}.yaml").read_bytes()
    asl_text = (outdir / "stepfunctions" / f"{name}.asl.json").read_text()
    asl = json.loads(asl_text)
    compact = json.dumps(asl, separators=(",", ":"), ensure_ascii=False).encode()
    pretty = json.dumps(asl, indent=2, ensure_ascii=False).encode()
    upload = len(json.dumps(asl_text, ensure_ascii=False).encode())
    return {
        "airflow_bytes": len(airflow),
        "airflow_per_step": round(len(airflow) / n),
        "kfp_py_bytes": len(kfp),
        "kfp_py_per_step": round(len(kfp) / n),
        "prefect_py_bytes": len(prefect),
        "prefect_py_per_step": round(len(prefect) / n),
        "argo_yaml_bytes": len(argo),
        "argo_yaml_per_step": round(len(argo) / n),
        "asl_bytes": len(asl_text.encode()),
        "asl_per_step": round(len(asl_text.encode()) / n),
        "asl_compact_bytes": len(compact),
        "asl_pretty_bytes": len(pretty),
        "asl_upload_bytes": upload,
        "asl_fits": len(asl_text.encode()) <= MIB and upload + REQUEST_ROOM <= MIB,
    }


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--memory-sizes", default="1000,10000")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    shapes = tuple(args.shapes.split(","))

    py = python(CORE)
    floors = {
        "python_s": time_command([py, "-c", "pass"], args.repeat),
        "libraries_s": time_command([py, "-c", "import pydantic, jinja2, yaml, networkx"], args.repeat),
        "pipegen_version_s": time_command([PIPEGEN, "--version"], args.repeat),
    }
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        specs = write_specs(Path(tmp) / "specs", shapes, sizes)
        for spec in specs:
            shape, n = spec.stem.split("-")[1], int(spec.stem.split("-")[2])
            out = Path(tmp) / "out"
            cmd = [PIPEGEN, "compile", str(spec), "-t", "all", "-o", str(out)]
            row: dict[str, object] = {"shape": shape, "n": n}
            row["all_targets_s"] = time_command(cmd, args.repeat)
            row["work_s"] = work_time(spec, args.repeat)
            row["work_us_per_step"] = round(row["work_s"] / n * 1e6, 1)
            for target in TARGETS:
                single = [PIPEGEN, "compile", str(spec), "-t", target, "-o", str(out)]
                row[f"{target}_s"] = time_command(single, max(1, args.repeat // 2))
            row |= artifact_sizes(out, name_of(shape, n), n)
            rows.append(row)
            print(f"{shape:7} {n:5}  all targets {row['all_targets_s']:.3f}s", file=sys.stderr)
    # Linear growth: the compiler's own work per step stays flat from the smallest size to the largest.
    growth: dict[str, object] = {}
    for shape in shapes:
        per_step = {r["n"]: r["work_us_per_step"] for r in rows if r["shape"] == shape}
        growth[f"{shape}_us_per_step"] = per_step
        growth[f"{shape}_largest_vs_100"] = round(
            float(per_step[max(per_step)]) / float(per_step.get(100, per_step[max(per_step)])), 2
        )  # type: ignore[arg-type]
    memory: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        sizes = tuple(int(s) for s in args.memory_sizes.split(",") if s)
        baseline = [
            python(CORE),
            "-c",
            "import resource, pipegen.cli; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
        ]
        floor_kib = int(subprocess.run(baseline, check=True, env=child_env(), capture_output=True, text=True).stdout)
        floors["pipegen_import_peak_mib"] = round(floor_kib / 1024, 1)
        for spec in write_specs(Path(tmp) / "specs", ("chain",), sizes):
            n = int(spec.stem.split("-")[2])
            for target in TARGETS:
                row = {"n": n, **peak_memory(spec, target, Path(tmp) / "out")}
                memory.append(row)
                print(f"memory chain {n:6} {target:14} {row['peak_mib']} MiB {row['seconds']} s", file=sys.stderr)
    results = {
        "floors": floors,
        "rows": rows,
        "growth": growth,
        "memory": memory,
        "memory_cap_gib": MEMORY_CAP / 1024**3,
    }
    write_results(args.json, "compile", results)


if __name__ == "__main__":
    main()
