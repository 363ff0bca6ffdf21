"""The JSON Schema of spec format v1, for editors and CI."""

from __future__ import annotations

import json

from pipegen.spec import Spec

SCHEMA_ID = "https://pipegen.dev/schema/pipegen-v1.schema.json"


def json_schema() -> dict[str, object]:
    """The JSON Schema (draft 2020-12) generated from the spec models."""
    schema = Spec.model_json_schema()
    # `schedule: "0 2 * * *"` is shorthand for the mapping form; the models accept it before validation.
    properties = schema["properties"]
    properties["schedule"] = {
        "anyOf": [{"type": "string", "description": "cron expression or preset"}, {"$ref": "#/$defs/Schedule"}],
        "description": "When the pipeline runs; omitted means manual trigger only.",
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "pipegen pipeline spec, format 1",
    }


def schema_text() -> str:
    """The schema as canonical JSON text (what `pipegen schema` prints and schema/ holds)."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
