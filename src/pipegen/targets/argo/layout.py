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
    "# Apply with `kubectl apply -f` (or argo template create / argo cron create) in the namespace below.",
    "# Argo's executor records each pod's outputs as a WorkflowTaskResult: the service account of every pod (the",
    "# workflow's, and a kubernetes backend's service_account) needs a Role bound to it with",
    "#   rules: [{apiGroups: [argoproj.io], resources: [workflowtaskresults], verbs: [create, patch]}]",
]


def manifest_text(pipeline: Pipeline, documents: list[dict[str, Any]]) -> str:
    """The multi-document YAML: deterministic bytes for the same documents."""
    body = "---\n".join(
        yaml.dump(doc, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=120, default_flow_style=False)
        for doc in documents
    )
    return "\n".join([*header_lines(pipeline), *HEADER_NOTE]) + "\n---\n" + body
