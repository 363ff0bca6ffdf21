"""Nesting is bounded before libyaml composes a spec: deep input is a located diagnostic, never a crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipegen.loader import MAX_DEPTH, Source, load_text


@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_nesting_past_the_limit_is_located(opener: str) -> None:
    nested = opener * (MAX_DEPTH + 1) if opener != "- " else "".join(f"\n{'  ' * i}- " for i in range(MAX_DEPTH + 1))
    loaded = load_text(Source("deep.yaml", f"pipegen: 1\nname: x\nsteps: {nested}1\n"))
    assert [d.code for d in loaded.diagnostics] == ["PG107"]
    assert f"more than {MAX_DEPTH} deep" in loaded.diagnostics[0].message
    assert loaded.diagnostics[0].location.line is not None


def test_nesting_at_the_limit_loads() -> None:
    value = "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1)
    loaded = load_text(Source("ok.yaml", f"pipegen: 1\nname: x\nextra: {value}\n"))
    assert loaded.diagnostics == [] and loaded.data is not None


def test_a_file_of_brackets_does_not_crash_validate(tmp_path: Path) -> None:
    """25 KB of `[` overflowed libyaml's recursive composer: the process died with SIGSEGV (exit 139)."""
    spec = tmp_path / "brackets.yaml"
    spec.write_text("pipegen: 1\nname: x\nsteps: " + "[" * 200_000 + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pipegen", "validate", str(spec)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-500:])
    assert "Traceback" not in proc.stderr
    assert f"{spec}:3:" in proc.stdout and "error[PG107]" in proc.stdout


def test_a_long_spec_without_aliases_is_not_an_alias_bomb() -> None:
    """Every value written out once counted towards the alias bound: a long chain of steps was refused as
    'expands to more than 100000 values (through YAML aliases)'."""
    from pipegen.loader import MAX_VALUES

    command = "[python, train.py, --a, '1', --b, '2', --c, '3', --d, '4']"
    steps = "".join(f"  - {{name: s{i}, task: {{backend: local, command: {command}}}}}\n" for i in range(10_000))
    loaded = load_text(Source("long.yaml", f"pipegen: 1\nname: x\nsteps:\n{steps}"))
    assert loaded.diagnostics == [] and loaded.data is not None
    assert len(loaded.data["steps"]) == 10_000
    assert _values(loaded.data) > MAX_VALUES  # more values than the bound, none repeated


def _values(data: object) -> int:
    if isinstance(data, dict):
        return 1 + sum(_values(v) for v in data.values())
    if isinstance(data, list):
        return 1 + sum(_values(v) for v in data)
    return 1
