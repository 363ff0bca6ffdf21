"""The manifest as written: a header comment, then the documents as YAML with sorted keys."""

from __future__ import annotations

from typing import Any

import yaml

from pipegen.resolve import Pipeline
from pipegen.targets.base import header_lines


class _Dumper(yaml.SafeDumper):
    """SafeDumper without anchors/aliases (a shared dict is written in full each time, as a reader expects)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


HEADER_NOTE = [
    "# Apply with `kubectl apply -f` (or argo template create / argo cron create).",
    "# Runtime steps pass results as output parameters: the workflow's service account needs a Role allowing",
    "# create and patch on workflowtaskresults.argoproj.io (see docs/targets.md).",
]


def manifest_text(pipeline: Pipeline, documents: list[dict[str, Any]]) -> str:
    """The multi-document YAML: deterministic bytes for the same documents."""
    body = "---\n".join(
        yaml.dump(doc, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=120, default_flow_style=False)
        for doc in documents
    )
    return "\n".join([*header_lines(pipeline), *HEADER_NOTE]) + "\n---\n" + body
