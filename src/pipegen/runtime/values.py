"""Values that generated pipelines resolve inside the runtime, where the job runs."""

from __future__ import annotations

import os
from typing import Any

ENV_REF = "$env"


def resolve_env_refs(value: Any) -> Any:
    """Replace every {"$env": NAME} in a JSON-like value with the environment variable NAME.

    Targets use it for ${env.X} and for ${secret.X} (a secret mounted as an environment variable), so
    a secret's value never appears in a pipeline definition or its rendered arguments.
    """
    if isinstance(value, dict):
        if set(value) == {ENV_REF}:
            name = str(value[ENV_REF])
            if name not in os.environ:
                from pipegen.runtime.errors import RuntimeFailure

                raise RuntimeFailure(f"environment variable {name} is not set in this job")
            return os.environ[name]
        return {k: resolve_env_refs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env_refs(v) for v in value]
    return value
