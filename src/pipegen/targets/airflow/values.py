"""Spec values as Python source for a DAG: literal text stays literal under Airflow's Jinja."""

from __future__ import annotations

from pipegen.expr import Template, parse_template
from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep, RetryPolicy, resolve_policy_defaults
from pipegen.targets.airflow.options import AirflowOptions
from pipegen.targets.airflow.view import timedelta_source
from pipegen.targets.airflow_expr import (
    jinja_text,
    literal_source,
    needs_literal,
    templated,
    uses_literal,
)


class ValueLowering:
    """The lowering's state (imports, helpers) and how it writes values; every user value passes through here."""

    def __init__(self, pipeline: Pipeline, options: AirflowOptions) -> None:
        self.p = pipeline
        self.options = options
        self.imports: set[str] = {"from airflow.sdk import DAG", "from datetime import timedelta"}
        self.helpers: set[str] = set()
        self.default_policy = resolve_policy_defaults(pipeline.spec)

    # ---- values ---------------------------------------------------------------------------
    def value(self, text: str) -> str:
        template = parse_template(text)
        if uses_literal(template):
            self.imports.add("from airflow.sdk import literal")
        self._macros(template)
        return templated(template)

    def _macros(self, template: Template) -> None:
        """What the template's references need in the module: os for ${env.X}, the run-date and secret macros."""
        if any(r.namespace == "env" for r in template.refs):
            self.imports.add("import os")
        if any(r.namespace == "run" and r.name == "date" for r in template.refs):
            self.helpers.add("run_date")
        if any(r.namespace == "secret" for r in template.refs):
            self.helpers.add("secret")

    def jinja(self, text: str) -> str:
        """A spec string as Jinja template text (not Python source), to be joined with other template text.

        Literal parts holding a brace or a line break become Jinja string literals, as in templated().
        """
        template = parse_template(text)
        self._macros(template)
        return jinja_text(template)

    def lit(self, text: str) -> str:
        """A plain spec string (no expressions) placed where Airflow renders templates."""
        return self.value(text.replace("${", "$${"))

    def literal(self, value: object) -> str:
        """A JSON-like value of plain spec strings (names, thresholds, options) in a templated field: never Jinja."""
        if needs_literal(value):
            self.imports.add("from airflow.sdk import literal")
        return literal_source(value)

    def lit_dict(self, mapping: dict[str, str]) -> str:
        """A dict of plain strings placed in a templated field (keys are not rendered by Airflow)."""
        return "{" + ", ".join(f"{py(k)}: {self.lit(v)}" for k, v in sorted(mapping.items())) + "}"

    def tracking_uri(self) -> str:
        return self.value(self.p.spec.mlflow.tracking_uri) if self.p.spec.mlflow.tracking_uri else py("")

    def policy_kwargs(self, policy: RetryPolicy, base: RetryPolicy | None) -> list[tuple[str, str]]:
        """Operator arguments for a retry policy; with base, only what differs from it."""
        out: list[tuple[str, str]] = []

        def differs(attr: str) -> bool:
            return base is None or getattr(policy, attr) != getattr(base, attr)

        if differs("retries"):
            out.append(("retries", py(policy.retries)))
        if differs("retry_delay"):
            out.append(("retry_delay", timedelta_source(policy.retry_delay)))
        if differs("backoff"):
            # Airflow 3 takes the backoff as a multiplier; 0 means a constant delay.
            out.append(("retry_exponential_backoff", "2.0" if policy.backoff == "exponential" else "0"))
        if differs("max_retry_delay") and policy.max_retry_delay is not None:
            out.append(("max_retry_delay", timedelta_source(policy.max_retry_delay)))
        if differs("timeout") and policy.timeout is not None:
            out.append(("execution_timeout", timedelta_source(policy.timeout)))
        return out

    def _policy(self, step: ResolvedStep) -> list[tuple[str, str]]:
        return self.policy_kwargs(step.policy, self.default_policy)
