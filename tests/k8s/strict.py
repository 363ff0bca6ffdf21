"""Strict validation of the custom resources pipegen generates, against what their projects publish.

- SparkApplication: the Spark Operator's own models (kubeflow-spark-api, pinned). They are OpenAPI-generated
  pydantic models that drop unknown keys while reading, so a document is also read and written back: any key the
  models do not know is missing from the round trip, and that difference is the error.
- RayJob: KubeRay publishes no Python models; its CRD's openAPIV3Schema (ray.io_rayjobs.v1.json beside this file,
  vendored from KubeRay 1.7.0 unchanged) is applied with jsonschema, every object that lists its properties closed
  with additionalProperties: false as the API server prunes (and `kubectl --validate=strict` refuses) unknown
  fields, except where the CRD says x-kubernetes-preserve-unknown-fields.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

RAYJOB_SCHEMA = Path(__file__).with_name("ray.io_rayjobs.v1.json")


class Invalid(ValueError):
    """The document is not what the resource's published API accepts."""


def _differences(given: Any, read: Any, path: str = "") -> list[str]:
    if isinstance(given, dict) and isinstance(read, dict):
        out = [f"{path}.{k}: unknown to the model" for k in given if k not in read]
        out += [f"{path}.{k}: added by the model" for k in read if k not in given]
        return out + [d for k in given if k in read for d in _differences(given[k], read[k], f"{path}.{k}")]
    if isinstance(given, list) and isinstance(read, list) and len(given) == len(read):
        return [d for i, (g, r) in enumerate(zip(given, read, strict=True)) for d in _differences(g, r, f"{path}[{i}]")]
    return [] if given == read and type(given) is type(read) else [f"{path}: {given!r} read as {read!r}"]


def validate_spark_application(document: dict[str, Any]) -> None:
    """Raise Invalid unless the models read the SparkApplication exactly (no unknown key, no changed value)."""
    from kubeflow_spark_api.models import SparkV1beta2SparkApplication
    from pydantic import ValidationError

    try:
        model = SparkV1beta2SparkApplication.from_dict(document)
    except ValidationError as exc:
        raise Invalid(str(exc)) from None
    assert model is not None
    problems = _differences(document, model.to_dict())
    if problems:
        raise Invalid("; ".join(problems))


def _closed(schema: Any) -> Any:
    """The schema with additionalProperties: false on each object that lists properties (and does not keep unknowns)."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) if k not in ("enum", "default", "example") else v for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def _rayjob_validator() -> jsonschema.protocols.Validator:
    schema = _closed(copy.deepcopy(json.loads(RAYJOB_SCHEMA.read_text(encoding="utf-8"))["openAPIV3Schema"]))
    # The API server sets these itself; a manifest may leave them out, but nothing else (metadata is free-form).
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    cls.check_schema(schema)
    return cls(schema)


def validate_ray_job(document: dict[str, Any]) -> None:
    """Raise Invalid with every error the strict RayJob schema finds."""
    errors = sorted(_rayjob_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise Invalid("; ".join(f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors))


def validate(document: dict[str, Any]) -> None:
    """A SparkApplication or a RayJob, by its kind."""
    validators = {"SparkApplication": validate_spark_application, "RayJob": validate_ray_job}
    validators[document["kind"]](document)
