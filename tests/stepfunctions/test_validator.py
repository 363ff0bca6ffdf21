"""Every generated definition passes asl-validator (the pinned npm package), and the check can fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cases import GOLDEN, rel
from tests.stepfunctions.asl import validate

DEFINITIONS = sorted((GOLDEN / "stepfunctions").glob("*.asl.json"))


def test_there_are_golden_definitions_in_both_query_languages() -> None:
    languages = {json.loads(p.read_text())["QueryLanguage"] for p in DEFINITIONS}
    assert languages == {"JSONPath", "JSONata"}


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.name)
def test_golden_definition_is_valid(path: Path) -> None:
    result = validate(path)
    assert result.returncode == 0, f"{rel(path)}:\n{result.stdout}{result.stderr}"


def test_validator_rejects_a_broken_definition(tmp_path: Path) -> None:
    """The check above can fail: a transition to a missing state is rejected."""
    doc = json.loads(DEFINITIONS[0].read_text())
    first = doc["States"][doc["StartAt"]]
    first["Next"] = "no-such-state"
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(doc))
    result = validate(broken)
    assert result.returncode == 1
    assert "no-such-state" in result.stdout + result.stderr
