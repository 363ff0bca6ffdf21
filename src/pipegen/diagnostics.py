"""Diagnostics: located, coded messages that every stage returns instead of raising."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How bad a diagnostic is: errors stop compilation, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Location:
    """A 1-based position in a spec file."""

    file: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class CodeInfo:
    """What a diagnostic code means and what to do about it by default."""

    title: str
    hint: str
    severity: Severity = Severity.ERROR


# Stable codes: users grep for them and suppress by them, so a code is never reused.
# PG1xx loading, PG2xx schema, PG3xx references and graph, PG4xx semantics,
# PG5xx credentials, PG6xx names and targets, PG7xx warnings.
CODES: dict[str, CodeInfo] = {
    "PG100": CodeInfo("cannot read file", "check the path and its permissions"),
    "PG101": CodeInfo("YAML syntax error", "fix the YAML syntax at this position"),
    "PG102": CodeInfo("empty spec", "start the file with 'pipegen: 1' and a 'name:'"),
    "PG103": CodeInfo("spec is not a mapping", "a spec is a YAML mapping of keys such as 'pipegen', 'name', 'steps'"),
    "PG104": CodeInfo("duplicate key", "remove or rename one of the two keys"),
    "PG105": CodeInfo("unsupported format version", "set 'pipegen: 1', the format this pipegen reads"),
    "PG106": CodeInfo("more than one YAML document", "keep one pipeline per file"),
    "PG107": CodeInfo("unsupported YAML feature", "write the value out plainly"),
    "PG200": CodeInfo("unknown key", "remove the key or fix its spelling; 'pipegen schema' lists every key"),
    "PG201": CodeInfo("missing required key", "add the key"),
    "PG202": CodeInfo("invalid value", "see 'pipegen schema' for the accepted values"),
    "PG203": CodeInfo("invalid name", "rename it to match the pattern in the message"),
    "PG204": CodeInfo("step kind", "give each step exactly one of: gate, task, train, evaluate, promote"),
    "PG205": CodeInfo("invalid duration", "write a duration like 90s, 5m, 2h, 1d or 1h30m"),
    "PG206": CodeInfo(
        "invalid schedule", "use a 5-field cron expression such as '0 2 * * *' or a preset such as @daily"
    ),
    "PG207": CodeInfo("invalid threshold", "write a threshold as 'metric op number', e.g. 'ndcg > 0.78'"),
    "PG208": CodeInfo(
        "invalid expression",
        "use ${params.X}, ${run.id}, ${run.date}, ${env.X} or ${secret.X}; write $${ for a literal ${",
    ),
    "PG209": CodeInfo("unknown variant", "use one of the listed values"),
    "PG210": CodeInfo("value out of range", "use a value in the range the message names: every target must accept it"),
    "PG300": CodeInfo("duplicate step name", "give every step a unique name"),
    "PG301": CodeInfo("unknown step", "name a step defined in 'steps'"),
    "PG302": CodeInfo("dependency cycle", "remove one of the 'after' edges on the cycle"),
    "PG303": CodeInfo("unknown backend", "name a backend defined under 'backends', or omit 'backend' to run locally"),
    "PG304": CodeInfo("wrong step kind", "'run_of' must name a train step"),
    "PG305": CodeInfo("undeclared metric", "add the metric to the train step's 'metrics' or fix its name"),
    "PG306": CodeInfo(
        "promote without evaluation", "add an evaluate step with the same 'run_of' before the promote step"
    ),
    "PG307": CodeInfo("step runs before its input", "make the step run after the step it reads, with 'after'"),
    "PG308": CodeInfo("unknown parameter", "declare the parameter under 'params'"),
    "PG309": CodeInfo(
        "champion without a promotion",
        "add a promote step for the same run: the champion is the model version its alias points to",
    ),
    "PG400": CodeInfo("invalid combination", "see the message"),
    "PG500": CodeInfo("credential in URL", "reference a secret instead, e.g. ${secret.db_password}"),
    "PG501": CodeInfo("literal credential", "reference a secret instead, e.g. ${secret.api_token}"),
    "PG600": CodeInfo("name too long for a target", "shorten the name"),
    "PG601": CodeInfo("reserved name", "rename the step: the 'pipegen' prefix is reserved for generated tasks"),
    "PG602": CodeInfo("not supported by target", "see 'pipegen targets' for what each target supports"),
    "PG603": CodeInfo("unknown target", "see 'pipegen targets' for the targets this pipegen has"),
    "PG604": CodeInfo("target option required", "set it under 'targets:' in the spec"),
    "PG610": CodeInfo(
        "output too large for the platform", "split the pipeline into several specs, or shorten what each step repeats"
    ),
    "PG700": CodeInfo("unused backend", "remove the backend or use it from a step", Severity.WARNING),
    "PG701": CodeInfo("unused parameter", "remove the parameter or reference it as ${params.X}", Severity.WARNING),
    "PG702": CodeInfo("setting not applied by target", "see the message", Severity.WARNING),
}


# A diagnostic stays on one line whatever user text it quotes.
_ONE_LINE = {c: f"\\x{c:02x}" for c in range(32)} | {10: "\\n", 13: "\\r", 9: "\\t"}


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a spec: where it is, what it is, and how to fix it."""

    code: str
    message: str
    location: Location
    hint: str = ""
    severity: Severity = Severity.ERROR

    @property
    def effective_hint(self) -> str:
        """The specific hint, or the code's default one."""
        return self.hint or CODES[self.code].hint

    def sort_key(self) -> tuple[str, int, int, str, str]:
        """Order by file, line, column, then code and text, so output is stable."""
        loc = self.location
        return (loc.file, loc.line, loc.column, self.code, self.message)

    def format(self) -> str:
        """Render as one compiler-style line (control characters from user text are escaped)."""
        return one_line(
            f"{self.location}: {self.severity.value}[{self.code}]: {self.message}; hint: {self.effective_hint}"
        )

    def to_json(self) -> dict[str, object]:
        """Render as a JSON-able mapping."""
        return {
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "hint": self.effective_hint,
        }


def one_line(text: str) -> str:
    """Text with control characters escaped, so a message quoting user text stays on one line."""
    return text.translate(_ONE_LINE)


def diag(code: str, message: str, location: Location, hint: str = "") -> Diagnostic:
    """Build a diagnostic whose severity comes from its code."""
    return Diagnostic(code, message, location, hint, CODES[code].severity)


def sort_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sort by location and drop exact duplicates."""
    return sorted(set(diags), key=Diagnostic.sort_key)


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    """True when any diagnostic is an error."""
    return any(d.severity is Severity.ERROR for d in diags)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def summary_line(diags: Sequence[Diagnostic]) -> str:
    """'N errors, M warnings'."""
    errors = sum(d.severity is Severity.ERROR for d in diags)
    warnings = len(diags) - errors
    return f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"


def render_text(diags: Sequence[Diagnostic]) -> str:
    """All diagnostics, one line each, followed by a summary line when there are any."""
    if not diags:
        return ""
    return "\n".join([*(d.format() for d in diags), summary_line(diags)]) + "\n"


def render_json(diags: Sequence[Diagnostic]) -> str:
    """Diagnostics as a JSON document for machines."""
    errors = sum(d.severity is Severity.ERROR for d in diags)
    doc = {
        "diagnostics": [d.to_json() for d in diags],
        "summary": {"errors": errors, "warnings": len(diags) - errors},
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
