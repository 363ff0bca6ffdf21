"""Names and text helpers every part of the KFP target shares: reserved inputs, identifiers, escaped JSON."""

from __future__ import annotations

import contextlib
import json
import keyword
import re

from pipegen.expr import Ref, parse_template
from pipegen.resolve import ResolvedStep

# Inputs every generated component takes; user parameter names may not collide with them.
RUN_KEY, RUN_DATE = "pipegen_run_key", "pipegen_run_date"
# The constant input holding a runtime step's settings (its JSON, braces escaped: escaped_json).
SPEC = "pipegen_spec"
# A waiting gate's anchor: when its wait began (see Lowering._gate).
WAIT_STARTED = "pipegen_wait_started"
# kfp.local replaces this path (kfp.dsl.constants.WORKSPACE_MOUNT_PATH) in every command and input string.
WORKSPACE_PATH = "/kfp-workspace"
# start_run's outputs a training, evaluate or promote task takes. Not the tracking URI: an output parameter is
# stored in ML Metadata and shown in the UI, and the URI may hold credentials; each task renders it itself.
MLFLOW_INPUTS = ("pipegen_mlflow_run_id", "pipegen_mlflow_experiment_id")
_TAKEN = {
    "dsl",
    "kubernetes",
    "NamedTuple",
    "BASE_IMAGE",
    "pipeline",
    "pipegen_start_run",
    "pipegen_context",
    "pipegen_clock",
    "pipegen_notify",
    "pipegen_close_run",
    "json",
    # The runtime's action components (components.action_name), which every step of their kind calls.
    *(f"pipegen_{kind}" for kind in ("gate", "evaluate", "promote")),
    *(
        f"pipegen_{kind}{train}"
        for kind in ("local", "aws_batch", "sagemaker", "spark", "ray")
        for train in ("", "_train")
    ),
}


def escaped_json(value: object, compact: bool = False) -> str:
    """Canonical JSON in which every brace inside a string is a \\u escape.

    KFP launchers substitute `{{$...}}` placeholders anywhere in a component's command, including the
    embedded source, and kfp.local the path /kfp-workspace; with braces and slashes escaped, no user text can
    form one. Structural braces stay as they are
    (JSON objects never open with `{{`). compact: no spaces after separators (a task's spec input, copied into
    the IR once per task, where spaces also let the YAML writer fold it over several indented lines).
    """
    comma, colon = (",", ":") if compact else (", ", ": ")
    try:
        marked = _marked(value)
    except _Unmarkable:
        return _escaped_json(value, comma, colon)
    # One json.dumps for the whole value (a call per string made this a fifth of a 1,000-step compile): the
    # strings' braces and workspace slashes travel as private-use characters, which become the escapes after.
    text = json.dumps(marked, ensure_ascii=False, sort_keys=True, separators=(comma, colon))
    return text.translate(_UNMARK)


# Private-use characters standing for a string's '{', '}' and the '/' of /kfp-workspace while json.dumps runs.
_UNMARK = str.maketrans({"\ue000": "\\u007b", "\ue001": "\\u007d", "\ue002": "\\u002f"})
_MARK = str.maketrans({"{": "\ue000", "}": "\ue001"})
_WORKSPACE_MARKED = "\ue002" + WORKSPACE_PATH[1:]
_HAS_MARK = re.compile("[\ue000-\ue002]").search
_KEY_NEEDS_ESCAPE = re.compile("[{}\ue000-\ue002]|" + re.escape(WORKSPACE_PATH)).search


class _Unmarkable(Exception):
    """A value the one-pass path cannot take exactly: _escaped_json writes it."""


def _marked(value: object) -> object:
    """value with its strings' braces (and /kfp-workspace's slash) as private-use marks; dict keys must be plain."""
    if isinstance(value, str):
        if _HAS_MARK(value):
            raise _Unmarkable
        return value.translate(_MARK).replace(WORKSPACE_PATH, _WORKSPACE_MARKED)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            # A mark in a key would change json.dumps' key order; such keys (and non-string ones) take the slow path.
            if not isinstance(k, str) or _KEY_NEEDS_ESCAPE(k):
                raise _Unmarkable
            out[k] = _marked(v)
        return out
    if isinstance(value, list | tuple):
        return [_marked(v) for v in value]
    return value


def _escaped_json(value: object, comma: str, colon: str) -> str:
    """escaped_json, one value at a time (the reference the one-pass path must equal)."""
    if isinstance(value, dict):
        items = sorted(value.items())
        return (
            "{"
            + comma.join(
                f"{_escaped_json(str(k), comma, colon)}{colon}{_escaped_json(v, comma, colon)}" for k, v in items
            )
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + comma.join(_escaped_json(v, comma, colon) for v in value) + "]"
    if isinstance(value, str):
        # kfp.local also replaces the text /kfp-workspace anywhere in a command.
        text = json.dumps(value, ensure_ascii=False).replace("{", "\\u007b").replace("}", "\\u007d")
        return text.replace(WORKSPACE_PATH, "\\u002f" + WORKSPACE_PATH[1:])
    return json.dumps(value)


def kfp_text(text: str) -> str:
    """text with '%', '{' and the '/' of /kfp-workspace percent-encoded: no kfp placeholder (`{{$...}}`,
    kfp.local's workspace path) can form in it; the container's sh decodes it (containers._DECODE)."""
    encoded = text.replace("%", "%25").replace("{", "%7B")
    return encoded.replace(WORKSPACE_PATH, "%2F" + WORKSPACE_PATH[1:])


def ident(name: str) -> str:
    """A Python identifier for a step's component function."""
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in _TAKEN:
        return name + "_"
    return name


def is_secret(value: str) -> bool:
    ref = parse_template(value).single_ref
    return ref is not None and ref.namespace == "secret"


def step_refs(step: ResolvedStep) -> list[Ref]:
    """Every reference in a step's strings and its backend's."""
    refs: list[Ref] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                refs.extend(parse_template(value).refs)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(step.body.model_dump())
    if step.backend is not None:
        walk(step.backend.model_dump())
    return refs
