"""Expressions inside spec strings: `${params.X}`, `${run.id}`, `${run.date}`, `${env.X}`, `${secret.X}`."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

Namespace = Literal["params", "run", "env", "secret"]
NAMESPACES: tuple[Namespace, ...] = ("params", "run", "env", "secret")
RUN_FIELDS = ("date", "id")

_NAME = {
    "params": re.compile(r"[a-z_][a-z0-9_]*\Z"),
    "env": re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z"),
    "secret": re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z"),
}


@dataclass(frozen=True)
class Lit:
    """Literal text, to be emitted exactly as written."""

    text: str


@dataclass(frozen=True)
class Ref:
    """A reference each target lowers to its own native form."""

    namespace: Namespace
    name: str

    def __str__(self) -> str:
        return "${" + f"{self.namespace}.{self.name}" + "}"


Part = Lit | Ref


@dataclass(frozen=True)
class Template:
    """A string split into literal text and references."""

    parts: tuple[Part, ...]

    @functools.cached_property
    def refs(self) -> tuple[Ref, ...]:
        """The references in order of appearance."""
        return tuple(p for p in self.parts if isinstance(p, Ref))

    @property
    def is_literal(self) -> bool:
        """True when the string holds no reference."""
        return not self.refs

    @property
    def single_ref(self) -> Ref | None:
        """The reference when the whole string is exactly one reference."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Ref):
            return self.parts[0]
        return None

    def literal_text(self) -> str:
        """The text with each reference written back in ${...} form (for messages)."""
        return "".join(p.text if isinstance(p, Lit) else str(p) for p in self.parts)


class ExpressionError(ValueError):
    """A malformed ${...} expression; offset is the 0-based index in the string."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


_OPEN = re.compile(r"\$\$\{|\$\{")


@functools.lru_cache(maxsize=4096)
def parse_template(text: str) -> Template:
    """Split text into literals and references; `$${` stands for a literal `${`."""
    # Cached: checks and every target parse the same strings again; Template is immutable.
    parts: list[Part] = []
    buf: list[str] = []
    i = 0
    while (found := _OPEN.search(text, i)) is not None:
        buf.append(text[i : found.start()])
        if found.group() == "$${":
            buf.append("${")
            i = found.end()
            continue
        start = found.start()
        end = text.find("}", start + 2)
        if end < 0:
            raise ExpressionError("unclosed '${' (missing '}')", start)
        ref = _parse_ref(text[start + 2 : end].strip(), start)
        if literal := "".join(buf):
            parts.append(Lit(literal))
        buf = []
        parts.append(ref)
        i = end + 1
    buf.append(text[i:])
    if literal := "".join(buf):
        parts.append(Lit(literal))
    return Template(tuple(parts))


def _parse_ref(body: str, offset: int) -> Ref:
    prefix, dot, name = body.partition(".")
    if prefix not in NAMESPACES:
        raise ExpressionError(
            f"unknown expression namespace '{prefix}' in '${{{body}}}' (expected one of: {', '.join(NAMESPACES)})",
            offset,
        )
    namespace = prefix
    if not dot or not name:
        raise ExpressionError(f"'${{{body}}}' needs a name after '{namespace}.'", offset)
    if namespace == "run":
        if name not in RUN_FIELDS:
            raise ExpressionError(f"unknown run field '{name}' (expected: {', '.join(RUN_FIELDS)})", offset)
    elif not _NAME[namespace].match(name):
        raise ExpressionError(f"invalid {namespace} name '{name}' in '${{{body}}}'", offset)
    return Ref(namespace, name)
