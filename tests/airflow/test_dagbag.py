"""Every golden DAG loads in a real Airflow 3.3 DagBag with no import errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cases import GOLDEN


def test_golden_dags_load(dags_folder: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    files = sorted((GOLDEN / "airflow").glob("*.py"))
    assert files
    for path in files:
        shutil.copy(path, dags_folder / path.name)
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(p.stem for p in files)
    feed = bag.dags["feed-ranking"]
    assert [t.task_id for t in feed.topological_sort()] == [
        "engagement_ready",
        "pipegen_start_run_train",
        "train",
        "quality",
        "promote",
    ]
    train = feed.get_task("train")
    assert type(train).__name__ == "KubernetesPodOperator"
    assert train.retries == 3 and train.retry_exponential_backoff == 2.0
    sensor = feed.get_task("engagement_ready")
    assert sensor.mode == "reschedule" and sensor.poke_interval == 600 and sensor.timeout == 21600
    assert type(bag.dags["pricing"].get_task("train")).__name__ == "BatchOperator"
    assert feed.schedule == "0 2 * * *" if hasattr(feed, "schedule") else True


def test_dag_files_import_only_airflow_at_top_level() -> None:
    """The DAG processor re-parses these files constantly: mlflow and pipegen load only inside tasks.

    boto3 is checked only where no amazon provider operator is used (the provider imports it itself).
    One process runs every file in turn and reports what each added: the files without the amazon provider
    first, so that boto3 loaded by a provider file cannot hide (or be blamed on) another file.
    """
    import subprocess
    import sys

    probe = (
        "import json, runpy, sys\n"
        "watched = {'mlflow', 'boto3', 'pipegen', 'sklearn'}\n"
        "added = {}\n"
        "for path in sys.argv[1:]:\n"
        "    before = {m.split('.')[0] for m in sys.modules} & watched\n"
        "    runpy.run_path(path)\n"
        "    added[path] = sorted(({m.split('.')[0] for m in sys.modules} & watched) - before)\n"
        "print(json.dumps(added))\n"
    )
    amazon = {p: "airflow.providers.amazon" in p.read_text() for p in (GOLDEN / "airflow").glob("*.py")}
    files = sorted(amazon, key=lambda p: (amazon[p], p))
    assert files
    proc = subprocess.run([sys.executable, "-c", probe, *map(str, files)], capture_output=True, text=True, check=True)
    added = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(added) == sorted(map(str, files))
    for path in files:
        loaded = set(added[str(path)])
        if amazon[path]:
            loaded.discard("boto3")
        assert loaded == set(), f"{path.name} imports {sorted(loaded)} at module level"


def test_a_dag_of_jobs_only_loads_without_the_task_decorator(dags_folder: Path) -> None:
    """`task` is imported only when a runtime task uses it (its first use costs every forked parse)."""
    from airflow.dag_processing.dagbag import DagBag

    from benchmarks.synth import spec_text
    from pipegen.compiler import compile_checked
    from pipegen.frontend import check_source
    from pipegen.loader import Source

    result = compile_checked(check_source(Source("synth.yaml", spec_text("fanout", 25))), ["airflow"])
    assert result.ok, [d.format() for d in result.diagnostics]
    text = result.outputs[0].text
    assert "from airflow.sdk import DAG, Param\n" in text
    (dags_folder / "synth.py").write_text(text, encoding="utf-8")
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    dag = bag.dags["synth-fanout-25"]
    assert len(dag.tasks) == 25
    assert dag.get_task("s11").upstream_task_ids == {"s1"}
    assert dag.get_task("s11").container_overrides["command"][-3:] == [
        "{{ pipegen_run_date(dag_run) }}",
        "--shards",
        "{{ params['shards'] }}",
    ]


def test_a_description_is_text_even_when_it_names_a_file(
    dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow reads doc_md as a path when it ends with '.md': a description must never pull a file in."""
    from airflow.dag_processing.dagbag import DagBag

    from pipegen.compiler import compile_checked
    from pipegen.frontend import check_source
    from pipegen.loader import Source

    secret = tmp_path / "notes.md"
    secret.write_text("TOP-SECRET-FILE-CONTENT")
    monkeypatch.chdir(tmp_path)
    for description in (str(secret), "notes.md", " \r"):
        spec = (
            "pipegen: 1\nname: described\n"
            f"description: {json.dumps(description)}\n"
            "backends: {here: {type: local}}\n"
            "steps:\n  - name: a\n    task: {backend: here, command: [echo, hi]}\n"
        )
        result = compile_checked(check_source(Source("described.yaml", spec)), ["airflow"])
        assert result.ok, [d.format() for d in result.diagnostics]
        (dags_folder / "described.py").write_text(result.outputs[0].text, encoding="utf-8")
        bag = DagBag(dag_folder=str(dags_folder))
        assert bag.import_errors == {}
        doc = bag.dags["described"].doc_md
        assert "TOP-SECRET" not in (doc or "")
        if description.strip():
            assert doc is not None and doc.strip() == description
