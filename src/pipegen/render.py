"""The one Jinja environment: fixed settings, and the only filters that put user values into output."""

from __future__ import annotations

import functools
import json
import keyword
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2


def templates_dir() -> Path:
    """Templates ship inside the wheel as pipegen/templates; a checkout keeps them at the repo root."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "templates"


def py(value: Any) -> str:
    """A Python literal for value: repr for scalars, dicts and sets sorted so output is deterministic."""
    if value is None or isinstance(value, bool | int | str):
        return repr(value)
    if isinstance(value, float):
        return (
            repr(value) if value == value and value not in (float("inf"), float("-inf")) else f"float({str(value)!r})"
        )
    if isinstance(value, date):
        return repr(value.isoformat())
    if isinstance(value, list | tuple):
        items = ", ".join(py(v) for v in value)
        return f"[{items}]" if isinstance(value, list) else f"({items}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py(k)}: {py(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))) + "}"
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(py(v) for v in sorted(value)) + "}" if value else "set()"
    raise TypeError(f"no Python literal for {type(value).__name__}")


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def comment_text(value: str) -> str:
    """Text that stays inside one `#` comment: every character that could end the line is escaped.

    A spec's file name is user text like any other: `evil<newline>import os...` must not become a line
    of code in the generated module (Python ends a comment at \\n or \\r; escaping every non-printable
    character keeps the header readable and one line in any editor too).
    """
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in value)


def ident(value: str) -> str:
    """Check that value is a safe Python identifier and return it unchanged."""
    if not _IDENT.match(value) or keyword.iskeyword(value) or keyword.issoftkeyword(value):
        raise ValueError(f"not a safe Python identifier: {value!r}")
    return value


def to_json(value: Any, indent: int | None = None) -> str:
    """JSON text for value, keys sorted."""
    return json.dumps(value, indent=indent, sort_keys=True, ensure_ascii=False)


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment, built once per process (templates compile once)."""
    # Imported here: the filters above serve every target, and commands that render nothing
    # (validate, init's argument parsing) should not pay for Jinja at start-up.
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(py=py, ident=ident, json=to_json)
    return env


def render(template: str, **context: Any) -> str:
    """Render templates/<template> with context."""
    return environment().get_template(template).render(**context)
