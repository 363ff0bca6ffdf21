"""Compiled outputs of the example specs, byte-compared with golden/, and deterministic."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

from tests.cases import GOLDEN, REGEN_COMMAND, REPO, SPECS, compiled_goldens, rel, targets_for


def test_golden_directory_matches_compiler_output() -> None:
    expected = {
        p.relative_to(GOLDEN).as_posix(): p.read_text(encoding="utf-8") for p in GOLDEN.rglob("*") if p.is_file()
    }
    actual = compiled_goldens()
    missing, extra = sorted(set(actual) - set(expected)), sorted(set(expected) - set(actual))
    assert not missing and not extra, f"golden/ is stale (missing {missing}, extra {extra}); run `{REGEN_COMMAND}`"
    for path, text in actual.items():
        if text != expected[path]:
            diff = "".join(
                difflib.unified_diff(
                    expected[path].splitlines(True), text.splitlines(True), f"golden/{path}", "compiled"
                )
            )
            raise AssertionError(f"golden/{path} differs; if intended, run `{REGEN_COMMAND}` and review:\n{diff}")


def test_compile_is_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "4242"):
        out = tmp_path / seed
        for spec in SPECS:
            targets = ",".join(targets_for(spec))
            if not targets:  # a spec every target refuses (tests.cases.UNSUPPORTED): nothing to compile
                continue
            subprocess.run(
                [sys.executable, "-m", "pipegen", "compile", rel(spec), "-t", targets, "-o", str(out)],
                cwd=REPO,
                env={**os.environ, "PYTHONHASHSEED": seed},
                check=True,
                capture_output=True,
            )
        outputs.append({p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert outputs[0] == outputs[1]
    assert outputs[0], "nothing was compiled"
