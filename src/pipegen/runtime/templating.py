"""Rendering spec strings (`${params.X}`, `${run.id}`, `${run.date}`, `${env.X}`, `${secret.X}`) where a step runs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipegen.expr import Lit, Ref, Template, parse_template
from pipegen.runtime import redact
from pipegen.runtime.errors import RuntimeFailure


class SecretStore(Protocol):
    """Where ${secret.X} is looked up before the environment (AWS Secrets Manager in the Lambda handler)."""

    def lookup(self, name: str) -> str | None:
        """The secret's value; None when the store does not hold it (RuntimeFailure when it cannot answer)."""

    def where(self, name: str) -> str:
        """Where the store looked, for messages: e.g. "AWS Secrets Manager secret 'pipegen/X'"."""


# Set per invocation by the Lambda handler; None elsewhere, where secrets are PIPEGEN_SECRET_<X> variables.
_store: ContextVar[SecretStore | None] = ContextVar("pipegen_secret_store", default=None)


@contextlib.contextmanager
def secret_store(store: SecretStore) -> Iterator[None]:
    """Look secrets up in store (then the environment) while the block runs."""
    token = _store.set(store)
    try:
        yield
    finally:
        _store.reset(token)


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

    def __post_init__(self) -> None:
        # Wherever spec strings are rendered, library logs are redacted too; and jobs inherit the
        # PIPEGEN_SECRET_* variables and may print them before (or without) rendering them.
        redact.install_log_redaction()
        redact.register_environment(self.environ)

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
            elif part.namespace == "secret":
                out.append(self.secret(part))
            else:
                if part.name not in self.environ:
                    raise RuntimeFailure(f"{part} needs the environment variable {part.name}, which is not set")
                out.append(self.environ[part.name])
        return "".join(out)

    def secret(self, ref: Ref) -> str:
        """A secret's value (the store's, else PIPEGEN_SECRET_<X>), registered for redaction before it is used."""
        store = _store.get()
        value = store.lookup(ref.name) if store is not None else None
        if value is None:
            var = secret_env_name(ref.name)
            if var not in self.environ:
                if store is not None:
                    raise RuntimeFailure(f"{ref} is neither in {store.where(ref.name)} nor in the environment ({var})")
                raise RuntimeFailure(f"{ref} needs the environment variable {var}, which is not set")
            value = self.environ[var]
        redact.register(value)
        return value

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
