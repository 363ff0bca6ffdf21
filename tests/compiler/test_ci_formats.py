"""Diagnostics for CI: SARIF 2.1.0 proven with the SARIF Multitool and its schema, GitHub annotations with @actions/core."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.cases import INVALID, REPO, SPECS, rel
from tests.conftest import CliResult

Cli = Callable[..., CliResult]

NODE = REPO / "tools" / "node"
MULTITOOL_DIR = NODE / "node_modules" / "@microsoft" / "sarif-multitool-linux"
MULTITOOL = MULTITOOL_DIR / "Sarif.Multitool"
# The SARIF 2.1.0 schema as the SARIF SDK ships it beside its validator.
SARIF_SCHEMA = MULTITOOL_DIR / "sarif-2.1.0.json"
# The one advisory the Multitool keeps: pipegen has no project web page for informationUri yet.
ALLOWED_WARNINGS = {"SARIF2005"}
# A spec whose user text tries to break out of a workflow command: newline, '%', ':' and ',' in a key.
HOSTILE_SPEC = (
    'pipegen: 1\nname: x\n"evil\\n::warning file=a::%0A, 100%: done": 1\nsteps:\n  - {name: t, task: {command: [a]}}\n'
)


def _validator() -> jsonschema.protocols.Validator:
    assert MULTITOOL.is_file(), "run `make node` first"
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _multitool(files: list[Path], out: Path) -> list[dict[str, Any]]:
    """Run the SARIF Multitool's validate command and return what it found (its own SARIF log)."""
    proc = subprocess.run(
        [str(MULTITOOL), "validate", *map(str, files), "--output", str(out), "--log", "ForceOverwrite", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        env={"DOTNET_SYSTEM_GLOBALIZATION_INVARIANT": "1", "HOME": str(out.parent), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = json.loads(out.read_text(encoding="utf-8-sig"))
    results: list[dict[str, Any]] = log["runs"][0].get("results", [])
    return results


def _problems(results: list[dict[str, Any]]) -> list[str]:
    return [
        f"{r['ruleId']}: {r['message'].get('text') or r['message'].get('arguments')}"
        for r in results
        if r.get("level", "warning") == "error" or r["ruleId"] not in ALLOWED_WARNINGS
    ]


def test_sarif_for_every_invalid_spec_is_valid_and_keeps_positions(cli: Cli, tmp_path: Path) -> None:
    validator = _validator()
    logs = []
    for spec in INVALID:
        sarif = cli("validate", "--format", "sarif", rel(spec))
        doc = json.loads(sarif.out)
        errors = sorted(validator.iter_errors(doc), key=str)
        assert not errors, f"{spec.name}: {errors[0].message} at {list(errors[0].absolute_path)}"
        expected = json.loads(cli("validate", "--format", "json", rel(spec)).out)["diagnostics"]
        assert expected, f"{spec.name} has no diagnostics"
        results = doc["runs"][0]["results"]
        rules = doc["runs"][0]["tool"]["driver"]["rules"]
        assert sarif.code == 1
        assert [
            (
                r["ruleId"],
                rules[r["ruleIndex"]]["id"],
                r["level"],
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                r["locations"][0]["physicalLocation"]["region"]["startLine"],
                r["locations"][0]["physicalLocation"]["region"]["startColumn"],
            )
            for r in results
        ] == [(d["code"], d["code"], d["severity"], d["file"], d["line"], d["column"]) for d in expected]
        assert all(d["message"] in r["message"]["text"] for r, d in zip(results, expected, strict=True))
        log = tmp_path / f"{spec.stem}.sarif"
        log.write_text(sarif.out, encoding="utf-8")
        logs.append(log)
    # The SARIF SDK's own validator: its schema check and its rules for well-formed logs.
    assert _problems(_multitool(logs, tmp_path / "multitool.sarif")) == []


def test_sarif_of_clean_specs_has_no_results(cli: Cli) -> None:
    result = cli("validate", "--format", "sarif", *map(rel, SPECS))
    doc = json.loads(result.out)
    assert result.code == 0
    assert doc["version"] == "2.1.0"
    assert doc["runs"][0]["results"] == []
    assert not list(_validator().iter_errors(doc))


def test_sarif_checks_can_fail(cli: Cli, tmp_path: Path) -> None:
    """Both validators reject a log that breaks the schema, so the passing test above means something."""
    doc = json.loads(cli("validate", "--format", "sarif", rel(INVALID[0])).out)
    doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    assert list(_validator().iter_errors(doc))
    broken = tmp_path / "broken.sarif"
    broken.write_text(json.dumps(doc), encoding="utf-8")
    assert _problems(_multitool([broken], tmp_path / "multitool.sarif"))


def test_sarif_output_is_deterministic(cli: Cli) -> None:
    first = cli("validate", "--format", "sarif", *map(rel, INVALID[:5])).out
    assert cli("validate", "--format", "sarif", *map(rel, INVALID[:5])).out == first


def test_sarif_uri_of_an_absolute_path(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "a dir" / "bad spec.yaml"
    spec.parent.mkdir()
    spec.write_text("pipegen: 1\nname: Bad\n", encoding="utf-8")
    doc = json.loads(cli("validate", "--format", "sarif", str(spec)).out)
    location = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": spec.as_uri()}
    assert "%20" in location["uri"]


def _toolkit_annotations(json_doc: str) -> list[str]:
    proc = subprocess.run(
        ["node", str(NODE / "gh-annotate.mjs")], input=json_doc, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.parametrize("spec", INVALID[:40:3], ids=lambda p: p.stem)
def test_github_annotations_match_actions_toolkit(cli: Cli, spec: Path) -> None:
    """`--format github` prints exactly what @actions/core's error()/warning() would for each diagnostic."""
    ours = cli("validate", "--format", "github", rel(spec))
    assert ours.code == 1
    commands = [line for line in ours.out.splitlines() if line.startswith("::")]
    assert commands
    assert commands == _toolkit_annotations(cli("validate", "--format", "json", rel(spec)).out)
    assert ours.out.splitlines()[-1].endswith("warnings") or ours.out.splitlines()[-1].endswith("warning")


def test_github_annotations_keep_hostile_text_inside_one_command(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "a,b:c.yaml"
    spec.write_text(HOSTILE_SPEC, encoding="utf-8")
    result = cli("validate", "--format", "github", str(spec))
    commands = [line for line in result.out.splitlines() if line.startswith("::")]
    assert len(commands) == 1, result.out
    assert commands == _toolkit_annotations(cli("validate", "--format", "json", str(spec)).out)
    assert commands[0].startswith("::error title=pipegen PG200,file=")
    assert "a%2Cb%3Ac.yaml,line=3,col=1::" in commands[0]
    assert "%0A::warning file=a::%250A" in commands[0]


def test_github_format_of_clean_specs(cli: Cli) -> None:
    result = cli("validate", "--format", "github", *map(rel, SPECS))
    assert result.code == 0
    assert result.out == f"{len(SPECS)} specs valid\n"


def test_a_directory_stands_for_its_specs(cli: Cli, tmp_path: Path) -> None:
    result = cli("validate", "--format", "json", "tests/invalid")
    files = {d["file"] for d in json.loads(result.out)["diagnostics"]}
    assert files == {rel(spec) for spec in INVALID}
    assert cli("validate", "specs").out == f"{len(SPECS)} specs valid\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("validate", str(empty))
    assert result.code == 2
    assert "no specs (*.yaml, *.yml) in directory" in result.err


def test_compile_annotates_target_errors_for_github(cli: Cli, tmp_path: Path) -> None:
    """What only a target can refuse (here: `local` on Step Functions) reaches GitHub as an annotation too."""
    result = cli("compile", "specs/demo.yaml", "-t", "stepfunctions", "-o", str(tmp_path), "--format", "github")
    assert result.code == 1
    commands = [line for line in result.err.splitlines() if line.startswith("::")]
    assert len(commands) == 1, result.err
    assert commands[0].startswith("::error title=pipegen PG602,file=specs/demo.yaml,line=32,col=16::")
    assert not any(tmp_path.iterdir())
