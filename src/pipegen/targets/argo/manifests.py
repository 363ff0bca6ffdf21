"""Kubernetes objects a step creates through an Argo `resource` template (SparkApplication, RayJob).

Argo substitutes `{{...}}` in the manifest's text before it parses it, with no escape. So the manifest is JSON that
pipegen writes itself: literal spec text is JSON-escaped (checks refuse `{{` in it), and a string holding run-time
values is one Argo expression, `{{=toJson('literal' + workflow.parameters.p + ...)}}`, which Argo replaces by
that string's JSON, quotes included: a submitted value holding quotes, a line break or `{{` stays one string and
cannot add a field to the object. The literal pieces of an expression are expr string literals with every
character but letters, digits and spaces as a \\u escape (no `}}` can close the tag early).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

from pipegen.expr import Lit, Ref, parse_template
from pipegen.k8s.pods import StepObject
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.targets.argo.containers import EXPERIMENT_INPUT, RUN_INPUT
from pipegen.targets.argo.layout import Block
from pipegen.targets.argo.names import kubelet_text
from pipegen.targets.argo.options import ArgoOptions
from pipegen.targets.argo.refs import RUN_DATE_INPUT, input_param
from pipegen.targets.argo.runtime import mlflow_env, secret_env

_TOKEN = "\x00pipegen-value-{}\x00"
_SQUOTE = "'\"'\"'"  # a ' inside a single-quoted shell word: close, a double-quoted ', open again


def _literal(value: str) -> str:
    """The text of a spec string without references."""
    return "".join(p.text for p in parse_template(value).parts if isinstance(p, Lit))


def expr_literal(text: str) -> str:
    """An expr string literal for text: letters, digits and spaces as they are, every other character escaped."""
    out = []
    for ch in text:
        if ch.isascii() and (ch.isalnum() or ch == " "):
            out.append(ch)
        elif ord(ch) > 0xFFFF:
            out.append(f"\\U{ord(ch):08x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "'" + "".join(out) + "'"


class ArgoValues:
    """PodValues for Argo: literal text as it is, text with run-time values as a token for an Argo expression."""

    def __init__(self) -> None:
        self.expressions: dict[str, str] = {}
        self.uses_run_date = False

    def _pieces(self, value: str, literal: Any, param: Any, quote: str = "") -> list[str]:
        """value as expr pieces: literal parts as literal(part) in expr literals, references as param(reference)."""
        pieces = [expr_literal(quote)] if quote else []
        for part in parse_template(value).parts:
            pieces.append(expr_literal(literal(part.text)) if isinstance(part, Lit) else self._ref(part, param))
        if quote:
            pieces.append(expr_literal(quote))
        return pieces

    def _token(self, pieces: list[str]) -> str:
        token = _TOKEN.format(len(self.expressions))
        self.expressions[token] = "{{=toJson(" + " + ".join(p for p in pieces if p != "''") + ")}}"
        return token

    def _ref(self, ref: Ref, param: Any) -> str:
        # checks.containers and resource_checks refuse ${env.X} and ${secret.X} here (a whole secret env value is a
        # secretKeyRef, which pods.env_entries writes before any text reaches this).
        if ref.namespace == "params":
            return str(param(f"workflow.parameters.{ref.name}"))
        assert ref.namespace == "run", ref
        if ref.name == "id":
            return "workflow.name"  # a DNS name: nothing to quote
        self.uses_run_date = True
        return f"inputs.parameters['{RUN_DATE_INPUT}']"  # YYYY-MM-DD: nothing to quote

    def _value(self, value: str, literal: Any, param: Any) -> str:
        template = parse_template(value)
        if not template.refs:
            return "".join(literal(p.text) for p in template.parts if isinstance(p, Lit))
        return self._token(self._pieces(value, literal, param))

    def text(self, value: str) -> str:
        """Text nothing but Spark or KubeRay reads."""
        return self._value(value, lambda t: t, lambda p: p)

    def pod_text(self, value: str) -> str:
        """A container's argument or env value: every '$' doubled, which the kubelet reads as one."""
        return self._value(value, kubelet_text, lambda p: f"replace({p}, '$', '$$')")

    def shell_line(self, words: Sequence[str]) -> str:
        """Words as one POSIX shell command line in a container's argument (KubeRay's submitter runs it with bash):
        each word single-quoted where it needs to be, every '$' doubled for the kubelet."""
        if not any(parse_template(w).refs for w in words):
            return kubelet_text(shlex.join(_literal(w) for w in words))
        pieces: list[str] = []
        for i, word in enumerate(words):
            if i:
                pieces.append(expr_literal(" "))
            if not parse_template(word).refs:
                pieces.append(expr_literal(kubelet_text(shlex.quote(_literal(word)))))
                continue
            pieces += self._pieces(
                word,
                lambda t: kubelet_text(t.replace("'", _SQUOTE)),
                lambda p: f"replace(replace({p}, {expr_literal(chr(39))}, {expr_literal(_SQUOTE)}), '$', '$$')",
                quote="'",
            )
        return self._token(pieces)

    def manifest(self, document: dict[str, Any]) -> str:
        """The object as the manifest's JSON text, each token replaced by its expression (the whole JSON string)."""
        text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
        for token, expression in self.expressions.items():
            quoted = json.dumps(token)
            # A value shared by several places (the env of a Ray cluster's head and workers) is there each time.
            assert quoted in text, (token, text)
            text = text.replace(quoted, expression)
        return text + "\n"


