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
# Prefect runs no kubernetes step (tests/compiler/test_prefect.py checks the message).
UNSUPPORTED = {("demo", "stepfunctions"), ("feed-ranking", "prefect")}
# Specs under tests/specs with goldens for the targets that map all their steps (Spark and Ray are not on every
# target): spec -> targets. Their prefect.yaml stays out: golden/prefect/prefect.yaml is the one specs/ compile to.
TEST_SPECS = {REPO / "tests" / "specs" / "sparkray.yaml": ("kfp", "prefect")}


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
    goldens = {o.path: o.text for o in combine_outputs(outputs, list(available()))}
    for spec, targets in TEST_SPECS.items():
        result = compile_checked(check_file(rel(spec)), list(targets))
        assert result.ok, [d.format() for d in result.diagnostics]
        goldens |= {o.path: o.text for o in result.outputs if o.path != "prefect/prefect.yaml"}
    return dict(sorted(goldens.items()))
