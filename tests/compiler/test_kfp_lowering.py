"""KFP lowering: user strings never become code, and never form `{{$...}}` placeholders in component source."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pipegen.targets.kfp import escaped_json
from tests.compiler.test_airflow_lowering import shape
from tests.conftest import CliResult
from tests.hostile import BENIGN, HOSTILE, spec_text

Cli = Callable[..., CliResult]
RUNTIME_IMAGE = "registry.example.com/ml/pipegen-runtime:0.1"
# kfp reads braces in an image as a placeholder (a located PG602): the container image is a plain one here.
IMAGE = "registry.example.com/feed/train:1"


def compile_kfp(cli: Cli, tmp_path: Path, text: str, name: str) -> str:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text + f"targets: {{kfp: {{base_image: {RUNTIME_IMAGE}}}}}\n", encoding="utf-8")
    result = cli("compile", str(spec), "-t", "kfp", "-o", str(tmp_path / name))
    assert result.code == 0, result.err
    return (tmp_path / name / "kfp" / "hostile.py").read_text(encoding="utf-8")


def test_hostile_strings_do_not_change_the_code(cli: Cli, tmp_path: Path) -> None:
    single_line = HOSTILE.replace("\n", " ")
    hostile_shape, constants = shape(
        compile_kfp(cli, tmp_path, spec_text(HOSTILE, param=single_line, image=IMAGE), "h")
    )
    benign_shape, _ = shape(compile_kfp(cli, tmp_path, spec_text(BENIGN, image=IMAGE), "b"))
    assert hostile_shape == benign_shape
    # Component sources embed step specs as JSON in which braces are escaped.
    for constant in constants:
        if constant.startswith("{") and "pipegen" not in constant:
            assert "{{" not in constant


@given(
    st.recursive(
        st.one_of(st.text(), st.integers(), st.booleans(), st.none()),
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
        max_leaves=10,
    )
)
def test_escaped_json_round_trips_without_double_braces(value: object) -> None:
    text = escaped_json(value)
    assert json.loads(text) == value
    assert not re.search(r"\{\{", text)


# Pieces, not characters: the workspace path must appear whole, next to braces and the marks' own characters.
_TEXT = st.lists(
    st.sampled_from(["{", "}", "/kfp-workspace", "/", "$", "a", "\\", '"', "\n", "\ue000", "\ue002", "é"]), max_size=6
).map("".join)


@given(
    st.recursive(
        st.one_of(_TEXT, st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.tuples(inner), st.dictionaries(_TEXT, inner, max_size=3)
        ),
        max_leaves=12,
    ),
    st.booleans(),
)
def test_escaped_json_in_one_pass_writes_what_it_writes_value_by_value(value: object, compact: bool) -> None:
    """The one-json.dumps path equals the reference, braces, workspace paths and private-use characters included."""
    from pipegen.targets.kfp.names import _escaped_json

    separators = (",", ":") if compact else (", ", ": ")
    assert escaped_json(value, compact) == _escaped_json(value, *separators)


def test_line_break_in_a_parameter_default_is_a_located_diagnostic(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "nl.yaml"
    spec.write_text(
        'pipegen: 1\nname: nl\nparams:\n  note: "a\\nb"\nsteps:\n  - {name: a, task: {command: [echo, "${params.note}"]}}\n'
    )
    result = cli("compile", str(spec), "-t", "kfp", "-o", str(tmp_path / "out"))
    assert result.code == 1
    assert (
        f"{spec}:4:9: error[PG602]: target 'kfp' cannot take a line break in the default of parameter 'note'"
        in result.err
    )


def test_an_env_reference_in_a_container_command_gets_an_env_hint(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "env.yaml"
    spec.write_text(
        "pipegen: 1\nname: env\nbackends:\n  pods: {type: kubernetes, image: img}\nsteps:\n"
        "  - name: job\n    task:\n      backend: pods\n"
        '      command: [aws, --region, "${env.AWS_REGION}", "${secret.token}"]\n'
        '      env: {REGION: "${env.AWS_REGION}"}\n'
    )
    result = cli("compile", str(spec), "-t", "kfp", "-o", str(tmp_path / "out"))
    assert result.code == 1
    lines = result.err.splitlines()
    assert (
        f"{spec}:9:32: error[PG602]: target 'kfp' cannot put ${{env.AWS_REGION}} in the command of container step "
        "'job'; hint: a container step's command cannot read AWS_REGION from an environment when the pipeline is "
        "compiled or submitted: let the program read $AWS_REGION from its own environment (the image's or the "
        "backend's `env`), or pass the value as a pipeline parameter, ${params.NAME}"
    ) in lines
    assert (
        f"{spec}:9:53: error[PG602]: target 'kfp' cannot put ${{secret.token}} in the command of container step "
        "'job'; hint: pass it as an environment variable whose whole value is ${secret.token} and let the program "
        "read that variable"
    ) in lines
    assert any("only as a whole secret environment value; hint: the container does not see" in line for line in lines)


def test_runtime_components_without_a_runtime_image_are_a_located_error(cli: Cli, tmp_path: Path) -> None:
    body = "pipegen: 1\nname: img\nsteps:\n  - name: ready\n    gate: {check: partition_exists, path: /data/x/}\n"
    spec = tmp_path / "img.yaml"
    spec.write_text(body)
    result = cli("compile", str(spec), "-t", "kfp", "-o", str(tmp_path / "out"))
    assert result.code == 1
    assert result.err.splitlines()[0] == (
        f"{spec}:4:5: error[PG604]: target 'kfp' needs targets.kfp.base_image: step 'ready' runs pipegen's runtime "
        "in a KFP component, and no public image has it; hint: build an image with pipegen-ml[runtime] "
        "installed and set targets: {kfp: {base_image: registry.example.com/ml/pipegen-runtime:0.1}} (your image's name)"
    )
    # With other KFP options and no image, the error points at them.
    spec.write_text(body + "targets:\n  kfp: {install_kfp_package: false}\n")
    result = cli("compile", str(spec), "-t", "kfp", "-o", str(tmp_path / "out"))
    assert result.err.startswith(f"{spec}:7:8: error[PG604]: target 'kfp' needs targets.kfp.base_image")
    spec.write_text(body + f"targets:\n  kfp: {{base_image: {RUNTIME_IMAGE}}}\n")
    assert cli("compile", str(spec), "-t", "kfp", "-o", str(tmp_path / "out")).code == 0
    assert f"BASE_IMAGE = '{RUNTIME_IMAGE}'" in (tmp_path / "out" / "kfp" / "img.py").read_text()


def test_container_only_pipelines_need_no_runtime_image(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "pods.yaml"
    spec.write_text(
        "pipegen: 1\nname: pods\nbackends:\n  k8s: {type: kubernetes, image: img}\n"
        "steps:\n  - {name: a, task: {backend: k8s, command: [echo, hi]}}\n"
    )
    assert cli("compile", str(spec), "-t", "kfp", "-o", str(tmp_path / "out")).code == 0
    assert "BASE_IMAGE" not in (tmp_path / "out" / "kfp" / "pods.py").read_text()


def test_a_tracking_uri_nothing_sets_in_the_pods_is_a_located_warning(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "uri.yaml"
    body = (
        "pipegen: 1\nname: uri\nmlflow: {tracking_uri: '${env.MLFLOW_URI}'}\nsteps:\n"
        "  - {name: train, train: {command: [python, t.py], metrics: [auc]}}\n"
        "  - {name: quality, evaluate: {run_of: train, thresholds: ['auc > 0.5']}}\n"
        f"targets:\n  kfp:\n    base_image: {RUNTIME_IMAGE}\n"
    )
    spec.write_text(body)
    result = cli("compile", str(spec), "-t", "kfp", "-o", str(tmp_path / "out"))
    assert result.code == 0
    assert result.err.splitlines()[0] == (
        f"{spec}:3:24: warning[PG702]: target 'kfp' sets nothing for MLFLOW_URI in the pods that talk to MLflow: "
        "the tracking URI is read from the pod's environment, and runs fail unless the runtime image sets it; hint: "
        "mount it from a Kubernetes secret or config map: targets: {kfp: {mlflow_secret: {name: mlflow, keys: "
        "[MLFLOW_URI]}}} (add the credentials' keys, e.g. MLFLOW_TRACKING_TOKEN)"
    )
    spec.write_text(body + "    mlflow_config_map: {name: mlflow, keys: [MLFLOW_URI]}\n")
    result = cli("compile", str(spec), "-t", "kfp", "-o", str(tmp_path / "out"))
    assert result.code == 0 and "warning" not in result.err
    module = (tmp_path / "out" / "kfp" / "uri.py").read_text()
    assert module.count("kubernetes.use_config_map_as_env(") == 3  # start_run, train, quality
    spec.write_text(body + "    mlflow_secret: {name: mlflow, keys: [MLFLOW-URI]}\n")
    result = cli("validate", str(spec))
    assert result.code == 1 and "'MLFLOW-URI' is not an environment variable name" in result.out
