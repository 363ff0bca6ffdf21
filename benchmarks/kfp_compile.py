"""kfp compile cost: `import kfp`, the kfp compiler on the synthetic shapes, and pipegen's kfp output size.

For each shape and size this measures, in fresh `.venv-kfp` processes with bytecode caches on:

- hand: the pipeline written directly for kfp (`synth.kfp_pipeline_text`, one container component
  reused by every step) imported and compiled with `kfp.compiler.Compiler().compile`;
- pipegen: the file `pipegen compile SPEC -t kfp` generates for the same spec, compiled the same way, then
  with its tasks sharing identical components as `pipegen compile --ir` writes it (both sizes reported);
- container: the same with `targets: {kfp: {runtime_components: container}}` (container components running
  pipegen's runtime, no embedded source).

Each compile process reports its own phases (kfp import, module load, which is where `@dsl.pipeline`
builds the graph, and the compile() call) next to the whole-process wall time. Sizes are the bytes of
the Python source and of the IR YAML kfp writes, per step, against Kubernetes' 1.5 MiB etcd request
limit, with the IR split by top-level section.

    .venv-kfp/bin/python -m benchmarks.kfp_compile [--sizes 10,100,1000] [--shapes chain,fanout]
                                                   [--repeat N] [--json FILE]
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import KFP, ROOT, best, child_env, python, run_pipegen, time_command, write_results
from benchmarks.synth import SHAPES, SIZES, kfp_pipeline_text, name_of, spec_text
from pipegen.targets.kfp.ir_share import shared_ir

ETCD_LIMIT = 1536 * 1024  # Kubernetes' default etcd request size limit, 1.5 MiB
LARGE = 1000  # sizes from here on run at most LARGE_REPEAT times, after the warm-up
LARGE_REPEAT = 2
CONTEXT_TASK = "pipegen-context"  # the task pipegen adds ahead of the steps for ${run.id} / ${run.date}

# Runs in a fresh .venv-kfp interpreter: argv = pipeline module, package path, samples file.
# It appends its phase times as one JSON line, so time_command's runs (warm-up first) leave one line each.
CHILD = """\
import importlib.util
import json
import sys
import time

t0 = time.perf_counter()
import kfp
from kfp import compiler

t1 = time.perf_counter()
spec = importlib.util.spec_from_file_location("bench_pipeline", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
t2 = time.perf_counter()
compiler.Compiler().compile(module.pipeline, sys.argv[2])
t3 = time.perf_counter()
line = json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "compile_s": t3 - t2})
with open(sys.argv[3], "a") as f:
    f.write(line + "\\n")
print(line)
"""

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def imports_pipegen_at_top_level(source: str) -> bool:
    """Whether a module imports pipegen outside function bodies (then it needs ROOT/src on the path)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "pipegen" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pipegen":
            return True
    return False


def ir_sections(text: str) -> dict[str, int]:
    """Bytes of the IR YAML per top-level key; the platform spec document counts as `platforms`."""
    sizes: dict[str, int] = {}
    key = "header"
    for line in text.splitlines(keepends=True):
        if line.startswith("---"):
            key = "platforms"
        elif line[:1] not in ("", " ", "#", "-", "\n") and key != "platforms":
            key = line.split(":", 1)[0]
        sizes[key] = sizes.get(key, 0) + len(line.encode())
    return sizes


def check_ir(path: Path, n: int, extra_tasks: set[str]) -> dict[str, object]:
    """Parse the IR, assert the root DAG holds the n steps (plus extra_tasks), and size it up."""
    text = path.read_text()
    docs = list(yaml.load_all(text, Loader=Loader))
    tasks = set(docs[0]["root"]["dag"]["tasks"])
    assert extra_tasks <= tasks, f"{path.name}: missing {extra_tasks - tasks}"
    assert len(tasks - extra_tasks) == n, f"{path.name}: {len(tasks - extra_tasks)} step tasks in root DAG, want {n}"
    size = path.stat().st_size
    return {
        "root_tasks": len(tasks),
        "components": len(docs[0].get("components", {})),
        "executors": len(docs[0].get("deploymentSpec", {}).get("executors", {})),
        "ir_bytes": size,
        "ir_bytes_per_step": size / n,
        "ir_fits_etcd": size <= ETCD_LIMIT,
        "ir_sections": ir_sections(text),
    }


