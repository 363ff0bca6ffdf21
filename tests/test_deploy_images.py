"""The runtime images (deploy/*.Dockerfile): hadolint passes them, and their install steps work.

No image can be built on these machines, so the runtime image's install step, deploy/install-runtime.sh (the very
script its RUN runs), is run here into a clean directory and the environment it makes is checked: the runtime
answers, what is installed is exactly pipegen-ml[runtime,aws,sql] at the lock's versions (plus kfp for the `kfp`
target), and a KFP lightweight component runs in the kfp environment without installing anything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from tests.cases import REPO

DEPLOY = REPO / "deploy"
DOCKERFILES = sorted(DEPLOY.glob("*.Dockerfile"))
HADOLINT = Path(sys.executable).with_name("hadolint")
LOCK = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
LOCKED = {p["name"]: p["version"] for p in LOCK["package"] if "version" in p}


def load_lambda_zip() -> ModuleType:
    """deploy/lambda_zip.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("pipegen_deploy_lambda_zip", DEPLOY / "lambda_zip.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def uv_env() -> dict[str, str]:
    """The environment the deploy scripts run in here: uv found as they find it, offline when the cache has it."""
    return {**os.environ, "UV": load_lambda_zip().uv_command()[0], "PYTHON": sys.executable}


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HADOLINT), str(path)], capture_output=True, text=True, check=False)


def test_the_deploy_dockerfiles_exist() -> None:
    assert [p.name for p in DOCKERFILES] == ["lambda.Dockerfile", "runtime.Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes_and_catches_a_regression(dockerfile: Path, tmp_path: Path) -> None:
    proc = hadolint(dockerfile)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The lint can fail: an unpinned pip install (DL3013) in the same file is reported.
    text = dockerfile.read_text(encoding="utf-8")
    broken = tmp_path / dockerfile.name
    broken.write_text(text.replace("uv==0.13.8", "uv"), encoding="utf-8")
    assert broken.read_text(encoding="utf-8") != text
    proc = hadolint(broken)
    assert proc.returncode != 0 and "DL3013" in proc.stdout, proc.stdout


def _stages(text: str) -> list[tuple[str, str]]:
    """(image, stage name) of every FROM line."""
    return re.findall(r"^FROM (\S+)(?: AS (\S+))?$", text, flags=re.M)


# The runtime image's final targets, each with the build stage whose environment it copies and what that stage's
# install step is given (deploy/install-runtime.sh's flags).
FINAL_TARGETS = {
    "kfp": ("build-kfp", "--kfp"),
    "spark-ray": ("build-spark-ray", "--spark-ray"),
    "kfp-spark-ray": ("build-kfp-spark-ray", "--kfp --spark-ray"),
    "runtime": ("build-runtime", ""),
}
SPARK_RAY_TARGETS = ("spark-ray", "kfp-spark-ray")


def _stage_texts(text: str) -> dict[str, str]:
    """Each named stage's lines (its FROM line first), by name."""
    parts = re.split(r"^(?=FROM )", text, flags=re.M)[1:]
    return {m.group(1): part for part in parts if (m := re.match(r"FROM \S+ AS (\S+)$", part, flags=re.M))}


def test_runtime_image_layout() -> None:
    text = (DEPLOY / "runtime.Dockerfile").read_text(encoding="utf-8")
    stages = _stages(text)
    # An exact Python 3.11 patch release on slim Debian; every other stage builds on it.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", stages[0][0]) and stages[0][1] == "base"
    assert all(image in {"base", "source", "java"} for image, _ in stages[1:])
    # The default target (the last stage) is the runtime; the others are the final images listed above.
    assert stages[-1][1] == "runtime" and {name for _, name in stages} >= set(FINAL_TARGETS)
    texts = _stage_texts(text)
    for target, (build, flags) in FINAL_TARGETS.items():
        final = texts[target]
        # Every final image ends as the unprivileged numeric user, and runs the installed environment first.
        assert re.search(r"^USER 10001:10001$", final, flags=re.M)
        assert "ENV PATH=/opt/pipegen/bin:$PATH" in final
        assert f"COPY --from={build} /opt/pipegen /opt/pipegen" in final and "uv" not in final.replace("UV", "")
        # The install steps are the script this test runs, with the target's flags.
        runs = re.findall(r"^RUN .*$", texts[build], flags=re.M)
        assert runs == [f"RUN deploy/install-runtime.sh /opt/pipegen{' ' if flags else ''}{flags}"], runs
    # The same uv as the Makefile.
    make_uv = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(encoding="utf-8"), flags=re.M)
    assert make_uv and f"uv=={make_uv.group(1)}" in text


