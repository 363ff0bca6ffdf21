"""Argo's substitution of the expressions pipegen writes into resource manifests (argo/manifests.py), played here.

No Argo controller runs on these machines. Manifests use one small subset of expr (expr-lang, which Argo evaluates
in `{{=...}}`): `toJson(a + b + ...)` over string literals (quoted with ', with \\uXXXX and \\UXXXXXXXX escapes),
`workflow.parameters.X`, `workflow.name`, `inputs.parameters['X']` and `replace(s, old, new)`. This evaluator
knows exactly that subset and fails on anything else, so a manifest using more fails its tests rather than pass.
Each expression is replaced by its value's JSON (Go's json.Marshal, which also escapes <, > and &).
"""

from __future__ import annotations

import json
import re
from typing import Any

_STRING = re.compile(r"'((?:[^'\\]|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8})*)'")
_NAME = re.compile(r"workflow\.parameters\.([A-Za-z0-9_-]+)|workflow\.name|inputs\.parameters\['([-A-Za-z0-9_]+)'\]")
EXPRESSION = re.compile(r"\{\{=(.+?)\}\}")


class _Parser:
    def __init__(self, text: str, scope: dict[str, Any]) -> None:
        self.text, self.at, self.scope = text, 0, scope

    def _skip(self) -> None:
        while self.at < len(self.text) and self.text[self.at] == " ":
            self.at += 1

    def _take(self, literal: str) -> None:
        self._skip()
        assert self.text.startswith(literal, self.at), (self.text[self.at :], literal)
        self.at += len(literal)

    def sum(self) -> str:
        value = self.term()
        while True:
            self._skip()
            if not self.text.startswith("+", self.at):
                return value
            self.at += 1
            value += self.term()

    def term(self) -> str:
        self._skip()
        rest = self.text[self.at :]
        if rest.startswith("replace("):
            self.at += len("replace(")
            subject = self.sum()
            self._take(",")
            old = self.sum()
            self._take(",")
            new = self.sum()
            self._take(")")
            return subject.replace(old, new)
        if (m := _STRING.match(rest)) is not None:
            self.at += m.end()
            return re.sub(
                r"\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})", lambda e: chr(int(e.group(1) or e.group(2), 16)), m.group(1)
            )
        m = _NAME.match(rest)
        assert m is not None, f"not an expression pipegen writes: {rest!r}"
        self.at += m.end()
        if m.group(1) is not None:
            return str(self.scope["workflow.parameters"][m.group(1)])
        if m.group(2) is not None:
            return str(self.scope["inputs.parameters"][m.group(2)])
        return str(self.scope["workflow.name"])


def evaluate(expression: str, scope: dict[str, Any]) -> str:
    """The JSON text Argo writes for `toJson(...)` in scope {workflow.parameters, workflow.name, inputs.parameters}."""
    parser = _Parser(expression, scope)
    parser._take("toJson(")
    value = parser.sum()
    parser._take(")")
    assert parser.at == len(expression), expression[parser.at :]
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def substitute(manifest: str, scope: dict[str, Any]) -> str:
    """The manifest with every `{{=...}}` replaced by its value, `{{inputs.parameters.X}}` by the input's and
    `{{workflow.uid}}` by the run's uid (scope's "workflow.uid")."""
    text = EXPRESSION.sub(lambda m: evaluate(m.group(1), scope), manifest)
    text = re.sub(r"\{\{workflow\.uid\}\}", lambda m: str(scope["workflow.uid"]), text)
    return re.sub(
        r"\{\{inputs\.parameters\.([-A-Za-z0-9_]+)\}\}", lambda m: scope["inputs.parameters"][m.group(1)], text
    )
