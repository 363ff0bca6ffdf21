"""Expected differences, each backed by a located compile-time diagnostic.

An engine may end differently from the others only where pipegen said so when it compiled the spec for that
engine's target: a diagnostic (e.g. PG702 "setting not applied by target") with a code, located at the spec
setting the difference concerns. An expected difference names the engine, the code, the setting (a dotted
path into the spec, located through pipegen's own source map) and the table rows it excuses; the run fails
when compilation did not emit that diagnostic there, when a row differs that no expected difference excuses,
and when an expected difference is no longer seen (so a fix cannot leave a stale excuse behind).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.differential.compare import MISSING, Table
from tests.differential.engines import load_pipeline

# `pipegen compile`'s text diagnostics: file:line:col: severity[PGxxx]: message; hint: ...
_LINE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<severity>error|warning)\[(?P<code>PG\d{3})\]: (?P<message>.*)$"
)


@dataclass(frozen=True)
class Diagnostic:
    """One located diagnostic `pipegen compile` printed for a target."""

    file: str
    line: int
    column: int
    severity: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{Path(self.file).name}:{self.line}:{self.column}: {self.severity}[{self.code}]: {self.message}"


def parse_diagnostics(output: str) -> list[Diagnostic]:
    """The located diagnostics in `pipegen compile` output (its summary and `wrote` lines are not)."""
    found = []
    for line in output.splitlines():
        match = _LINE.match(line)
        if match is not None:
            fields = match.groupdict()
            found.append(
                Diagnostic(
                    fields["file"],
                    int(fields["line"]),
                    int(fields["column"]),
                    fields["severity"],
                    fields["code"],
                    fields["message"],
                )
            )
    return found


@dataclass(frozen=True)
class Expected:
    """On `engine`, `rows` differ from the other engines because of diagnostic `code` at spec `setting`."""

    engine: str
    code: str
    # A dotted path into the spec, list items by index: "notify.on_failure", "steps.2.promote.notify".
    setting: str
    # Table rows this difference excuses: exact names, or a prefix ending in `*` ("webhook *").
    rows: tuple[str, ...]
    reason: str

    def covers(self, row: str) -> bool:
        """Whether this expected difference names the row."""
        return any(row.startswith(p[:-1]) if p.endswith("*") else row == p for p in self.rows)


def setting_path(setting: str) -> tuple[str | int, ...]:
    """ "steps.2.promote" -> ("steps", 2, "promote")."""
    return tuple(int(part) if part.isdigit() else part for part in setting.split("."))


def locate(spec: str, setting: str) -> tuple[int, int]:
    """The (line, column) of a setting's value in the spec; ValueError when the spec has no such setting."""
    source_map = load_pipeline(spec).source_map
    path = setting_path(setting)
    if path not in source_map.values:
        raise ValueError(f"{Path(spec).name} has no setting `{setting}`")
    where = source_map.value(path)
    return where.line, where.column


def excused(table: Table, row: str, expected: Iterable[Expected]) -> bool:
    """Whether the row agrees once the columns of the expected differences that name it are set aside."""
    aside = {e.engine for e in expected if e.covers(row)}
    rest = [e for e in table.engines if e not in aside]
    return bool(aside) and len({table.rows[row].get(e, MISSING) for e in rest}) <= 1


def problems(
    spec: str, table: Table, diagnostics: Mapping[str, list[Diagnostic]], expected: Iterable[Expected]
) -> list[str]:
    """Why this run does not pass with these expected differences ([] when it does).

    diagnostics: each engine's compile diagnostics (an engine that runs the spec itself has none).
    """
    found: list[str] = []
    backed: list[Expected] = []
    for item in (e for e in expected if e.engine in table.engines):
        try:
            line, column = locate(spec, item.setting)
        except ValueError as exc:
            found.append(f"expected difference on {item.engine}: {exc}")
            continue
        own = diagnostics.get(item.engine, [])
        if any((d.code, d.line, d.column) == (item.code, line, column) for d in own):
            backed.append(item)
            continue
        seen = "; ".join(str(d) for d in own) or "none"
        found.append(
            f"expected difference on {item.engine} ({item.reason}) has no {item.code} at "
            f"{Path(spec).name}:{line}:{column} (`{item.setting}`) from its compilation: nothing is excused "
            f"without a located diagnostic (its diagnostics: {seen})"
        )
    differing = table.differing
    for row in differing:
        if not excused(table, row, backed):
            found.append(f"DIFFERS: {row}")
    for item in backed:
        if not any(item.covers(row) for row in differing):
            found.append(
                f"expected difference on {item.engine} ({item.reason}) is not seen any more: remove it from KNOWN"
            )
    return found
