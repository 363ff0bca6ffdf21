"""`pipegen init`: a starter spec for one backend type, from templates/init/."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pipegen.render import render, templates_dir

SCHEMA_FILE = "schema/pipegen-v1.schema.json"
_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}\Z")
# The modeline is a YAML comment: anything that could end it or the line is refused.
_SCHEMA_REF = re.compile(r"[^\s#]+\Z")


def backend_types() -> list[str]:
    """The backend types that have a starter: one template each under templates/init/backends/."""
    return sorted(p.name.removesuffix(".yaml.j2") for p in (templates_dir() / "init" / "backends").glob("*.yaml.j2"))


def check_name(name: str) -> str | None:
    """Why name cannot name a pipeline, or None when it can."""
    if _NAME.match(name):
        return None
    return f"'{name}' is not a pipeline name: use [a-z][a-z0-9-]*, at most 63 characters"


def schema_reference(spec_path: Path, schema: str) -> str:
    """The modeline's $schema: a URL as given, a path relative to the spec's directory (how yaml-language-server reads it)."""
    if "://" in schema or not schema:
        return schema
    target = Path(schema).resolve()
    return Path(os.path.relpath(target, spec_path.resolve().parent)).as_posix()


def starter_spec(name: str, backend: str, schema: str = "") -> str:
    """The text of a starter spec; name and schema are checked by the caller (check_name, _SCHEMA_REF)."""
    if check_name(name) is not None or (schema and not _SCHEMA_REF.match(schema)):
        raise ValueError(f"unsafe starter values: {name!r}, {schema!r}")
    return render("init/spec.yaml.j2", name=name, backend=backend, schema=schema)


def check_schema_reference(schema: str) -> str | None:
    """Why schema cannot go in a modeline, or None when it can."""
    if _SCHEMA_REF.match(schema):
        return None
    return f"'{schema}' cannot go in a yaml-language-server modeline: give a path or URL without spaces or '#'"
