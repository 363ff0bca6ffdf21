"""Airflow DAG parse cost of the same synthetic pipelines written three ways: pipegen, by hand, dag-factory.

Every way describes the same pipeline (see benchmarks/synth.py) with the same operator, BatchOperator:

- pipegen:    the DAG file `pipegen compile SPEC -t airflow` writes (compiled with the core environment),
- hand:       the DAG an Airflow user would write by hand (`synth.airflow_dag_text`),
- dagfactory: dag-factory 1.1 building the DAG from YAML (`synth.dagfactory_yaml`) through the usual loader file,
- mlflow:     the hand-written DAG with `import mlflow` at its top level, the anti-pattern pipegen's generated
              files avoid (n=10 only, to keep the run short).

Two figures per way, shape and size, both the best over repeats after one discarded warm-up parse:

- warm:   one DagBag parse of the file in a warm process (Airflow, the amazon provider and dag-factory already
          imported, the file parsed once before timing),
- forked: the DAG processor's way. The parent has Airflow's DAG processor imported and, like
          `DagFileProcessorProcess.start` with `[dag_processor] parsing_pre_import_modules` on (the default),
          imports the `airflow.*` modules the file itself imports; then it forks a child that parses the file
          once and exits with a status saying whether the DAG with n tasks was found. Timed from fork to reap.
          Modules a file pulls in any other way (dag-factory, the operators it imports from YAML, mlflow, and
          names `airflow.sdk` loads lazily) are not pre-imported, so every forked parse pays for them, as in the
          DAG processor.

Every parse is checked: no import errors, exactly the expected DAG, n tasks; a failed parse stops the run.

Each way is measured in its own fresh process (`--worker`, started with bytecode caches on: common.child_env),
so no way inherits another's imports. The driver takes the samples round by round across the ways, so that other
load on the machine hits every way alike, and each process collects garbage before each sample. Parsing needs no
database: nothing is synced. The ratios pipegen/hand and dagfactory/pipegen come from the same run.

    .venv-bench/bin/python -m benchmarks.dag_parse [--sizes 10,100,1000] [--shapes chain,fanout] [--repeat N]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import ast
import gc
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks.common import BENCH, ROOT, best, child_env, python, run_pipegen, write_results
from benchmarks.synth import SHAPES, SIZES, airflow_dag_text, dagfactory_yaml, name_of, write_specs

WAYS = ("pipegen", "hand", "dagfactory", "mlflow")
MLFLOW_SIZE = 10
MLFLOW_REPEAT = 3
# Goals, from the same run: pipegen's DAG parses about as fast as the hand-written one,
# and dag-factory's parse of the same pipeline costs several times pipegen's in the DAG processor.
GOAL_PIPEGEN_VS_HAND = 1.2
GOAL_DAGFACTORY_VS_PIPEGEN = 5.0


def airflow_env(tmp: Path) -> dict[str, str]:
    """Settings every measured process gets before it imports Airflow: a private, quiet, offline AIRFLOW_HOME."""
    return {
        "AIRFLOW_HOME": str(tmp / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        # Room for the 1000-task dag-factory parse; the default of 30 s would turn a slow parse into an import error.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
        "AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "1",
    }


def dagfactory_loader(config: Path) -> str:
    """The small Python file dag-factory's docs put in the dags folder to load one YAML config."""
    # The docstring names Airflow: safe-mode discovery skips files that mention neither "airflow" nor "dag".
    return (
        f'"""Airflow DAGs built by dag-factory from {config.name}."""\n\n'
        "from dagfactory import load_yaml_dags\n\n"
        f"load_yaml_dags(globals_dict=globals(), config_filepath={str(config)!r})\n"
    )


def with_mlflow(text: str) -> str:
    """The hand-written DAG with `import mlflow` added at its top level."""
    return text.replace(
        "\nfrom datetime import timedelta\n", "\nfrom datetime import timedelta\n\nimport mlflow  # noqa: F401\n", 1
    )


