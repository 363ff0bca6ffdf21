"""Run every benchmark in its environment, store the figures, and rewrite BENCHMARKS.md's tables.

    make bench          (sets up .venv, .venv-airflow, .venv-kfp, .venv-prefect and .venv-bench first)
    .venv/bin/python -m benchmarks.run_all [--only compile,check,...] [--report-only]

Figures land in benchmarks/results/<name>.json; BENCHMARKS.md's section between the `results` markers
is generated from them, so the table, the machine and the ratios always come from one run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from benchmarks.common import BENCH, CORE, KFP, ROOT, child_env, python
from benchmarks.report import END, RESULTS, START, report

DOC = ROOT / "BENCHMARKS.md"
# name -> (environment, module)
BENCHMARKS = {
    "dag_parse": (BENCH, "benchmarks.dag_parse"),
    "compile": (CORE, "benchmarks.compile"),
    "kfp_compile": (KFP, "benchmarks.kfp_compile"),
    "check": (CORE, "benchmarks.check"),
    "loop": (CORE, "benchmarks.loop"),
    "argo_size": (CORE, "benchmarks.argo_size"),
    # Imports each flow module in .venv-prefect processes.
    "prefect_import": (CORE, "benchmarks.prefect_import"),
    # Runs each flow in .venv-prefect processes against Prefect's ephemeral API.
    "prefect_engine": (CORE, "benchmarks.prefect_engine"),
    # The differential suite's fan-out on a real scheduler (api-server, scheduler, dag-processor; it starts
    # .venv-airflow's `airflow` itself, and moto and an MLflow server from .venv).
    "fanout_airflow": (CORE, "benchmarks.fanout_airflow"),
}


def run(names: list[str]) -> None:
    """Run the named benchmarks one after another (they would disturb each other's timings)."""
    for name in names:
        venv, module = BENCHMARKS[name]
        print(f"--- {name}", file=sys.stderr, flush=True)
        subprocess.run(
            [python(venv), "-m", module, "--json", str(RESULTS / f"{name}.json")],
            check=True,
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.DEVNULL,
        )


def write_report() -> None:
    """Replace the generated section of BENCHMARKS.md."""
    text = DOC.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + report() + tail)


def main() -> None:
    """Run, store, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        run([n for n in args.only.split(",") if n])
    write_report()
    print(DOC.read_text().partition(START)[2].partition(END)[0])


if __name__ == "__main__":
    main()
