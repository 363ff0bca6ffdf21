"""Diagnostics for CI: SARIF 2.1.0 for code scanning, GitHub Actions workflow commands for annotations."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from urllib.parse import quote

from pipegen import __version__
from pipegen.diagnostics import CODES, Diagnostic, Severity, one_line, render_json, render_text, summary_line

FORMATS = ("text", "json", "sarif", "github")

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render(diags: Sequence[Diagnostic], fmt: str) -> str:
    """Diagnostics in one of FORMATS."""
    if fmt == "sarif":
        return render_sarif(diags)
    if fmt == "github":
        return render_github(diags)
    if fmt == "json":
        return render_json(diags)
    return render_text(diags)


def _rule_name(title: str) -> str:
    """A SARIF rule name is an identifier: 'unknown key' -> 'UnknownKey'."""
    return "".join(word.capitalize() for word in re.findall(r"[A-Za-z0-9]+", title))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _level(severity: Severity) -> str:
    return "error" if severity is Severity.ERROR else "warning"


def _artifact_location(file: str) -> dict[str, str]:
    """A relative path stays relative to the checkout (%SRCROOT%), which is what code scanning resolves."""
    path = PurePosixPath(file)
    if path.is_absolute():
        return {"uri": path.as_uri()}
    return {"uri": quote(path.as_posix()), "uriBaseId": "%SRCROOT%"}


def _message(diag: Diagnostic) -> str:
    text = diag.message.rstrip(".")
    return f"{text}. Hint: {diag.effective_hint}."


def render_sarif(diags: Sequence[Diagnostic]) -> str:
    """One SARIF 2.1.0 log: a run of pipegen with every code as a rule and each diagnostic as a result."""
    codes = sorted(CODES)
    index = {code: i for i, code in enumerate(codes)}
    rules = [
        {
            "id": code,
            "name": _rule_name(CODES[code].title),
            "shortDescription": {"text": f"{_sentence(CODES[code].title)}."},
            "fullDescription": {"text": f"{_sentence(CODES[code].title)}: {CODES[code].hint}."},
            "help": {"text": f"{_sentence(CODES[code].hint)}."},
            "defaultConfiguration": {"level": _level(CODES[code].severity)},
        }
        for code in codes
    ]
    results = [
        {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _level(d.severity),
            "message": {"text": _message(d)},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": _artifact_location(d.location.file),
                        "region": {"startLine": d.location.line, "startColumn": d.location.column},
                    }
                }
            ],
        }
        for d in diags
    ]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pipegen",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                # The loader counts columns in characters, as an editor does.
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _escape_data(text: str) -> str:
    """Escape a workflow command's message the way @actions/core does, on one line whatever user text it quotes."""
    return one_line(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _escape_property(text: str) -> str:
    """Escape a workflow command property (file=, title=): ':' and ',' end a property."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(diags: Sequence[Diagnostic]) -> str:
    """GitHub Actions workflow commands, one per diagnostic, so each shows as an annotation on its line."""
    lines = []
    for d in diags:
        props = ",".join(
            f"{key}={_escape_property(str(value))}"
            # The order @actions/core writes them in.
            for key, value in (
                ("title", f"pipegen {d.code}"),
                ("file", d.location.file),
                ("line", d.location.line),
                ("col", d.location.column),
            )
        )
        lines.append(f"::{_level(d.severity)} {props}::{_escape_data(f'{d.message}; hint: {d.effective_hint}')}")
    return "\n".join([*lines, summary_line(diags)]) + "\n" if diags else ""
