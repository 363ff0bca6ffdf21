"""Bad input has goldens too: each invalid spec under tests/invalid/ with its expected diagnostics."""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipegen.diagnostics import CODES
from tests.cases import INVALID, REGEN_COMMAND, REPO, diagnostics_text, expected_path, rel

LINE = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning)\[(?P<code>PG\d{3})\]: .+; hint: .+$"
)


def test_corpus_is_large_enough() -> None:
    assert len(INVALID) >= 25


@pytest.mark.parametrize("spec", INVALID, ids=lambda p: p.stem)
def test_expected_diagnostics(spec: Path) -> None:
    expected = expected_path(spec).read_text(encoding="utf-8")
    actual = diagnostics_text(spec)
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), "expected", "actual"))
        pytest.fail(f"diagnostics changed for {rel(spec)}; if intended, run `{REGEN_COMMAND}` and review:\n{diff}")


@pytest.mark.parametrize("spec", INVALID, ids=lambda p: p.stem)
def test_every_line_is_located_coded_and_hinted(spec: Path) -> None:
    lines = expected_path(spec).read_text(encoding="utf-8").splitlines()
    assert lines, "an invalid spec must produce diagnostics"
    *diags, summary = lines
    assert re.fullmatch(r"[1-9]\d* errors?, \d+ warnings?", summary)
    for line in diags:
        match = LINE.match(line)
        assert match, line
        assert match["file"] == rel(spec)
        assert match["code"] in CODES


@pytest.mark.parametrize("spec", INVALID, ids=lambda p: p.stem)
def test_announced_codes_are_reported(spec: Path) -> None:
    """Each file's first comment names the codes it is about; those must be among the diagnostics."""
    text = spec.read_text(encoding="utf-8")
    # An empty file cannot carry the comment: it is the PG102 case by definition.
    announced = set(re.findall(r"PG\d{3}", text.splitlines()[0])) if text else {"PG102"}
    reported = set(re.findall(r"\[(PG\d{3})\]", expected_path(spec).read_text(encoding="utf-8")))
    assert announced, f"{rel(spec)} should start with a comment naming the codes it tests"
    assert announced <= reported


def test_cli_exit_code_and_no_traceback() -> None:
    for spec in INVALID:
        proc = subprocess.run(
            [sys.executable, "-m", "pipegen", "validate", rel(spec)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 1, rel(spec)
        assert "Traceback" not in proc.stdout + proc.stderr


def test_every_error_code_has_an_invalid_spec() -> None:
    reported: set[str] = set()
    for spec in INVALID:
        reported |= set(re.findall(r"\[(PG\d{3})\]", expected_path(spec).read_text(encoding="utf-8")))
    # PG100: an unreadable file cannot be committed; PG600/PG602/PG604/PG610/PG702 come from targets at compile
    # time (tested with each target's lowering; PG610 in tests/argo/test_size.py).
    untestable = {"PG100", "PG600", "PG602", "PG604", "PG610", "PG702"}
    assert set(CODES) - untestable - reported == set()
