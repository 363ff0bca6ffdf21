"""Argo at scale: bytes per step of the WorkflowTemplate and of a running Workflow, pipegen's and hand-written.

    .venv/bin/python -m benchmarks.argo_size [--sizes 10,100,1000] [--shapes chain,fanout] [--json FILE]

For each synthetic spec: the WorkflowTemplate pipegen writes (as the API server stores it: compact JSON) and
the one an Argo user would write by hand (benchmarks/synth.argo_template); for each, a finished run's Workflow
object estimated node by node (pipegen.targets.argo.size, validated against Argo 4's strict API models from
hera): status.nodes, the whole object, and the object as Argo's controller stores it (nodes gzipped once it
passes 1 MiB). By bisection over the step count: where the template passes 1.5 MiB (etcd refuses the object)
and where the Workflow passes 1 MiB, uncompressed and as Argo stores it (past that, Argo fails the run; pipegen
refuses the spec before, PG610).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import write_results
from benchmarks.synth import SHAPES, SIZES, argo_template, write_specs
from pipegen.compiler import compile_checked
from pipegen.frontend import check_file
from pipegen.resolve import resolve
from pipegen.targets.argo import TARGET
from pipegen.targets.argo.lowering import Lowering
from pipegen.targets.argo.options import ArgoOptions
from pipegen.targets.argo.size import (
    MAX_OBJECT_BYTES,
    MAX_WORKFLOW_BYTES,
    estimated_workflow,
    json_bytes,
    workflow_sizes,
)
from tests.argo.strict import validate_document


def measure(template: dict[str, Any]) -> dict[str, int]:
    """Template and Workflow bytes of one WorkflowTemplate (its estimated run checked against Argo's models)."""
    validate_document(template)
    validate_document(estimated_workflow(template))
    return {"template": json_bytes(template), **workflow_sizes(template)}


def pipegen_template(spec: Path) -> tuple[dict[str, Any], bool]:
    """The WorkflowTemplate pipegen lowers spec to, and whether pipegen compiles the spec (else PG610)."""
    checked = check_file(str(spec))
    result = compile_checked(checked, ["argo"])
    # Past Argo's limits pipegen refuses the spec (PG610): the figures are what it would have written.
    assert result.ok or [d.code for d in result.diagnostics] == ["PG610"], result.diagnostics
    assert checked.spec is not None
    options = TARGET.options_model.model_validate(checked.spec.targets.get("argo", {}))
    assert isinstance(options, ArgoOptions)
    return Lowering(resolve(checked, str(spec)), options).documents()[0], result.ok


def first_over(size: Callable[[int], int], cap: int, lo: int, hi: int) -> int:
    """The least step count (to within 1%) whose size passes cap, by bisection (size grows with the count)."""
    while size(hi) <= cap:
        lo, hi = hi, hi * 2
    while hi - lo > max(1, lo // 100):
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if size(mid) <= cap else (lo, mid)
    return hi


def limits(shape: str, tmp: Path) -> list[dict[str, Any]]:
    """Where each way passes each limit: the template 1.5 MiB, the Workflow 1 MiB as Argo stores it."""

    def pipegen(n: int) -> dict[str, Any]:
        [spec] = write_specs(tmp / f"limit-{n}", (shape,), (n,))
        return pipegen_template(spec)[0]

    out = []
    for way, make in (("pipegen", pipegen), ("hand", lambda n: argo_template(shape, n))):
        out.append(
            {
                "way": way,
                "shape": shape,
                "template_steps_at_1_5_mib": first_over(
                    lambda n, make=make: json_bytes(make(n)), MAX_OBJECT_BYTES, 100, 1000
                ),
                "stored_workflow_steps_at_1_mib": first_over(
                    lambda n, make=make: workflow_sizes(make(n))["stored"], MAX_WORKFLOW_BYTES, 100, 1000
                ),
                "uncompressed_workflow_steps_at_1_mib": first_over(
                    lambda n, make=make: workflow_sizes(make(n))["workflow"], MAX_WORKFLOW_BYTES, 100, 1000
                ),
            }
        )
        print(out[-1], file=sys.stderr)
    return out


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in write_specs(Path(tmp), tuple(args.shapes.split(",")), sizes):
            shape, n = spec.stem.split("-")[1], int(spec.stem.split("-")[2])
            template, compiles = pipegen_template(spec)
            for way, doc in (("pipegen", template), ("hand", argo_template(shape, n))):
                sizes_ = measure(doc)
                row = {"way": way, "shape": shape, "n": n, **sizes_, "pipegen_compiles": compiles}
                row |= {f"{k}_per_step": round(v / n) for k, v in sizes_.items()}
                rows.append(row)
                print(f"{way:7} {shape:6} {n:5} {row}", file=sys.stderr)
        found = [x for shape in args.shapes.split(",") for x in limits(shape, Path(tmp))]
    write_results(args.json, "argo_size", {"rows": rows, "limits": found})


if __name__ == "__main__":
    main()
