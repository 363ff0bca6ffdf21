"""Argo names for spec names, the reserved names of pipegen's own tasks, and text that Argo and the kubelet keep."""

from __future__ import annotations

import hashlib
import json

from pipegen.targets.kfp.names import escaped_json

# Every task and template pipegen adds starts with this; a spec step may not (checks.names).
RESERVED = "pipegen-"
DAG = "pipegen-dag"
CONTEXT = "pipegen-context"
EXIT = "pipegen-exit"
NOTIFY_FAILURE = "pipegen-notify-failure"
NOTIFY_SUCCESS = "pipegen-notify-success"
# Where a runtime container writes its JSON result, read back as the output parameter `result`.
RESULT_PATH = "/tmp/pipegen/result.json"
RUN_DATE_PATH = "/tmp/pipegen/run-date"
# Argo 4 refuses CronWorkflow names longer than this (it appends a timestamp to name the workflows it creates).
MAX_CRON_NAME = 52


def task_name(step: str) -> str:
    """The DAG task (and template) name of a spec step: Argo forbids '_' there, and spec names have no '-'."""
    return step.replace("_", "-")


def start_run_name(step: str) -> str:
    """The task creating the MLflow run of a training step."""
    return f"{RESERVED}run-{task_name(step)}"


def service_name(step: str) -> str:
    """The task creating the headless Service of a multi-node step on an Indexed Job."""
    return f"{RESERVED}svc-{task_name(step)}"


def clock_name(step: str) -> str:
    """The task taking the time a waiting gate's wait begins (the anchor its retries resume from)."""
    return f"{RESERVED}clock-{task_name(step)}"


def cron_name(name: str) -> str:
    """The CronWorkflow's name: the pipeline's, or, past 52 characters, a prefix plus a digest of the whole."""
    if len(name) <= MAX_CRON_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_CRON_NAME - 9].rstrip('-')}-{digest}"


def runtime_json(value: object) -> str:
    """JSON for a runtime container's argument: '{', '}' and '$' inside strings are \\u escapes.

    Argo substitutes `{{...}}` in every string of a template and the kubelet expands `$(VAR)` in args; with
    braces (kfp's escaped_json) and dollars escaped, no spec text can form either. JSON's own structure
    holds no '$' and never opens '{{'.
    """
    return escaped_json(value).replace("$", "\\u0024")


def kubelet_text(text: str) -> str:
    """text as a container arg or env value the kubelet keeps: it reads '$$' as '$' (and '$(VAR)' as VAR's value)."""
    return text.replace("$", "$$")


def quoted(text: str) -> str:
    """A JSON string literal (for values spliced between runtime_json pieces)."""
    return json.dumps(text)