def measure_compile(module: Path, out: Path, repeat: int, env: dict[str, str]) -> dict[str, float]:
    """Whole-process time of importing and compiling module, and the child's own phase times (best of the repeats)."""
    samples_file = out.with_suffix(".samples")
    samples_file.unlink(missing_ok=True)
    child = out.parent / "_compile_child.py"
    if not child.exists():
        child.write_text(CHILD)
    cmd = [python(KFP), str(child), str(module), str(out), str(samples_file)]
    try:
        process_s = time_command(cmd, repeat=repeat, env=env)
    except subprocess.CalledProcessError as err:
        log(err.stderr.decode(errors="replace"))
        raise
    lines = samples_file.read_text().splitlines()
    assert len(lines) == repeat + 1, f"expected {repeat + 1} samples, got {len(lines)}"
    samples = [json.loads(line) for line in lines[1:]]  # the first is time_command's warm-up
    phases = {key: best(s[key] for s in samples) for key in ("import_s", "load_s", "compile_s")}
    return {"process_s": process_s, **phases}


def generate(spec: Path, out: Path) -> tuple[Path, float]:
    """Run `pipegen compile SPEC -t kfp -o out` once; returns the generated file and the wall time."""
    start = time.perf_counter()
    run_pipegen("compile", str(spec), "-t", "kfp", "-o", str(out))
    elapsed = time.perf_counter() - start
    generated = out / "kfp" / f"{spec.stem}.py"
    assert generated.exists(), f"pipegen wrote no {generated}"
    return generated, elapsed


def run_case(shape: str, n: int, repeat: int, work: Path) -> dict[str, Any]:
    name = name_of(shape, n)
    case = work / name
    case.mkdir()
    env = child_env()

    hand_py = case / f"hand_{shape}_{n}.py"
    hand_py.write_text(kfp_pipeline_text(shape, n))
    hand_ir = case / "hand.yaml"
    log(f"  {name}: hand-written kfp compile x{repeat} ...")
    hand: dict[str, object] = dict(measure_compile(hand_py, hand_ir, repeat, env))
    hand.update(check_ir(hand_ir, n, set()))
    hand["py_bytes"] = hand_py.stat().st_size
    hand["py_bytes_per_step"] = hand_py.stat().st_size / n

    result: dict[str, Any] = {"shape": shape, "n": n, "repeat": repeat, "hand": hand}
    # pipegen's two forms of runtime components (targets.kfp.runtime_components): the default python form
    # (lightweight components, which kfp.local's SubprocessRunner runs), and the container form.
    for label, option in (("pipegen", ""), ("container", "runtime_components: container, ")):
        spec = case / label / f"{name}.yaml"
        spec.parent.mkdir()
        spec.write_text(spec_text(shape, n).replace("kfp: {base_image:", f"kfp: {{{option}base_image:"))
        gen_py, generate_s = generate(spec, case / label / "out")
        source = gen_py.read_text()
        top_level = imports_pipegen_at_top_level(source)
        gen_env = child_env(PYTHONPATH=str(ROOT / "src")) if top_level else env
        gen_ir = case / f"{label}.yaml"
        log(f"  {name}: pipegen-generated kfp compile ({label}) x{repeat} ...")
        gen: dict[str, object] = dict(measure_compile(gen_py, gen_ir, repeat, gen_env))
        # The container form's runtime steps read the run's date from kfp's placeholders: no context task.
        extra = {CONTEXT_TASK} if label == "pipegen" else set()
        # What kfp's compiler writes gives each task a copy of its component; `pipegen compile --ir` writes that
        # IR with the copies merged (targets.kfp.ir_share), the file a user uploads. Both are measured.
        gen["kfp_written"] = check_ir(gen_ir, n, extra)
        shared = case / f"{label}.shared.yaml"
        shared.write_text(shared_ir(gen_ir.read_text()))
        gen.update(check_ir(shared, n, extra))
        gen["py_bytes"] = gen_py.stat().st_size
        gen["py_bytes_per_step"] = gen_py.stat().st_size / n
        gen["pipegen_generate_s"] = generate_s
        gen["imports_pipegen_at_top_level"] = top_level
        gen["imports_pipegen_in_components"] = "from pipegen" in source or "import pipegen" in source
        result[label] = gen
    return result


def fmt_bytes(b: float) -> str:
    if b >= 1024 * 1024:
        return f"{b / 1024 / 1024:.2f}M"
    if b >= 1024:
        return f"{b / 1024:.1f}K"
    return f"{b:.0f}"


