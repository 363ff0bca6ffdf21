"""A submitted parameter in a kubernetes step's own command and env reaches the container as submitted: the
kubelet expands `$(VAR)` in args and env values (issue 19), so the manifest doubles every '$' of the value."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.argo.executor import Run, run_task
from tests.argo.lint import lint_manifest
from tests.argo.strict import documents, validate_document
from tests.conftest import CliResult

Cli = Callable[..., CliResult]
# FEATURE_DIR is a variable of the step's own env (it could be a secret on a real cluster): `$(FEATURE_DIR)` in a submitted
# value would hand it to the command if the value reached the kubelet as written.
VALUE = "$(FEATURE_DIR) $(HOME) $$x $$(y) $"
WRITE = "import json, os, sys; open(os.environ['ARGV_FILE'], 'w').write(json.dumps([sys.argv[1:], os.environ['NOTE']]))"


def test_a_submitted_value_reaches_a_kubernetes_container_unexpanded(cli: Cli, tmp_path: Path) -> None:
    argv_file = tmp_path / "argv.json"
    spec = {
        "pipegen": 1,
        "name": "kubelet-params",
        "params": {"note": "plain", "epochs": 3},
        "backends": {
            "k8s": {
                "type": "kubernetes",
                "image": "python:3.11-slim",
                "namespace": "ml",
                "env": {"ARGV_FILE": str(argv_file), "FEATURE_DIR": "/data/features", "NOTE": "${params.note}"},
            }
        },
        "steps": [
            {
                "name": "prep",
                "task": {"backend": "k8s", "command": ["python", "-c", WRITE, "${params.note}", "${params.epochs}"]},
            }
        ],
        "targets": {"argo": {"runtime_image": "registry.example.com/ml/pipegen-runtime:0.1"}},
    }
    path = tmp_path / "kubelet-params.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")
    result = cli("compile", str(path), "-t", "argo", "-o", str(tmp_path / "out"))
    assert result.code == 0, result.err
    docs = documents((tmp_path / "out" / "argo" / "kubelet-params.yaml").read_text(encoding="utf-8"))
    for doc in docs:
        validate_document(doc)
    assert lint_manifest(docs) == []
    template = docs[0]
    templates = {t["name"]: t for t in template["spec"]["templates"]}
    task = next(t for tm in templates.values() for t in tm.get("dag", {}).get("tasks", []) if t["name"] == "prep")
    run = Run({"note": VALUE, "epochs": "$(FEATURE_DIR)"})
    work = tmp_path / "work"
    work.mkdir()
    assert run_task(run, task, templates, work) == 0, run.logs
    argv, note = json.loads(argv_file.read_text(encoding="utf-8"))
    assert argv == [VALUE, "$(FEATURE_DIR)"]
    assert note == VALUE
