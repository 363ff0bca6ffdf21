"""Validate loaded data against the spec models, turning pydantic errors into located diagnostics."""

from __future__ import annotations

import json
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from pipegen.diagnostics import Diagnostic, diag, did_you_mean
from pipegen.loader import PathKey, SourceMap
from pipegen.spec import FORMAT_VERSION, Spec
from pipegen.walk import unwrap

# pydantic error types that carry our own codes.
_CUSTOM_CODES = {
    "pg_name": "PG203",
    "pg_step_kind": "PG204",
    "pg_duration": "PG205",
    "pg_schedule": "PG206",
    "pg_threshold": "PG207",
    "pg_expression": "PG208",
    "pg_combination": "PG400",
    "pg_value": "PG202",
    "pg_limit": "PG210",
}


def parse_spec(data: dict[str, Any], smap: SourceMap) -> tuple[Spec | None, list[Diagnostic]]:
    """Validate data as a v1 spec; return the model, or None and every problem found."""
    version = data.get("pipegen")
    if version is None:
        return None, [diag("PG105", "missing format version 'pipegen: 1' at the top of the spec", smap.value(()))]
    if not isinstance(version, int) or isinstance(version, bool) or version != FORMAT_VERSION:
        return None, [
            diag(
                "PG105",
                f"unsupported format version {_short(version)}; this pipegen reads version {FORMAT_VERSION}",
                smap.value(("pipegen",)),
            )
        ]
    spec, diags = validate_model(Spec, data, smap)
    return (spec if isinstance(spec, Spec) else None), diags


def validate_model(
    model: type[BaseModel], data: Any, smap: SourceMap, prefix: PathKey = ()
) -> tuple[BaseModel | None, list[Diagnostic]]:
    """Validate data (found at prefix in the file) against model, with located diagnostics."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [_to_diagnostic(err, model, data, smap, prefix) for err in exc.errors(include_url=False)]


def _walk(loc: tuple[int | str, ...], data: Any) -> tuple[PathKey, bool, Any]:
    """Map a pydantic loc onto a data path, skipping union tags and other non-data segments."""
    path: list[str | int] = []
    node = data
    on_key = False
    for part in loc:
        if part == "[key]":
            on_key = True
            break
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
    return tuple(path), on_key, node


def _describe(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "spec"


def _step_into(tp: Any, part: str | int) -> Any:
    """The type found one pydantic loc segment below tp, or None."""
    tp = unwrap(tp)
    origin = get_origin(tp)
    if origin in (Union, UnionType):
        # A discriminated union: pydantic puts the tag (e.g. 'kubernetes') in the loc.
        for member in get_args(tp):
            member = unwrap(member)
            if isinstance(member, type) and issubclass(member, BaseModel):
                for field in member.model_fields.values():
                    if get_origin(field.annotation) is Literal and part in get_args(field.annotation):
                        return member
        return None
    if origin is list and isinstance(part, int):
        return get_args(tp)[0]
    if origin is dict and isinstance(part, str):
        return get_args(tp)[1]
    if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
        info = tp.model_fields.get(part)
        return info.annotation if info else None
    return None


def _known_keys(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed in the mapping at loc (pydantic's loc, tags included)."""
    tp: Any = root
    for part in loc:
        tp = _step_into(tp, part)
        if tp is None:
            return []
    tp = unwrap(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _to_diagnostic(err: ErrorDetails, root: type[BaseModel], data: Any, smap: SourceMap, prefix: PathKey) -> Diagnostic:
    kind = err["type"]
    loc = err["loc"]
    inner, on_key, node = _walk(loc, data)
    path = (*prefix, *inner)
    where = _describe(path)
    ctx = err.get("ctx") or {}

    if kind in _CUSTOM_CODES:
        hint = str(ctx.get("hint", ""))
        return diag(_CUSTOM_CODES[kind], err["msg"], smap.key(path) if on_key else smap.value(path), hint)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent = path[:-1] if path and path[-1] == key else path
        known = _known_keys(root, tuple(loc[:-1]))
        owner = _describe(parent)
        return diag("PG200", f"unknown key '{key}' in {owner}{did_you_mean(key, known)}", smap.key((*parent, key)))
    if kind == "missing":
        key = str(loc[-1])
        return diag("PG201", f"{where} is missing required key '{key}'", smap.value(path))
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = str(ctx.get("discriminator", "type")).strip("'")
        if kind == "union_tag_not_found":
            return diag("PG201", f"{where} is missing required key '{field}'", smap.value(path))
        tag = str(ctx.get("tag", ""))
        expected = str(ctx.get("expected_tags", ""))
        choices = [t.strip().strip("'") for t in expected.split(",")]
        return diag(
            "PG209",
            f"unknown {field} '{tag}' in {where}{did_you_mean(tag, choices)}",
            smap.value((*path, field)),
            f"use one of: {', '.join(choices)}",
        )
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        return diag("PG202", f"invalid value {_short(node)} for {where}: expected {expected}", smap.value(path))
    if kind == "string_pattern_mismatch":
        return diag(
            "PG202", f"invalid value {_short(node)} for {where}: must match {ctx.get('pattern')}", smap.value(path)
        )
    if kind == "too_short" and isinstance(node, list):
        return diag("PG202", f"{where} must not be empty", smap.value(path))
    message = err["msg"]
    message = message[:1].lower() + message[1:]
    hint = ""
    if kind == "string_type" and isinstance(node, bool | int | float):
        hint = f"quote the value to make it a string: '{_short(node)}'"
    return diag("PG202", f"invalid value {_short(node)} for {where}: {message}", smap.value(path), hint)


def _short(value: Any) -> str:
    """A value as YAML would spell it (true, null, 'text'), shortened for messages."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
