"""`pipegen init`: a starter spec for one backend type, from templates/init/."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pipegen.render import render, templates_dir

SCHEMA_FILE = "schema/pipegen-v1.schema.json"
# The modeline is a YAML comment: anything that could end it or the line is refused.
_SCHEMA_REF = re.compile(r"[^\s#]+\Z")
# KFP and Argo have no usable default runtime image (targets.kfp.base_image, targets.argo.runtime_image):
# starters they can run name an example one.
EXAMPLE_KFP_IMAGE = "registry.example.com/ml/pipegen-runtime:0.1"


def backend_types() -> list[str]:
    """The backend types that have a starter: one template each under templates/init/backends/."""
    return sorted(p.name.removesuffix(".yaml.j2") for p in (templates_dir() / "init" / "backends").glob("*.yaml.j2"))


def _problem(name: str, schema: str) -> str | None:
    """Why name or the modeline's schema reference cannot go into a starter, or None when both can."""
    from pipegen.spec import MAX_NAME, PIPELINE_NAME

    if not re.fullmatch(PIPELINE_NAME, name) or len(name) > MAX_NAME:
        return f"'{name}' is not a pipeline name: use {PIPELINE_NAME}, at most {MAX_NAME} characters"
    if schema and not _SCHEMA_REF.match(schema):
        return f"'{schema}' cannot go in a yaml-language-server modeline: give a path or URL without spaces or '#'"
    return None


def schema_reference(spec_path: Path, schema: str) -> str:
    """The modeline's $schema: a URL as given, a path relative to the spec's directory (how yaml-language-server reads it)."""
    if "://" in schema or not schema:
        return schema
    target = Path(schema).resolve()
    return Path(os.path.relpath(target, spec_path.resolve().parent)).as_posix()


def starter_spec(name: str, backend: str, schema: str = "") -> str:
    """The text of a starter spec; ValueError says why name or schema (as the modeline holds it) cannot be used."""
    problem = _problem(name, schema)
    if problem:
        raise ValueError(problem)
    from pipegen.targets import available

    kfp = available().get("kfp")
    kfp_image = EXAMPLE_KFP_IMAGE if kfp is not None and backend in kfp.support.backends else ""
    argo = available().get("argo")
    argo_image = EXAMPLE_KFP_IMAGE if argo is not None and backend in argo.support.backends else ""
    return render(
        "init/spec.yaml.j2", name=name, backend=backend, schema=schema, kfp_image=kfp_image, argo_image=argo_image
    )
