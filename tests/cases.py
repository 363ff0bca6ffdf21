"""The golden cases, shared by the tests and by `make golden` (tests/regen.py)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPECS = sorted((REPO / "specs").glob("*.yaml"))
INVALID = sorted((REPO / "tests" / "invalid").glob("*.yaml"))
GOLDEN = REPO / "golden"
SCHEMA = REPO / "schema" / "pipegen-v1.schema.json"
# The support matrix in the docs is `pipegen targets --format markdown`, regenerated with the goldens.
SUPPORT_DOC = REPO / "docs" / "targets.md"
REGEN_COMMAND = "make golden"
# (spec stem, target) pairs a target rejects with a located diagnostic instead of output:
# Step Functions has no `local` backend (tests/compiler/test_stepfunctions_lowering.py checks the message).
# Spark on EMR/EMR Serverless/EMR on EKS/Glue (clicks) runs on every target; Spark on the Spark Operator and Ray on
# KubeRay (spark-ray-k8s) on all but Prefect and Step Functions (each one's PG602 names what it runs). Every target
# runs multi-node steps (feed-ranking-16gpu); their Kubernetes objects are goldens under golden/k8s/.
UNSUPPORTED = {("demo", "stepfunctions")}
UNSUPPORTED |= {("spark-ray-k8s", t) for t in ("prefect", "stepfunctions")}
# Test specs whose goldens sit beside the examples', each compiled alone for the targets named (their backends
# are not every target's): Spark on spark-submit and Ray (run for real by the Airflow, KFP and Prefect tests),
# and Spark on each managed AWS platform. Their prefect.yaml stays out: golden/prefect/prefect.yaml is the one
# specs/ compile to.
TARGETED_SPECS = {
    REPO / "tests" / "specs" / "sparkray.yaml": ("airflow", "argo", "kfp", "prefect"),
    REPO / "tests" / "specs" / "spark-platforms.yaml": ("airflow",),
    REPO / "tests" / "specs" / "multinode-runtimes.yaml": ("airflow",),
    # The 16-node example with its nodes on SageMaker and on AWS Batch (one `distributed.nodes` for each).
    REPO / "tests" / "specs" / "feed-ranking-16gpu-sagemaker.yaml": ("stepfunctions",),
    REPO / "tests" / "specs" / "feed-ranking-16gpu-batch.yaml": ("stepfunctions",),
}


def targets_for(spec: Path) -> list[str]:
    """The targets an example spec compiles for."""
    from pipegen.targets import available

    return [t for t in available() if (spec.stem, t) not in UNSUPPORTED]


def support_doc_text() -> str:
    """What docs/targets.md must hold."""
    from pipegen.matrix import support_markdown
    from pipegen.targets import available

    return support_markdown(available())


def rel(path: Path) -> str:
    """A path relative to the repository root, as the goldens record it."""
    return path.relative_to(REPO).as_posix()


def expected_path(spec: Path) -> Path:
    """Where the expected diagnostics of an invalid spec live."""
    return spec.with_suffix(".expected")


def diagnostics_text(spec: Path) -> str:
    """What `pipegen validate` prints for a spec, run from the repository root."""
    from pipegen.diagnostics import render_text
    from pipegen.frontend import check_file

    return render_text(check_file(rel(spec)).diagnostics)


def compiled_goldens() -> dict[str, str]:
    """Every example spec compiled for every target: relative path under golden/ -> text."""
    from pipegen.compiler import combine_outputs, compile_checked
    from pipegen.frontend import check_file
    from pipegen.targets import available

    outputs = []
    for spec in SPECS:
        result = compile_checked(check_file(rel(spec)), targets_for(spec))
        assert result.ok, [d.format() for d in result.diagnostics]
        outputs.extend(result.outputs)
    # As `pipegen compile specs/ -t all` writes them: files several specs share (prefect.yaml) merged.
    files = {o.path: o.text for o in combine_outputs(outputs, list(available()))}
    for spec, targets in TARGETED_SPECS.items():
        result = compile_checked(check_file(rel(spec)), list(targets))
        assert result.ok, [d.format() for d in result.diagnostics]
        files |= {o.path: o.text for o in result.outputs if o.path != "prefect/prefect.yaml"}
    return dict(sorted({**files, **k8s_goldens()}.items()))


def k8s_goldens() -> dict[str, str]:
    """The Kubernetes objects of every distributed step on a kubernetes backend, for each distributed_runtime:
    golden/k8s/<spec>/<step>.<runtime>.yaml (pipegen.k8s.distributed, from the spec text as written)."""
    import dataclasses

    import yaml

    from pipegen.frontend import check_file
    from pipegen.k8s.distributed import node_plan, objects, spec_container
    from pipegen.resolve import resolve
    from pipegen.spec import DISTRIBUTED_RUNTIMES, KubernetesBackend

    out = {}
    for spec in SPECS:
        pipeline = resolve(check_file(rel(spec)))
        for step in pipeline.steps:
            if not isinstance(step.backend, KubernetesBackend) or step.body.distributed is None:
                continue
            for runtime in DISTRIBUTED_RUNTIMES:
                plan = dataclasses.replace(node_plan(pipeline, step), runtime=runtime)
                docs = objects(plan, spec_container(pipeline, step))
                text = yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=120)
                out[f"k8s/{spec.stem}/{step.name}.{runtime}.yaml"] = text
    return out