def table(results: dict[str, Any], cases: list[dict[str, Any]]) -> str:
    out = [
        f"python -c pass          {results['python_startup_s'] * 1000:8.0f} ms   (.venv-kfp interpreter start)",
        f"python -c 'import kfp'  {results['import_kfp_s'] * 1000:8.0f} ms   (best of {results['repeat']})",
        "",
        "kfp compile, whole process and the child's own phases (best of the repeats, ms); sizes in bytes",
    ]
    head = (
        f"{'shape':<7}{'n':>5} {'pipeline':<10}{'rep':>4}{'process':>9}{'import':>8}{'load':>8}{'compile':>9}"
        f"{'py':>9}{'py/step':>9}{'IR':>9}{'IR/step':>9}{'tasks':>6}{'comps':>6}  etcd"
    )
    out += [head, "-" * len(head)]
    for case in cases:
        for label in ("hand", "pipegen", "container"):
            r = case[label]
            out.append(
                f"{case['shape']:<7}{case['n']:>5} {label:<10}{case['repeat']:>4}"
                f"{r['process_s'] * 1000:>9.0f}{r['import_s'] * 1000:>8.0f}{r['load_s'] * 1000:>8.0f}"
                f"{r['compile_s'] * 1000:>9.0f}{fmt_bytes(r['py_bytes']):>9}{r['py_bytes_per_step']:>9.0f}"
                f"{fmt_bytes(r['ir_bytes']):>9}{r['ir_bytes_per_step']:>9.0f}{r['root_tasks']:>6}"
                f"{r['components']:>6}  {'fits' if r['ir_fits_etcd'] else 'TOO BIG'}"
            )
        out.append("")
    out.append("pipegen's IR as kfp's compiler writes it (a component copy per task), before `--ir` merges them")
    for case in cases:
        for label in ("pipegen", "container"):
            k = case[label]["kfp_written"]
            out.append(
                f"{case['shape']:<7}{case['n']:>5} {label:<10}{fmt_bytes(k['ir_bytes']):>9}"
                f"{k['ir_bytes_per_step']:>9.0f}{k['components']:>6}  {'fits' if k['ir_fits_etcd'] else 'TOO BIG'}"
            )
    out.append("")
    out.append("IR bytes by section (components / deploymentSpec / root / platforms)")
    for case in cases:
        parts = []
        for label in ("pipegen", "container", "hand"):
            s = case[label]["ir_sections"]
            keys = ("components", "deploymentSpec", "root", "platforms")
            parts.append(f"{label} " + " / ".join(fmt_bytes(s.get(k, 0)) for k in keys))
        out.append(f"{case['shape']:<7}{case['n']:>5}  " + "   ".join(parts))
    out.append("")
    gen_notes = {(c["shape"], c["n"]): c["pipegen"]["pipegen_generate_s"] for c in cases}
    out.append(
        "pipegen compile -t kfp (one run, ms): "
        + ", ".join(f"{s}-{n} {t * 1000:.0f}" for (s, n), t in gen_notes.items())
    )
    top = any(c["pipegen"]["imports_pipegen_at_top_level"] for c in cases)
    out.append(
        f"generated file imports pipegen at top level: {'yes (ran with ROOT/src on PYTHONPATH)' if top else 'no'}"
    )
    out.append(f"etcd limit: {ETCD_LIMIT} bytes (1.5 MiB)")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument(
        "--repeat", type=int, default=5, help=f"runs per measurement (at most {LARGE_REPEAT} for n >= {LARGE})"
    )
    parser.add_argument("--json", type=Path, default=None, help="also store the results here")
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    shapes = tuple(args.shapes.split(","))
    for shape in shapes:
        if shape not in SHAPES:
            parser.error(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")

    started = time.perf_counter()
    log("interpreter start and import kfp ...")
    results: dict[str, Any] = {
        "repeat": args.repeat,
        "kfp_version": subprocess.run(
            [python(KFP), "-c", "import kfp; print(kfp.__version__)"],
            check=True,
            capture_output=True,
            text=True,
            env=child_env(),
        ).stdout.strip(),
        "python_startup_s": time_command([python(KFP), "-c", "pass"], repeat=args.repeat),
        "import_kfp_s": time_command([python(KFP), "-c", "import kfp"], repeat=args.repeat),
        "etcd_limit_bytes": ETCD_LIMIT,
    }
    cases = []
    with tempfile.TemporaryDirectory(prefix="kfp_compile_") as tmp:
        for shape in shapes:
            for n in sizes:
                repeat = args.repeat if n < LARGE else max(1, min(args.repeat, LARGE_REPEAT))
                cases.append(run_case(shape, n, repeat, Path(tmp)))
    results["cases"] = cases
    results["total_s"] = time.perf_counter() - started

    log("")
    log(table(results, cases))
    log(f"total {results['total_s']:.0f} s")
    write_results(args.json, "kfp_compile", results)


if __name__ == "__main__":
    main()
