"""Walk a validated spec for the strings that may hold ${...} expressions."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from pipegen.loader import PathKey
from pipegen.spec import _check_template


def _is_template(annotation: Any, metadata: list[Any]) -> bool:
    items = list(metadata)
    if get_origin(annotation) is Annotated:
        items.extend(get_args(annotation)[1:])
    return any(getattr(m, "func", None) is _check_template for m in items)


@functools.cache
def _holds_template(annotation: Any) -> bool:
    """A string of this type (or of its Optional's inner type) is a template: asked once per type, not per value."""
    return _is_template(annotation, []) or _is_template(_optional_inner(annotation), [])


@functools.cache
def _fields(model: type[BaseModel]) -> tuple[tuple[str, Any, bool], ...]:
    """Each field of a model class: its name, its type, and whether a string there is a template."""
    return tuple(
        (name, field.annotation, _is_template(field.annotation, list(field.metadata)))
        for name, field in model.model_fields.items()
    )


def unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional from a type so only its structure is left."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def iter_templates(model: BaseModel, path: PathKey = ()) -> Iterator[tuple[PathKey, str]]:
    """Yield (data path, text) for every template string in a model, in field order."""
    for name, annotation, template in _fields(type(model)):
        value = getattr(model, name)
        if isinstance(value, str):
            if template or _holds_template(annotation):
                yield (*path, name), value
        else:
            yield from _walk(value, annotation, (*path, name))


def _walk(value: Any, annotation: Any, path: PathKey) -> Iterator[tuple[PathKey, str]]:
    if value is None:
        return
    if isinstance(value, BaseModel):
        yield from iter_templates(value, path)
        return
    if isinstance(value, str):
        if _holds_template(annotation):
            yield path, value
        return
    inner = unwrap(annotation)
    if isinstance(value, list):
        item_type = get_args(inner)[0] if get_args(inner) else Any
        for i, item in enumerate(value):
            yield from _walk(item, item_type, (*path, i))
    elif isinstance(value, dict):
        args = get_args(inner)
        value_type = args[1] if len(args) == 2 else Any
        for key, item in value.items():
            yield from _walk(item, value_type, (*path, key))


def _optional_inner(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return None
