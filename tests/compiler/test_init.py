"""`pipegen init`: a starter spec per backend type that validates and compiles for every target running that backend."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pipegen.spec import BACKEND_TYPES
from pipegen.starter import backend_types
from pipegen.targets import available
from tests.cases import SCHEMA
from tests.conftest import CliResult

Cli = Callable[..., CliResult]


def test_every_backend_type_has_a_starter() -> None:
    assert backend_types() == sorted(BACKEND_TYPES)


@pytest.mark.parametrize("backend", sorted(BACKEND_TYPES))
def test_starter_validates_and_compiles_where_its_backend_runs(cli: Cli, tmp_path: Path, backend: str) -> None:
    spec = tmp_path / "specs" / "churn-model.yaml"
    made = cli("init", "churn-model", "--backend", backend, "-o", str(spec), "--schema", str(SCHEMA))
    assert made.code == 0, made.err
    assert f"wrote {spec}" in made.err
    assert cli("validate", str(spec)).out == "1 spec valid\n"
    # A target that runs the type only in other ways than the starter's (spark platform: submit) does not run it:
    # the compile below shows it refuses the starter.
    from pipegen.frontend import check_file
    from pipegen.spec import backend_variant

    backends = check_file(str(spec)).spec.backends.values()  # type: ignore[union-attr]
    variants = {v[0] for b in backends if (v := backend_variant(b)) is not None}
    runs_it = [
        name
        for name, t in available().items()
        if backend in t.support.backends and variants <= t.support.variants.keys()
    ]
    for name in available():
        result = cli("compile", str(spec), "-t", name, "-o", str(tmp_path / "build"))
        if name in runs_it:
            assert result.code == 0, result.err
            assert (tmp_path / "build" / name).is_dir()
        else:
            # The support table and the compiler agree: a target that lacks the backend refuses the spec.
            assert result.code == 1
            assert "error[PG602]" in result.err
    if runs_it:
        assert f"it compiles for: {', '.join(runs_it)}" in made.err
    else:
        assert f"no target runs backend type '{backend}' yet" in made.err


def test_modeline_names_the_schema_relative_to_the_spec(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "a" / "b" / "x.yaml"
    assert cli("init", "x", "--backend", "local", "-o", str(spec), "--schema", str(SCHEMA)).code == 0
    first = spec.read_text(encoding="utf-8").splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix)
    reference = first.removeprefix(prefix)
    assert not Path(reference).is_absolute()
    assert (spec.parent / reference).resolve() == SCHEMA.resolve()


def test_defaults_write_specs_name_yaml_here(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    made = cli("init", "feed", "--backend", "aws_batch")
    assert made.code == 0, made.err
    text = (tmp_path / "specs" / "feed.yaml").read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../schema/pipegen-v1.schema.json\n")
    assert "pipegen schema > schema/pipegen-v1.schema.json" in made.err
    url = "https://example.com/pipegen-v1.schema.json"
    assert cli("init", "feed", "--backend", "aws_batch", "--schema", url, "--force").code == 0
    assert (
        (tmp_path / "specs" / "feed.yaml")
        .read_text(encoding="utf-8")
        .startswith(f"# yaml-language-server: $schema={url}\n")
    )
    assert cli("init", "feed", "--backend", "aws_batch", "--schema", "", "--force").code == 0
    assert (tmp_path / "specs" / "feed.yaml").read_text(encoding="utf-8").startswith("# feed: a starter pipeline")


def test_never_overwrites_without_force(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "x.yaml"
    spec.write_text("mine\n", encoding="utf-8")
    result = cli("init", "x", "--backend", "local", "-o", str(spec))
    assert result.code == 2
    assert "exists; pass --force" in result.err
    assert spec.read_text(encoding="utf-8") == "mine\n"
    assert cli("init", "x", "--backend", "local", "-o", str(spec), "--force").code == 0
    assert "pipegen: 1" in spec.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "schema"),
    [("Bad", ""), ("x" * 64, ""), ("ok", "a b.json"), ("ok", "x.json\nsteps: []"), ("ok", "x.json#frag")],
)
def test_bad_input_is_a_usage_error_and_writes_nothing(cli: Cli, tmp_path: Path, name: str, schema: str) -> None:
    spec = tmp_path / "x.yaml"
    result = cli("init", name, "--backend", "local", "-o", str(spec), "--schema", schema)
    assert result.code == 2
    assert result.err.startswith("pipegen: error: ")
    assert not spec.exists()


def test_starter_is_deterministic(cli: Cli, tmp_path: Path) -> None:
    texts = set()
    for i in range(2):
        spec = tmp_path / f"{i}" / "x.yaml"
        assert cli("init", "x", "--backend", "kubernetes", "-o", str(spec), "--schema", "https://e.x/s.json").code == 0
        texts.add(spec.read_text(encoding="utf-8"))
    assert len(texts) == 1


def test_starters_are_clean_in_the_editor(cli: Cli, tmp_path: Path) -> None:
    """Opened in a yaml-language-server editor, each starter finds the schema through its modeline and shows nothing."""
    from tests.compiler.test_editor_schema import _require_node, layout, run_checker

    _require_node()
    root = layout(tmp_path)
    files = []
    for backend in sorted(BACKEND_TYPES):
        spec = root / "specs" / f"{backend.replace('_', '-')}.yaml"
        schema = root / "schema" / SCHEMA.name
        assert cli("init", spec.stem, "--backend", backend, "-o", str(spec), "--schema", str(schema)).code == 0
        files.append(spec)
    proc = run_checker(*files)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert len(results) == len(files)
    for result in results:
        assert result["documents"] == [{"schema": (root / "schema" / SCHEMA.name).as_uri(), "draft": "2020-12"}]
        assert result["diagnostics"] == [], result
