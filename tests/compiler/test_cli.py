"""The command line: exit codes, output formats, graph drawing, schema."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipegen.draw import mermaid_text
from tests.cases import INVALID, REPO, SCHEMA, SPECS, SUPPORT_DOC, rel, support_doc_text
from tests.conftest import CliResult

Cli = Callable[..., CliResult]


def test_validate_examples(cli: Cli) -> None:
    result = cli("validate", *map(rel, SPECS))
    assert result.code == 0
    assert result.out == f"{len(SPECS)} specs valid\n"


def test_validate_json_format(cli: Cli) -> None:
    result = cli("validate", "--format", "json", rel(INVALID[0]))
    doc = json.loads(result.out)
    assert result.code == 1
    assert doc["summary"]["errors"] >= 1
    first = doc["diagnostics"][0]
    assert set(first) == {"file", "line", "column", "severity", "code", "message", "hint"}
    assert first["file"] == rel(INVALID[0])


def test_missing_file_is_a_diagnostic(cli: Cli) -> None:
    result = cli("validate", "no/such/spec.yaml")
    assert result.code == 1
    assert result.out.startswith("no/such/spec.yaml:1:1: error[PG100]: cannot read spec")


def test_usage_errors_exit_2(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exc:
        cli("validate")
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli("graph", rel(SPECS[0]), "--format", "png")
    assert exc.value.code == 2
    result = cli("compile", rel(SPECS[0]), "-t", "nosuchtarget", "-o", "out")
    assert result.code == 2
    assert "unknown target 'nosuchtarget'" in result.err


def test_no_traceback_from_the_installed_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipegen", "validate", *map(rel, INVALID)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "internal error" not in proc.stderr


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "json"])
def test_graph_formats(cli: Cli, fmt: str) -> None:
    result = cli("graph", "specs/feed-ranking.yaml", "--format", fmt)
    assert result.code == 0
    if fmt == "mermaid":
        assert result.out.startswith("flowchart TD\n")
        assert "    s_engagement_ready --> s_train\n" in result.out
    elif fmt == "dot":
        assert '"train" -> "quality";' in result.out
    else:
        doc = json.loads(result.out)
        assert [s["name"] for s in doc["steps"]] == ["engagement_ready", "train", "quality", "promote"]
        assert doc["steps"][1]["after"] == ["engagement_ready"]


def test_graph_of_invalid_spec_fails(cli: Cli) -> None:
    result = cli("graph", rel(INVALID[0]))
    assert result.code == 1
    assert result.out == ""
    assert "error[" in result.err


def test_mermaid_parses_with_real_mermaid(cli: Cli, tmp_path: Path) -> None:
    """Every example graph, plus one with hostile labels, parses with mermaid.js (what GitHub renders)."""
    checker = REPO / "tools" / "node" / "mermaid-check.mjs"
    assert (REPO / "tools" / "node" / "node_modules" / "mermaid").is_dir(), "run `make node` first"
    files = []
    for spec in SPECS:
        result = cli("graph", rel(spec))
        assert result.code == 0
        out = tmp_path / f"{spec.stem}.mmd"
        out.write_text(result.out)
        files.append(str(out))
    # Step names that are Mermaid keywords, and a label with every character Mermaid treats specially.
    keywords = tmp_path / "keywords.yaml"
    keywords.write_text(
        "pipegen: 1\nname: h\nsteps:\n"
        "  - {name: graph, train: {command: [x], metrics: [m]}}\n"
        "  - {name: subgraph, evaluate: {run_of: graph, thresholds: ['m > 1']}}\n"
        "  - {name: end, promote: {model: m, run_of: graph}}\n"
        "  - {name: style, task: {command: [x]}}\n"
    )
    result = cli("graph", str(keywords))
    assert result.code == 0, result.err
    hostile = 'a"b <c> #1; `x` | &amp; ünï ✓ {{ }} [x] (y)'
    (tmp_path / "graph.mmd").write_text(result.out + f'    s_x["{mermaid_text(hostile)}"]\n')
    files.append(str(tmp_path / "graph.mmd"))
    broken = tmp_path / "broken.mmd"
    broken.write_text("flowchart TD\n    a -->\n")
    proc = subprocess.run(["node", str(checker), *files], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    # The checker itself can fail: a broken diagram is rejected.
    proc = subprocess.run(["node", str(checker), str(broken)], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "broken.mmd" in proc.stderr


def test_support_matrix_in_docs_is_current(cli: Cli) -> None:
    result = cli("targets", "--format", "markdown")
    assert result.code == 0
    assert result.out == support_doc_text()
    assert SUPPORT_DOC.read_text(encoding="utf-8") == result.out, "docs/targets.md is stale: run `make golden`"
    # Every backend type and gate check has a row, and every target a column.
    for name in ("aws_batch", "spark", "partition_exists", "sql", "stepfunctions (AWS Step Functions)"):
        assert name in result.out


def test_targets_list_every_option_with_a_description(cli: Cli) -> None:
    """`pipegen targets` lists each target's options (from its options model) with type, default and description."""
    from pipegen.targets import available

    text = cli("targets").out
    doc = json.loads(cli("targets", "--format", "json").out)
    markdown = cli("targets", "--format", "markdown").out
    for name, target in available().items():
        options = doc[name]["options"]
        assert set(target.options_model.model_fields) <= set(options), name
        for option, info in options.items():
            assert info["type"] and info["description"], (name, option)
            assert info["required"] == ("default" not in info)
            assert f"    {option} " in text and f"| `{option}` |" in markdown
    assert '    query_language                     JSONPath | JSONata, default "JSONPath"\n' in text


def test_schema_command_matches_committed_file(cli: Cli) -> None:
    result = cli("schema")
    assert result.code == 0
    assert result.out == SCHEMA.read_text(), "schema/ is stale: run `make golden`"


def test_ir_without_kfp_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    # It was a ModuleNotFoundError traceback (exit 3) where kfp is not installed, as in the compiler's own env.
    import importlib.util

    if importlib.util.find_spec("kfp") is not None:
        pytest.skip("kfp is installed here")
    result = cli("compile", rel(SPECS[0]), "-t", "kfp", "--ir", "-o", str(tmp_path / "out"))
    assert result.code == 2
    assert "--ir compiles with kfp, which is not installed here" in result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / "out").exists()
