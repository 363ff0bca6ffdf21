"""The docs hold: CI configurations pass their own schemas, and every pipegen command shown runs as shown."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from tests.cases import REPO, SPECS, UNSUPPORTED

DOCS = REPO / "docs"
BIN = Path(sys.executable).parent
# The documented CI files, by the path their first line names, and the schema check-jsonschema vendors for each.
CI_SCHEMAS = {".github/workflows/pipegen.yml": "vendor.github-workflows", ".gitlab-ci.yml": "vendor.gitlab-ci"}
# Examples that compile for every target (the demo trains on `local`, which Step Functions cannot run; feed-ranking
# on `kubernetes`, which Prefect does not run).
ALL_TARGET_SPECS = [s for s in SPECS if not any(stem == s.stem for stem, _ in UNSUPPORTED)]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# Until pipegen-ml is on the package index, the docs install it from its repository at the release tag
# (the placeholder the docs explain, the repository the pre-commit configuration names).
REPOSITORY = "https://github.com/your-org/pipegen"
INSTALL = re.compile(r"\b(?:uv\s+)?pip3?\s+install\b|\buv\s+(?:add|tool\s+install)\b|\bpipx\s+install\b")
# pip options whose value is the next word, not a requirement.
VALUED_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f"}
# Anything shaped like a requirement of a pipegen-something distribution with extras, in prose too.
EXTRAS_MENTION = re.compile(r"(?<![\w.-])(pipegen[\w.-]*)\[([^\]`]*)\]")


def _blocks(doc: Path, lang: str) -> list[str]:
    """The fenced code blocks of one language in a Markdown file."""
    return re.findall(rf"^```{lang}\n(.*?)^```$", doc.read_text(encoding="utf-8"), flags=re.M | re.S)


def _named_block(name: str) -> str:
    """The YAML block of docs/ci.md whose first line is `# <name>`."""
    found = [b for b in _blocks(DOCS / "ci.md", "yaml") if b.startswith(f"# {name}\n")]
    assert len(found) == 1, f"docs/ci.md should show {name} once"
    return found[0]


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", command], cwd=cwd, env=_env(), capture_output=True, text=True, check=False
    )


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    """A repository laid out as the docs assume: specs/ and the outputs compiled into build/."""
    (tmp_path / "specs").mkdir()
    for spec in ALL_TARGET_SPECS:
        shutil.copy2(spec, tmp_path / "specs" / spec.name)
    assert _run("pipegen compile specs --target all --output build", tmp_path).returncode == 0
    return tmp_path


def _check_jsonschema(schema: str, text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(CI_SCHEMAS))
def test_ci_configuration_passes_its_schema(name: str, tmp_path: Path) -> None:
    text = _named_block(name)
    proc = _check_jsonschema(CI_SCHEMAS[name], text, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The check can fail: a misspelt key in the same file is rejected.
    broken = text.replace("runs-on:", "run-on:") if "github" in name else text.replace("script:", "scripts:")
    assert broken != text
    assert _check_jsonschema(CI_SCHEMAS[name], broken, tmp_path).returncode != 0


def test_pre_commit_config_passes_pre_commit(tmp_path: Path) -> None:
    config = tmp_path / ".pre-commit-config.yaml"
    config.write_text(_named_block(".pre-commit-config.yaml"), encoding="utf-8")
    proc = subprocess.run(
        [str(BIN / "pre-commit"), "validate-config", str(config)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hooks = {h["id"] for h in yaml.safe_load(config.read_text(encoding="utf-8"))["repos"][0]["hooks"]}
    manifest = {h["id"] for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))}
    assert hooks == manifest == {"pipegen-validate", "pipegen-check"}


def test_hooks_manifest_passes_pre_commit() -> None:
    proc = subprocess.run(
        [str(BIN / "pre-commit"), "validate-manifest", str(REPO / ".pre-commit-hooks.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _ci_commands() -> list[str]:
    """The pipegen commands the documented CI jobs run, in order (installing pipegen is this test's job)."""
    workflow = yaml.safe_load(_named_block(".github/workflows/pipegen.yml"))
    gitlab = yaml.safe_load(_named_block(".gitlab-ci.yml"))
    commands = [step["run"] for step in workflow["jobs"]["pipegen"]["steps"] if "run" in step]
    commands += gitlab["pipegen"]["script"]
    return [c for c in commands if not c.startswith("pip install")]


def test_ci_commands_pass_on_fresh_outputs_and_fail_on_stale(user_repo: Path) -> None:
    commands = _ci_commands()
    assert any("--check" in c for c in commands) and any("--format sarif" in c for c in commands)
    for command in commands:
        proc = _run(command, user_repo)
        assert proc.returncode == 0, f"{command}: {proc.stdout}{proc.stderr}"
    sarif = json.loads((user_repo / "pipegen.sarif").read_text(encoding="utf-8"))
    assert sarif["version"] == "2.1.0"
    dag = user_repo / "build" / "airflow" / "pricing.py"
    dag.write_text(dag.read_text(encoding="utf-8") + "# edited by hand\n", encoding="utf-8")
    failed = [c for c in commands if _run(c, user_repo).returncode != 0]
    assert failed and all("--check" in c for c in failed)
    assert len(failed) == sum("--check" in c for c in commands)


def test_a_bad_spec_fails_the_ci_commands_with_annotations(user_repo: Path) -> None:
    spec = user_repo / "specs" / "pricing.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("job_queue:", "job_queu:"), encoding="utf-8")
    github = [c for c in _ci_commands() if "--format github" in c]
    assert len(github) == 2  # validate, and compile --check
    for command in github:
        proc = _run(command, user_repo)
        assert proc.returncode == 1
        assert "::error title=pipegen PG200,file=specs/pricing.yaml,line=" in proc.stdout + proc.stderr


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_shell_examples_run(doc: Path, user_repo: Path) -> None:
    """Every `pipegen ...` line in a sh block runs, in order, in a repository laid out as the docs assume."""
    (user_repo / "schema").mkdir()
    blocks = [block for block in _blocks(doc, "sh") if _place(block) == "repository"]
    lines = [line for block in blocks for line in block.splitlines() if line.startswith("pipegen ")]
    for line in lines:
        proc = _run(line, user_repo)
        assert proc.returncode == 0, f"{doc.name}: {line}: {proc.stdout}{proc.stderr}"


# A sh block's first line may say where it runs instead of the user's repository (docs/deploying.md).
CHECKOUT_MARK = "# in your pipegen checkout"
KFP_MARK = "# with kfp installed"
AIRFLOW_MARK = "# with Airflow installed"
NEEDS_MARK = "# needs "


def _place(block: str) -> str:
    """Where a sh block runs: the user's repository, a pipegen checkout, an environment with kfp, or elsewhere."""
    first = block.splitlines()[0] if block else ""
    if first == CHECKOUT_MARK:
        return "checkout"
    if first == KFP_MARK:
        return "kfp"
    if first.startswith(AIRFLOW_MARK):
        return "airflow"
    return "needs" if first.startswith(NEEDS_MARK) else "repository"


def test_editor_settings_and_modeline() -> None:
    settings = json.loads(_blocks(DOCS / "editor.md", "json")[0])
    assert settings["yaml.schemas"] == {"./schema/pipegen-v1.schema.json": ["specs/*.yaml", "specs/*.yml"]}
    modeline = _blocks(DOCS / "editor.md", "yaml")[0].splitlines()[0]
    assert modeline == "# yaml-language-server: $schema=../schema/pipegen-v1.schema.json"
    # The repository's own specs use the same line.
    for spec in SPECS:
        assert spec.read_text(encoding="utf-8").splitlines()[0] == modeline, spec.name


def test_links_between_docs_resolve() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for doc in sorted(DOCS.glob("*.md")):
        assert f"docs/{doc.name}" in readme, f"README.md does not link docs/{doc.name}"
    for source in [REPO / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", source.read_text(encoding="utf-8")):
            assert (source.parent / target).exists(), f"{source.name} links to missing {target}"


def _code(text: str) -> list[str]:
    """The lines of fenced code blocks and the inline code spans of a Markdown text."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```$", text, flags=re.M | re.S)
    prose = re.sub(r"^```[^\n]*\n.*?^```$", "", text, flags=re.M | re.S)
    return [line for block in blocks for line in block.splitlines()] + re.findall(r"`([^`\n]+)`", prose)


def _install_requirements(text: str) -> list[str]:
    """What every install command (pip, uv, pipx) in the code of a Markdown text installs."""
    found: list[str] = []
    for code in _code(text):
        for match in INSTALL.finditer(code):
            words = shlex.split(code[match.end() :].split(" #")[0].split("&&")[0])
            skip = False
            for word in words:
                if skip or word.startswith("-"):
                    skip = word in VALUED_OPTIONS
                    continue
                found.append(word)
    return found


def _markdown() -> list[Path]:
    return sorted([*REPO.glob("*.md"), *DOCS.glob("*.md")])


def test_distribution_name_is_not_the_unrelated_pipegen() -> None:
    """`pipegen` on the package index is another project ("CodePipeline Generator"): never ours."""
    assert canonicalize_name(PROJECT["name"]) != "pipegen"
    assert "pipegen" in PROJECT["scripts"], "the command keeps its name"


def test_every_install_line_installs_this_project() -> None:
    """Each install command in README.md and docs/ names pipegen-ml, from the repository at this version's tag."""
    declared = set(PROJECT["optional-dependencies"])
    seen = 0
    for doc in _markdown():
        for word in _install_requirements(doc.read_text(encoding="utf-8")):
            seen += 1
            try:
                req = Requirement(word)
            except InvalidRequirement as exc:
                raise AssertionError(f"{doc.name}: {word!r} is not a requirement of this project") from exc
            assert canonicalize_name(req.name) == canonicalize_name(PROJECT["name"]), f"{doc.name}: {word}"
            assert req.url == f"git+{REPOSITORY}@v{PROJECT['version']}", f"{doc.name}: {word}"
            assert req.extras <= declared, f"{doc.name}: {word}: no extra {sorted(req.extras - declared)}"
    # README (workers, Lambda), docs/ci.md (GitHub, GitLab) at least: the check cannot pass on nothing.
    assert seen >= 5


def test_extras_are_named_on_this_distribution() -> None:
    """`pipegen[runtime]` in prose would send readers to the unrelated project; extras must exist."""
    declared = set(PROJECT["optional-dependencies"])
    # The example specs' comments and the starters `pipegen init` writes are read as docs too.
    texts = [*_markdown(), *sorted(REPO.glob("specs/*.yaml")), *sorted(REPO.glob("templates/init/**/*.j2"))]
    mentions = [(doc.name, m) for doc in texts for m in EXTRAS_MENTION.findall(doc.read_text(encoding="utf-8"))]
    assert mentions
    for doc, (name, extras) in mentions:
        assert name == PROJECT["name"], f"{doc}: {name}[{extras}]"
        assert {e.strip() for e in extras.split(",")} <= declared, f"{doc}: {name}[{extras}]"


# ---- docs/deploying.md: every block runs where it says, or says what it needs --------------------------------

DEPLOYING = DOCS / "deploying.md"
# What a pipegen checkout needs for the deploy kit's commands (the Docker build context's files, and deploy/).
CHECKOUT_FILES = ("pyproject.toml", "uv.lock", "README.md", "src", "templates", "deploy")


def _fenced(doc: Path) -> list[tuple[str, str]]:
    """(language, text) of every fenced block of a Markdown file."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", doc.read_text(encoding="utf-8"), flags=re.M | re.S)


def _commands(block: str) -> list[str]:
    """The commands of a sh block: comment lines dropped, backslash continuations joined."""
    text = re.sub(r"\\\n\s*", "", block)
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_deploying_covers_every_target_and_marks_what_needs_a_cluster() -> None:
    text = DEPLOYING.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    for target in ("Airflow", "Kubeflow Pipelines", "Argo Workflows", "AWS Step Functions", "Prefect"):
        assert any(h.startswith(target) for h in headings), target
    # The Step Functions section deploys the generated CloudFormation template, which the tests lint and deploy.
    assert "pricing.template.json" in text and "tests/stepfunctions/test_template_deploy.py" in text
    places = {"repository": 0, "checkout": 0, "kfp": 0, "airflow": 0, "needs": 0}
    for block in _blocks(DEPLOYING, "sh"):
        place = _place(block)
        places[place] += 1
        if place == "repository":
            # Run by test_shell_examples_run, which runs pipegen lines only: nothing else may hide there.
            assert all(c.startswith("pipegen ") for c in _commands(block)), block
        if place == "needs":
            # Nothing the tests could run hides behind a "needs" mark.
            assert not any(c.startswith("pipegen ") for c in _commands(block)), block
    assert all(places.values()), places


def test_deploying_checkout_commands_run(tmp_path: Path) -> None:
    """The deploy kit's commands run, in order, in a pipegen checkout (a copy of what they read)."""
    from tests.test_deploy_images import uv_env

    checkout = tmp_path / "pipegen"
    checkout.mkdir()
    for name in CHECKOUT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, checkout / name)
    commands = [c for b in _blocks(DEPLOYING, "sh") if _place(b) == "checkout" for c in _commands(b)]
    assert any("lambda_zip.py" in c for c in commands) and any("install-runtime.sh" in c for c in commands)
    env = {**_env(), "UV": uv_env()["UV"]}
    printed = ""
    for command in commands:
        proc = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", command], cwd=checkout, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, f"{command}: {proc.stdout}{proc.stderr}"
        printed += proc.stdout
    assert (checkout / "build" / "lambda" / "pipegen-runtime.zip").exists()
    # The sizes the page states are the build's, to within a tenth.
    built = re.search(r"unzipped ([\d.]+) MB \(limit 250.0 MB\), zipped ([\d.]+) MB", printed)
    stated = re.search(r"about (\d+) MB unzipped \(the limit is 250 MB\) and (\d+) MB zipped", _prose(DEPLOYING))
    assert built and stated
    for measured, claimed in zip(built.groups(), stated.groups(), strict=True):
        assert abs(float(measured) - float(claimed)) <= float(claimed) / 10, (measured, claimed)


def _prose(doc: Path) -> str:
    """The text outside fenced blocks, lines joined."""
    text = re.sub(r"^```[^\n]*\n.*?^```$", "", doc.read_text(encoding="utf-8"), flags=re.M | re.S)
    return re.sub(r"\s*\n\s*", " ", text)


def test_deploying_kfp_commands_run(user_repo: Path) -> None:
    """`--ir` needs kfp beside pipegen: the kfp environment (made as `make test-kfp` makes it) runs them."""
    made = subprocess.run(["make", "-s", "env-kfp"], cwd=REPO, capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stdout + made.stderr
    kfp_bin = REPO / ".venv-kfp" / "bin"
    env = {**os.environ, "PATH": f"{kfp_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    commands = [c for b in _blocks(DEPLOYING, "sh") if _place(b) == "kfp" for c in _commands(b)]
    assert commands
    for command in commands:
        proc = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", command], cwd=user_repo, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, f"{command}: {proc.stdout}{proc.stderr}"
    ir = next(yaml.safe_load_all((user_repo / "build" / "kfp" / "pricing.yaml").read_text(encoding="utf-8")))
    assert ir["pipelineInfo"]["name"] == "pricing"


def test_deploying_airflow_commands_run(user_repo: Path, tmp_path: Path) -> None:
    """The DAG is imported, serialized and its first run queued by Airflow's own CLI (the airflow environment)."""
    made = subprocess.run(["make", "-s", "env-airflow"], cwd=REPO, capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stdout + made.stderr
    airflow_bin = REPO / ".venv-airflow" / "bin"
    home = tmp_path / "airflow"
    env = {
        **os.environ,
        "PATH": f"{airflow_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    # What the block's first line says is done: a migrated database.
    migrated = subprocess.run(["airflow", "db", "migrate"], env=env, capture_output=True, text=True, check=False)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    commands = [c for b in _blocks(DEPLOYING, "sh") if _place(b) == "airflow" for c in _commands(b)]
    assert any("list-import-errors" in c for c in commands) and any("trigger" in c for c in commands)
    printed = ""
    for command in commands:
        proc = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", command], cwd=user_repo, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, f"{command}: {proc.stdout}{proc.stderr}"
        printed = proc.stdout
    # The last command queued the first run.
    assert re.search(r"\| pricing +\| manual__", printed) and "queued" in printed, printed


def test_deploying_requirement_files_match_the_lock() -> None:
    """Each requirements.txt shown admits the versions the tests run, and installs this project at its tag."""
    locked = {
        canonicalize_name(p["name"]): p["version"]
        for p in tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))["package"]
        if "version" in p
    }
    files = [text for lang, text in _fenced(DEPLOYING) if lang == "text" and text.startswith("# requirements.txt")]
    assert len(files) == 2  # Airflow, Prefect
    for text in files:
        requirements = [Requirement(line) for line in text.splitlines()[1:]]
        ours = [r for r in requirements if r.url]
        assert [r.name for r in ours] == [PROJECT["name"]] and ours[0].url == f"git+{REPOSITORY}@v{PROJECT['version']}"
        assert ours[0].extras == {"runtime", "aws", "sql"}
        for req in requirements:
            if not req.url:
                assert req.specifier.contains(locked[canonicalize_name(req.name)]), (req, locked[req.name])


def test_deploying_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    (dockerfile,) = [text for lang, text in _fenced(DEPLOYING) if lang == "dockerfile"]
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile, encoding="utf-8")
    proc = subprocess.run([str(BIN / "hadolint"), str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deploying_spec_options_validate(tmp_path: Path) -> None:
    """The `targets:` snippets are options pipegen accepts: put into the example spec, it still compiles."""
    snippets = [yaml.safe_load(t) for lang, t in _fenced(DEPLOYING) if lang == "yaml" and t.startswith("targets:")]
    assert {target for s in snippets for target in s["targets"]} == {"kfp", "argo"}
    spec = yaml.safe_load((REPO / "specs" / "pricing.yaml").read_text(encoding="utf-8"))
    for snippet in snippets:
        spec["targets"].update(snippet["targets"])
    path = tmp_path / "pricing.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    proc = _run(f"pipegen compile {path} --target kfp,argo --output {tmp_path / 'build'}", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    argo = (tmp_path / "build" / "argo" / "pricing.yaml").read_text(encoding="utf-8")
    assert "serviceAccountName: pipegen-workflow" in argo and "namespace: ml-training" in argo


def test_deploying_rbac_grants_what_the_targets_need() -> None:
    """The Roles shown are bound to the accounts they name; Argo's grants what the manifest header asks."""
    documents = [
        d
        for lang, text in _fenced(DEPLOYING)
        if lang == "yaml" and not text.startswith("targets:")
        for d in yaml.safe_load_all(text)
    ]
    roles = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Role"}
    bindings = [d for d in documents if d["kind"] == "RoleBinding"]
    assert roles and len(bindings) == len(roles)
    for binding in bindings:
        role = roles[binding["roleRef"]["name"]]
        assert role["metadata"]["namespace"] == binding["metadata"]["namespace"]
    argo_rule = {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
    assert roles["pipegen-workflow"]["rules"] == [argo_rule]
    header = (REPO / "golden" / "argo" / "pricing.yaml").read_text(encoding="utf-8")
    assert "rules: [{apiGroups: [argoproj.io], resources: [workflowtaskresults], verbs: [create, patch]}]" in header
    accounts = {d["metadata"]["name"] for d in documents if d["kind"] == "ServiceAccount"}
    assert "pipegen-workflow" in accounts