def top_level_imports(path: Path) -> list[str]:
    """Modules a file imports when it is imported (not those imported inside functions or classes)."""
    found = []

    def visit(nodes: list[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append(node.module)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    visit(getattr(node, field, []))  # if/with/try bodies run at import time too

    visit(ast.parse(path.read_text()).body)
    return found


def write_dags(tmp: Path, shapes: tuple[str, ...], sizes: tuple[int, ...]) -> dict[str, list[dict[str, object]]]:
    """Write every way's DAG files; returns, per way, what to parse: file, dag_id and task count."""
    dags = tmp / "dags"
    specs = write_specs(tmp / "specs", shapes, sizes)
    out = tmp / "pipegen"
    run_pipegen("compile", *map(str, specs), "-t", "airflow", "-o", str(out))
    plan: dict[str, list[dict[str, object]]] = {way: [] for way in WAYS}
    for way in WAYS:
        (dags / way).mkdir(parents=True, exist_ok=True)
    for shape in shapes:
        for n in sizes:
            name = name_of(shape, n)
            files = {
                "pipegen": dags / "pipegen" / f"{name}.py",
                "hand": dags / "hand" / f"{name}.py",
                "dagfactory": dags / "dagfactory" / f"{name}.py",
            }
            shutil.copyfile(out / "airflow" / f"{name}.py", files["pipegen"])
            files["hand"].write_text(airflow_dag_text(shape, n))
            config = dags / "dagfactory" / f"{name}.yaml"
            config.write_text(dagfactory_yaml(shape, n))
            files["dagfactory"].write_text(dagfactory_loader(config))
            if n == MLFLOW_SIZE:
                files["mlflow"] = dags / "mlflow" / f"{name}.py"
                files["mlflow"].write_text(with_mlflow(airflow_dag_text(shape, n)))
            for way, path in files.items():
                plan[way].append({"shape": shape, "n": n, "file": str(path), "dag_id": name})
    return plan


# --- the measuring process (one per way) ---------------------------------------------------------------------------


def parse(path: str):
    """One DagBag parse of one file, as the DAG processor's child does it (no database, nothing synced)."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=path, safe_mode=True, load_op_links=False)


def problem(bag, dag_id: str, n: int) -> str | None:
    """Why a parse did not produce exactly the expected DAG with n tasks, or None when it did."""
    if bag.import_errors:
        return f"import errors: {bag.import_errors}"
    if list(bag.dags) != [dag_id]:
        return f"expected only DAG {dag_id!r}, found {list(bag.dags)}"
    tasks = len(bag.dags[dag_id].tasks)
    if tasks != n:
        return f"DAG {dag_id!r} has {tasks} tasks, expected {n}"
    return None


def warm_parse(path: str, dag_id: str, n: int) -> None:
    """Parse in this process; fail loudly when the parse did not yield the DAG."""
    why = problem(parse(path), dag_id, n)
    if why:
        raise AssertionError(f"{path}: {why}")


def forked_parse(path: str, dag_id: str, n: int) -> None:
    """Fork, parse once in the child, reap it; fail loudly when the child did not find the DAG."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            why = problem(parse(path), dag_id, n)
            if why:
                print(f"{path}: {why}", file=sys.stderr)
                code = 2
            else:
                code = 0
        except Exception:
            traceback.print_exc()
            raise  # never reaches the parent's code: the finally clause exits first
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise AssertionError(f"{path}: forked parse exited with {code}")


def worker(plan: list[dict[str, object]]) -> None:
    """Serve one way's samples: read `{"op": "forked"|"warm", "i": item}` lines, answer `{"s": seconds}` lines.

    Every forked sample must come before the first warm one: the warm phase imports dag-factory and the
    provider into this process, which the DAG processor's parent never has.
    """
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever else writes to stdout (Airflow, dag-factory, the DAG files) goes to stderr
    import airflow.dag_processing.processor  # the DAG processor's own imports
    from airflow.utils.file import iter_airflow_imports

    warm = False
    answers.write(json.dumps({"ready": True}) + "\n")
    while line := sys.stdin.readline():
        command = json.loads(line)
        if command["op"] == "quit":
            break
        item = plan[command["i"]]
        path, dag_id, n = str(item["file"]), str(item["dag_id"]), int(str(item["n"]))
        try:
            if command["op"] == "forked":
                if warm:
                    raise RuntimeError(
                        "a forked sample after the warm phase's imports would not be the DAG processor's"
                    )
                # What DagFileProcessorProcess.start does before it forks (parsing_pre_import_modules).
                for module in iter_airflow_imports(path):
                    importlib.import_module(module)
                parse_once = forked_parse
            else:
                if not warm:
                    import airflow.providers.amazon.aws.operators.batch  # noqa: F401
                    import dagfactory  # noqa: F401

                    warm = True
                parse_once = warm_parse
            # The previous parse's garbage (DAGs and tasks refer to each other) is not this parse's cost.
            gc.collect()
            start = time.perf_counter()
            parse_once(path, dag_id, n)
            answers.write(json.dumps({"s": time.perf_counter() - start}) + "\n")
        except Exception as e:
            answers.write(json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n")
            raise


class Worker:
    """A measuring process for one way, started fresh so that no way inherits another's imports."""

    def __init__(self, way: str, plan_file: Path, env: dict[str, str]) -> None:
        self.way = way
        cmd = [python(BENCH), "-m", "benchmarks.dag_parse", "--worker", way, "--plan", str(plan_file)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    def answer(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.way} worker exited with {self.proc.wait()}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.way}: {reply['error']}")
        return reply

    def sample(self, kind: str, i: int) -> float:
        """Seconds of one parse of item i (forked or warm)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": kind, "i": i}) + "\n")
        self.proc.stdin.flush()
        return float(str(self.answer()["s"]))

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def repeats_for(way: str, n: int, repeat: int) -> int:
    """Fewer repeats for mlflow's forked import (a second each); the best of fewer samples is too noisy elsewhere."""
    if way == "mlflow":
        return min(repeat, MLFLOW_REPEAT)
    return repeat


def measure(
    plan: dict[str, list[dict[str, object]]], env: dict[str, str], tmp: Path, repeat: int
) -> list[dict[str, object]]:
    """Every way's samples, interleaved round by round so that load on the machine hits every way alike."""
    workers: dict[str, Worker] = {}
    try:
        for way in WAYS:
            if plan[way]:
                (tmp / f"plan-{way}.json").write_text(json.dumps(plan[way]))
                workers[way] = Worker(way, tmp / f"plan-{way}.json", env)
        for w in workers.values():
            w.answer()  # ready: Airflow's DAG processor imported
        index = {(way, item["shape"], item["n"]): i for way, items in plan.items() for i, item in enumerate(items)}
        samples: dict[tuple[str, str, object, str], list[float]] = {}
        for kind in ("forked", "warm"):
            for item in plan["pipegen"]:
                shape, n = item["shape"], item["n"]
                ways = [way for way in workers if (way, shape, n) in index]
                for way in ways:  # one discarded warm-up parse each (writes bytecode, fills caches)
                    workers[way].sample(kind, index[way, shape, n])
                for r in range(max(repeats_for(way, int(str(n)), repeat) for way in ways)):
                    for way in ways[r % len(ways) :] + ways[: r % len(ways)]:
                        if r < repeats_for(way, int(str(n)), repeat):
                            got = workers[way].sample(kind, index[way, shape, n])
                            samples.setdefault((way, str(shape), n, kind), []).append(got)
                line = ", ".join(f"{way} {best(samples[way, str(shape), n, kind]) * 1000:.1f}" for way in ways)
                print(f"  {kind:<6} {shape:<6} n={n!s:<5} best ms: {line}", file=sys.stderr, flush=True)
    finally:
        for w in workers.values():
            w.close()
    rows = []
    for way, items in plan.items():
        for item in items:
            row: dict[str, object] = {"way": way, "shape": item["shape"], "n": item["n"]}
            for kind in ("warm", "forked"):
                got = samples[way, str(item["shape"]), item["n"], kind]
                row[f"{kind}_s"] = best(got)
                row[f"{kind}_min_s"] = min(got)
                row[f"{kind}_samples_s"] = got
            rows.append(row)
    return rows


# --- the driver ----------------------------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def summarize(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Ratios per shape and size from the same run."""
    by = {(r["way"], r["shape"], r["n"]): r for r in rows}
    out = []
    for shape, n in dict.fromkeys((r["shape"], r["n"]) for r in rows):
        entry: dict[str, object] = {"shape": shape, "n": n}
        for kind in ("warm", "forked"):
            pipegen, hand, factory = (
                by.get((w, shape, n), {}).get(f"{kind}_s") for w in ("pipegen", "hand", "dagfactory")
            )
            entry[f"pipegen_vs_hand_{kind}"] = ratio(pipegen, hand)
            entry[f"dagfactory_vs_pipegen_{kind}"] = ratio(factory, pipegen)
        mlflow, hand = (by.get((w, shape, n), {}).get("forked_s") for w in ("mlflow", "hand"))
        if mlflow is not None:
            entry["mlflow_vs_hand_forked"] = ratio(mlflow, hand)
        entry["goal_pipegen_vs_hand_met"] = all(
            v is not None and v <= GOAL_PIPEGEN_VS_HAND
            for v in (entry["pipegen_vs_hand_warm"], entry["pipegen_vs_hand_forked"])
        )
        entry["goal_dagfactory_vs_pipegen_forked_met"] = (
            entry["dagfactory_vs_pipegen_forked"] is not None
            and entry["dagfactory_vs_pipegen_forked"] >= GOAL_DAGFACTORY_VS_PIPEGEN
        )
        out.append(entry)
    return out


def table(rows: list[dict[str, object]], ratios: list[dict[str, object]]) -> str:
    """The figures as a readable table."""

    def ms(row: dict[str, object] | None, kind: str) -> str:
        return "-" if row is None else f"{float(row[f'{kind}_s']) * 1000:.1f}"

    def x(v: object) -> str:
        return "-" if v is None else f"{v:.2f}x"

    by = {(r["way"], r["shape"], r["n"]): r for r in rows}
    lines = [
        "Airflow DAG parse time, best of the repeats, ms (warm: in-process DagBag parse; forked: fork + parse + exit)",
        "",
        f"{'shape':<7}{'n':>5} | {'kind':<6} | {'pipegen':>9} {'hand':>9} {'dagfactory':>10} {'mlflow':>9}"
        f" | {'pipegen/hand':>12} {'dagfactory/pipegen':>18}",
        "-" * 104,
    ]
    for r in ratios:
        shape, n = r["shape"], r["n"]
        for kind in ("warm", "forked"):
            cells = " ".join(
                f"{ms(by.get((w, shape, n)), kind):>{width}}"
                for w, width in (("pipegen", 9), ("hand", 9), ("dagfactory", 10), ("mlflow", 9))
            )
            lines.append(
                f"{shape:<7}{n:>5} | {kind:<6} | {cells}"
                f" | {x(r[f'pipegen_vs_hand_{kind}']):>12} {x(r[f'dagfactory_vs_pipegen_{kind}']):>18}"
            )
    lines += [
        "",
        f"goals: pipegen/hand <= {GOAL_PIPEGEN_VS_HAND}x (warm and forked); "
        f"dagfactory/pipegen >= {GOAL_DAGFACTORY_VS_PIPEGEN}x (forked)",
    ]
    for r in ratios:
        lines.append(
            f"  {r['shape']:<7}{r['n']:>5}: pipegen/hand {'met' if r['goal_pipegen_vs_hand_met'] else 'MISSED'}, "
            f"dagfactory/pipegen {'met' if r['goal_dagfactory_vs_pipegen_forked_met'] else 'MISSED'}"
        )
    return "\n".join(lines)


def bench_versions() -> dict[str, str]:
    """Versions of what is measured, from the bench environment."""
    code = (
        "import importlib.metadata as m, json; print(json.dumps({d: m.version(d) for d in "
        "('apache-airflow', 'apache-airflow-providers-amazon', 'dag-factory', 'mlflow')}))"
    )
    done = subprocess.run([python(BENCH), "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument(
        "--repeat",
        type=int,
        default=7,
        help=f"timed parses per figure (at most {MLFLOW_REPEAT} for mlflow)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also store the results here")
    parser.add_argument("--worker", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        worker(json.loads(args.plan.read_text()))
        return

    started = time.perf_counter()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    shapes = tuple(args.shapes.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="pipegen-dag-parse-"))
    try:
        env = child_env(**airflow_env(tmp))
        (tmp / "airflow_home").mkdir()
        plan = write_dags(tmp, shapes, sizes)

        # The generated DAGs must parse without pipegen installed: pipegen.runtime belongs inside task functions.
        generated_imports = sorted({m for item in plan["pipegen"] for m in top_level_imports(Path(str(item["file"])))})
        pipegen_at_top = [m for m in generated_imports if m.split(".")[0] == "pipegen"]
        if pipegen_at_top:
            print(
                f"note: generated DAGs import {pipegen_at_top} at top level; adding src/ to PYTHONPATH", file=sys.stderr
            )
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))

        rows = measure(plan, env, tmp, args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ratios = summarize(rows)
    elapsed = time.perf_counter() - started
    print("\n" + table(rows, ratios) + f"\n\ntotal runtime {elapsed:.0f} s\n", file=sys.stderr)
    results = {
        "config": {"sizes": list(sizes), "shapes": list(shapes), "repeat": args.repeat, "versions": bench_versions()},
        "pipegen_dag_top_level_imports": generated_imports,
        "pipegen_src_on_pythonpath": bool(pipegen_at_top),
        "runs": rows,
        "ratios": ratios,
        "goals": {
            "pipegen_vs_hand_max": GOAL_PIPEGEN_VS_HAND,
            "dagfactory_vs_pipegen_forked_min": GOAL_DAGFACTORY_VS_PIPEGEN,
        },
        "runtime_s": elapsed,
    }
    write_results(args.json, "dag_parse", results)


if __name__ == "__main__":
    main()