def run_env(pipeline: Pipeline, options: ArgoOptions, values: ArgoValues) -> list[dict[str, Any]]:
    """A training step's MLflow env in an object's pods: start_run's ids as template inputs, the tracking URI as
    text or its secret, and targets.argo.mlflow_secret / mlflow_config_map."""
    env: list[dict[str, Any]] = [
        {"name": "MLFLOW_EXPERIMENT_ID", "value": input_param(EXPERIMENT_INPUT)},
        {"name": "MLFLOW_RUN_ID", "value": input_param(RUN_INPUT)},
    ]
    uri = pipeline.tracking_uri
    # Exactly ${env.MLFLOW_TRACKING_URI} is the image's own variable (checks refuse other ${env.X}): not set here.
    if uri is not None and not any(r.namespace == "env" for r in uri.refs):
        ref = uri.single_ref
        if ref is not None and ref.namespace == "secret":
            env.append(secret_env("MLFLOW_TRACKING_URI", ref.name))
        else:
            assert pipeline.spec.mlflow.tracking_uri is not None
            env.append({"name": "MLFLOW_TRACKING_URI", "value": values.pod_text(pipeline.spec.mlflow.tracking_uri)})
    taken = {e["name"] for e in env}
    return env + [e for e in mlflow_env(options) if e["name"] not in taken]


def step_object(
    pipeline: Pipeline, options: ArgoOptions, step: ResolvedStep, trains: bool
) -> tuple[StepObject, ArgoValues]:
    """The builders' inputs for one step, and the values object that holds its expressions."""
    values = ArgoValues()
    made = StepObject(
        pipeline=pipeline.name,
        step=step.name,
        values=values,
        run_env=run_env(pipeline, options, values) if trains else (),
    )
    return made, values


def resource(manifest: str, success: str, failure: str) -> dict[str, Any]:
    """A resource template's `resource`: create the object, owned by the workflow, and wait for its conditions.

    successCondition and failureCondition are label selectors over the object's JSON: each comma-separated
    requirement of failureCondition fails the step on its own, all of successCondition's must hold.
    """
    return {
        "action": "create",
        # Deleted with the workflow (the object lives in the workflow's namespace: checks make them agree).
        "setOwnerReference": True,
        "successCondition": success,
        "failureCondition": failure,
        "manifest": Block(manifest),
    }
