"""Compile checked specs for targets: resolve once, let each target check and render."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipegen.diagnostics import Diagnostic, has_errors, sort_diagnostics
from pipegen.emit import Output
from pipegen.frontend import Checked
from pipegen.lowering import lower_all
from pipegen.resolve import resolve
from pipegen.targets import available


@dataclass
class CompileResult:
    """Outputs for every requested target, or the diagnostics that stopped them."""

    outputs: list[Output] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no error was found."""
        return not has_errors(self.diagnostics)


def repo_relative(path: str) -> str:
    """The spec path relative to the enclosing git checkout (stable across machines), else as given."""
    resolved = Path(path).resolve()
    for parent in resolved.parents:
        if (parent / ".git").exists():
            return resolved.relative_to(parent).as_posix()
    return Path(path).as_posix()


def combine_outputs(outputs: list[Output], target_names: list[str]) -> list[Output]:
    """The outputs of several specs, with the files their targets share merged (one prefect.yaml)."""
    targets = available()
    for name in target_names:
        outputs = targets[name].combine(outputs)
    return outputs


def compile_checked(
    checked: Checked, target_names: list[str], flags: frozenset[str] = frozenset(), jobs: int = 1
) -> CompileResult:
    """Resolve a checked spec and render it for each target (up to jobs at a time); any target error stops all output."""
    result = CompileResult(diagnostics=list(checked.diagnostics))
    if not checked.ok:
        return result
    assert checked.spec is not None
    pipeline = resolve(checked, repo_relative(checked.source.path))
    for problems, outputs in lower_all(pipeline, target_names, flags, jobs):
        result.diagnostics.extend(problems)
        result.outputs.extend(outputs)
    result.diagnostics = sort_diagnostics(result.diagnostics)
    if not result.ok:
        result.outputs = []
    return result
