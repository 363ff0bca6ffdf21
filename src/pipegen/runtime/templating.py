"""Rendering spec strings (`${params.X}`, `${run.id}`, `${run.date}`, `${env.X}`, `${secret.X}`) where a step runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipegen.expr import Lit, Template, parse_template
from pipegen.runtime.errors import RuntimeFailure


def secret_env_name(name: str) -> str:
    """The environment variable a secret is mounted as: PIPEGEN_SECRET_<NAME>."""
    return "PIPEGEN_SECRET_" + name.upper().replace("-", "_")


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Values:
    """What references resolve to in one run of one step."""

    params: Mapping[str, Any]
    run_id: str
    run_date: str
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def text(self, template: Template) -> str:
        """The template with every reference replaced by its value here."""
        out = []
        for part in template.parts:
            if isinstance(part, Lit):
                out.append(part.text)
            elif part.namespace == "params":
                out.append(_param_text(self.params[part.name]))
            elif part.namespace == "run":
                out.append(self.run_id if part.name == "id" else self.run_date)
            else:
                var = part.name if part.namespace == "env" else secret_env_name(part.name)
                if var not in self.environ:
                    raise RuntimeFailure(f"{part} needs the environment variable {var}, which is not set")
                out.append(self.environ[var])
        return "".join(out)

    def string(self, text: str) -> str:
        """Render one spec string."""
        return self.text(parse_template(text))

    def deep(self, value: Any) -> Any:
        """Render every string inside a JSON-like value."""
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        return value