def test_only_the_spark_ray_targets_have_java_17_and_the_header_names_them() -> None:
    text = (DEPLOY / "runtime.Dockerfile").read_text(encoding="utf-8")
    stages = dict((name, image) for image, name in _stages(text))
    # Java 17 (Spark 4 needs 17+) from the base's own Debian, in one stage the Spark/Ray targets build on.
    java = _stage_texts(text)["java"]
    assert stages["java"] == "base" and "apt-get install -y --no-install-recommends openjdk-17-jre-headless" in java
    assert "rm -rf /var/lib/apt/lists/*" in java and text.count("apt-get install") == 1
    assert {name: stages[name] for name in FINAL_TARGETS} == {
        "kfp": "base",
        "spark-ray": "java",
        "kfp-spark-ray": "java",
        "runtime": "base",
    }
    header = text.split("\nFROM ", 1)[0]
    for target in SPARK_RAY_TARGETS:
        assert f"--target {target} -t REGISTRY/pipegen-runtime-{target}:" in header
    assert "openjdk-17-jre-headless" in header and "[spark] and [ray] extras at uv.lock's versions" in header
    # The extras the script adds are the project's own.
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert {"spark", "ray"} <= set(extras)
    assert "--extra spark --extra ray" in (DEPLOY / "install-runtime.sh").read_text(encoding="utf-8")


def test_the_unpinned_jre_is_the_only_lint_exception(tmp_path: Path) -> None:
    """The JRE is not pinned (Debian keeps only its current security update): that one DL3008 is ignored, no more."""
    text = (DEPLOY / "runtime.Dockerfile").read_text(encoding="utf-8")
    assert re.findall(r"hadolint ignore=(\S+)", text) == ["DL3008"]
    broken = tmp_path / "runtime.Dockerfile"
    broken.write_text(text.replace("# hadolint ignore=DL3008\n", ""), encoding="utf-8")
    proc = hadolint(broken)
    assert proc.returncode != 0 and "DL3008" in proc.stdout, proc.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerignore_lets_through_exactly_what_copy_needs(dockerfile: Path) -> None:
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied |= {source.removeprefix("./").rstrip("/") for source in line.split()[1:-1]}
    assert copied == allowed
    assert ignore[1] == "*" and all((REPO / path).exists() for path in copied)


def _distributions(python: Path) -> dict[str, str]:
    """name -> version of every distribution installed in the environment of that interpreter."""
    script = (
        "import importlib.metadata as m, json, re; "
        "print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version for d in m.distributions()}))"
    )
    proc = subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True)
    found: dict[str, str] = json.loads(proc.stdout)
    return found


