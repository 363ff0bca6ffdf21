"""`make demo` compiles each example spec for exactly the targets that run it (tests/cases.py's UNSUPPORTED)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.cases import REPO, SPECS, targets_for


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_compiles_every_spec_for_the_targets_that_run_it() -> None:
    dry = subprocess.run(["make", "-n", "-s", "demo"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    compiled: dict[str, set[str]] = {}
    for line in dry.splitlines():
        if m := re.search(r"pipegen compile (.+?) -t (\w+) -o ", line):
            compiled.setdefault(m.group(2), set()).update(m.group(1).split())
    expected: dict[str, set[str]] = {}
    for spec in SPECS:
        for target in targets_for(spec):
            expected.setdefault(target, set()).add(f"specs/{spec.name}")
    assert compiled == expected
