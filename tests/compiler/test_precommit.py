"""The hooks in .pre-commit-hooks.yaml, run by pre-commit itself on a temporary repository that uses them.

pre-commit installs pipegen from a git copy of this checkout into its own virtualenv (pip, from the
package index), as it would for a user; the first test pays for that install, the others reuse it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cases import REPO

pytestmark = pytest.mark.xdist_group("pre-commit")

# What `pip install` of this project reads: the hook repository is a git copy of these.
PROJECT_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "src", "templates")
SPEC = "specs/pricing.yaml"


@dataclass
class Repo:
    """A user's repository with pipegen hooks configured."""

    path: Path
    env: dict[str, str]

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run git in the repository."""
        return subprocess.run(["git", *args], cwd=self.path, env=self.env, capture_output=True, text=True, check=False)

    def pre_commit(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run pre-commit (this environment's) in the repository."""
        exe = Path(sys.executable).parent / "pre-commit"
        return subprocess.run(
            [str(exe), *args], cwd=self.path, env=self.env, capture_output=True, text=True, check=False
        )

    def pipegen(self, *args: str) -> None:
        """Run this checkout's pipegen in the repository."""
        subprocess.run([sys.executable, "-m", "pipegen", *args], cwd=self.path, env=self.env, check=True)


def _git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    # HOME stays: pip, inside pre-commit's environment, reads the machine's index settings from it.
    env.update(
        PRE_COMMIT_HOME=str(home / "pre-commit-cache"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def _commit_all(path: Path, env: dict[str, str], message: str) -> str:
    """A new repository at path holding everything in it, committed; its commit id."""
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "--no-verify", "-m", message]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pre-commit cache for the module, so pipegen's hook environment is built once (per xdist worker)."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def hook_repo(home: Path) -> tuple[Path, str]:
    """A git repository holding this checkout's project files, as users' configs point at ours."""
    dest = home / "pipegen-hooks"
    dest.mkdir()
    for name in PROJECT_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)
    return dest, _commit_all(dest, _git_env(home), "pipegen")


@pytest.fixture
def repo(tmp_path: Path, home: Path, hook_repo: tuple[Path, str]) -> Repo:
    """A user's repository: one spec, its compiled outputs, and a config that uses both hooks."""
    hooks, rev = hook_repo
    user = Repo(tmp_path / "user", _git_env(home))
    (user.path / "specs").mkdir(parents=True)
    shutil.copy2(REPO / SPEC, user.path / SPEC)
    (user.path / "README.md").write_text("a pipeline repository\n", encoding="utf-8")
    (user.path / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hooks}\n    rev: {rev}\n    hooks:\n"
        "      - id: pipegen-validate\n"
        "      - id: pipegen-check\n"
        "        args: [specs, -t, all, -o, build]\n",
        encoding="utf-8",
    )
    user.pipegen("compile", "specs", "-t", "all", "-o", "build")
    _commit_all(user.path, user.env, "pipeline")
    return user


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def test_fresh_outputs_pass(repo: Repo) -> None:
    proc = repo.pre_commit("run", "--all-files")
    assert proc.returncode == 0, _output(proc)
    assert "pipegen validate" in proc.stdout
    assert "pipegen compile --check" in proc.stdout
    assert proc.stdout.count("Passed") == 2, proc.stdout


def test_stale_generated_file_fails_with_a_diff(repo: Repo) -> None:
    dag = repo.path / "build" / "airflow" / "pricing.py"
    text = dag.read_text(encoding="utf-8")
    assert "'retries': 2," in text
    dag.write_text(text.replace("'retries': 2,", "'retries': 20,"), encoding="utf-8")
    repo.git("add", "-A")
    proc = repo.pre_commit("run", "--all-files")
    assert proc.returncode == 1, _output(proc)
    assert "pipegen compile --check" in proc.stdout and "Failed" in proc.stdout
    assert "--- build/airflow/pricing.py\n+++ build/airflow/pricing.py\n" in proc.stdout, proc.stdout
    assert "\n-    'retries': 20,\n+    'retries': 2,\n" in proc.stdout
    assert "1 of 9 outputs are stale" in proc.stdout  # airflow 1, kfp 2, stepfunctions 3, prefect 2, argo 1


def test_spec_edited_without_recompiling_fails_the_commit(repo: Repo) -> None:
    """Installed as a git hook: `git commit` of a spec change whose outputs were not regenerated is refused."""
    assert repo.pre_commit("install").returncode == 0
    spec = repo.path / SPEC
    spec.write_text(spec.read_text(encoding="utf-8").replace('"@daily"', '"@hourly"'), encoding="utf-8")
    repo.git("add", SPEC)
    proc = repo.git("commit", "-m", "hourly")
    assert proc.returncode != 0, _output(proc)
    assert "@hourly" in _output(proc) and "outputs are stale" in _output(proc)
    # Regenerated, the same commit goes through.
    repo.pipegen("compile", "specs", "-t", "all", "-o", "build")
    repo.git("add", "-A")
    proc = repo.git("commit", "-m", "hourly")
    assert proc.returncode == 0, _output(proc)


def test_invalid_spec_fails_validate_with_its_location(repo: Repo) -> None:
    spec = repo.path / SPEC
    spec.write_text(spec.read_text(encoding="utf-8").replace("job_queue:", "job_queu:"), encoding="utf-8")
    repo.git("add", "-A")
    proc = repo.pre_commit("run", "pipegen-validate", "--all-files")
    assert proc.returncode == 1, _output(proc)
    assert f"{SPEC}:" in proc.stdout and "error[PG200]: unknown key 'job_queu'" in proc.stdout