def _install(dest: Path, *flags: str) -> Path:
    proc = subprocess.run(
        ["sh", str(DEPLOY / "install-runtime.sh"), str(dest), *flags],
        cwd=REPO,
        env=uv_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dest / "bin" / "python"


def _export(*args: str) -> dict[str, str]:
    proc = subprocess.run(
        [uv_env()["UV"], "export", "--frozen", "--no-hashes", "--no-emit-project", "--quiet", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    pins = re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", proc.stdout, flags=re.M)
    return {name: version for name, version in pins}


RUNTIME_EXTRAS = ["--no-default-groups", "--extra", "runtime", "--extra", "aws", "--extra", "sql"]


def _pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", text, flags=re.M))


def _script_export(tmp_path: Path, *flags: str) -> dict[str, str]:
    """What deploy/install-runtime.sh would install with these flags: its `uv export`, run by the real uv and
    captured by a uv that then stops the script at its next step (`uv venv`, exit 97), so nothing is installed."""
    work = tmp_path / "_".join(["export", *flags]).replace("-", "")
    work.mkdir()
    capture = work / "requirements.txt"
    shim = work / "uv"
    shim.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/sh
            [ "$1" = export ] || exit 97
            {uv_env()["UV"]} "$@" || exit $?
            while [ $# -gt 0 ]; do
                [ "$1" = --output-file ] && cp "$2" {capture}
                shift
            done
            """
        ),
        encoding="utf-8",
    )
    shim.chmod(0o755)
    proc = subprocess.run(
        ["sh", str(DEPLOY / "install-runtime.sh"), str(work / "env"), *flags],
        cwd=REPO, env={**uv_env(), "UV": str(shim)}, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 97, proc.stdout + proc.stderr
    return _pins(capture.read_text(encoding="utf-8"))


def test_install_script_adds_spark_and_ray_only_when_asked(tmp_path: Path) -> None:
    """--spark-ray: the [spark] and [ray] extras at the lock's versions, the runtime's own versions unchanged; the
    default and --kfp environments have neither (the kfp group has them only for the tests)."""
    runtime = _script_export(tmp_path)
    spark_ray = _script_export(tmp_path, "--spark-ray")
    assert spark_ray == _export(*RUNTIME_EXTRAS, "--extra", "spark", "--extra", "ray")
    assert spark_ray["pyspark"] == LOCKED["pyspark"] and spark_ray["ray"] == LOCKED["ray"]
    assert {name: spark_ray.get(name) for name in runtime} == runtime
    kfp = _script_export(tmp_path, "--kfp")
    assert kfp["kfp"] == LOCKED["kfp"]
    for plain in (runtime, kfp):
        assert not {"pyspark", "py4j", "ray"} & set(plain)
    both = _script_export(tmp_path, "--spark-ray", "--kfp")
    assert both["kfp"] == LOCKED["kfp"] and both["pyspark"] == LOCKED["pyspark"] and both["ray"] == LOCKED["ray"]
    assert {name: both.get(name) for name in kfp} == kfp
    assert not {"mlflow", "moto", "kfp-kubernetes"} & set(both)
    bad = subprocess.run(
        ["sh", str(DEPLOY / "install-runtime.sh"), str(tmp_path / "bad"), "--spark"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "usage: deploy/install-runtime.sh DEST [--kfp] [--spark-ray]" in bad.stderr


@pytest.mark.xdist_group("deploy-images")
def test_install_script_makes_the_runtime_environment(tmp_path: Path) -> None:
    python = _install(tmp_path / "pipegen")
    installed = _distributions(python)
    # Exactly the lock's closure of pipegen-ml[runtime,aws,sql], at its versions, and this project from a wheel.
    assert installed.pop("pipegen-ml") == "0.1.0"
    assert installed == _export(*RUNTIME_EXTRAS)
    assert all(LOCKED[name] == version for name, version in installed.items())
    assert "mlflow" not in installed and "kfp" not in installed and "pip" not in installed
    proc = subprocess.run(
        [str(python), "-c", "import pipegen, json; print(json.dumps(pipegen.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(json.loads(proc.stdout)).is_relative_to(tmp_path / "pipegen")
    # The runtime's command answers, and an action runs (no server needed for run_date).
    help_text = subprocess.run([str(python), "-m", "pipegen.runtime", "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "start_run,gate,evaluate,promote,notify,step,run_date" in help_text.stdout
    args = json.dumps({"scheduled_time": "2026-03-08T03:00:00Z", "timezone": "America/New_York"})
    answer = subprocess.run([str(python), "-m", "pipegen.runtime", "run_date", args], capture_output=True, text=True)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout.splitlines()[-1]) == {"run_date": "2026-03-07"}


@pytest.mark.xdist_group("deploy-images")
def test_install_script_kfp_environment_runs_components_offline(tmp_path: Path) -> None:
    python = _install(tmp_path / "pipegen", "--kfp")
    installed = _distributions(python)
    assert installed.pop("pipegen-ml") == "0.1.0"
    assert installed["kfp"] == "2.17.0" and installed["mlflow-skinny"] == LOCKED["mlflow-skinny"]
    # The runtime's versions are the runtime image's: kfp only adds (and keeps pip, for components that install).
    runtime = _export(*RUNTIME_EXTRAS)
    assert {name: installed.get(name) for name in runtime} == runtime
    assert installed["pip"] == LOCKED["pip"]
    # Nor what the kfp group has only for the tests: Spark and Ray are the kfp-spark-ray target's (--spark-ray).
    assert not {"mlflow", "moto", "kfp-kubernetes", "pyspark", "py4j", "ray"} & set(installed)
    # Lightweight components run in this environment as KFP runs them (kfp.local: the component's own command,
    # this interpreter), with no package index: compiled with install_kfp_package=False there is no pip step at
    # all; with kfp's default the pip step finds kfp installed.
    script = textwrap.dedent(
        """
        import json, sys
        from kfp import compiler, dsl, local

        IMAGE = "registry.example.com/pipegen-runtime-kfp:0.1.0"

        @dsl.component(base_image=IMAGE, install_kfp_package=False)
        def run_date(when: str, zone: str) -> str:
            from pipegen.runtime.context import run_date
            return run_date(scheduled_time=when, timezone=zone)["run_date"]

        @dsl.component(base_image=IMAGE)
        def run_date_installing(when: str, zone: str) -> str:
            from pipegen.runtime.context import run_date
            return run_date(scheduled_time=when, timezone=zone)["run_date"]

        compiler.Compiler().compile(run_date, sys.argv[1])
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[2])
        outputs = [c(when="2026-03-08T03:00:00Z", zone="America/New_York").output for c in (run_date, run_date_installing)]
        print(json.dumps(outputs))
        """
    )
    compiled = tmp_path / "component.yaml"
    # A file, not -c: kfp reads the component's source with inspect.
    (tmp_path / "component.py").write_text(script, encoding="utf-8")
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull, "UV_OFFLINE": "1"}
    proc = subprocess.run(
        [str(python), "component.py", str(compiled), str(tmp_path / "root")],
        cwd=tmp_path,
        env=offline,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["2026-03-07", "2026-03-07"]
    assert "pip install" not in compiled.read_text(encoding="utf-8")
