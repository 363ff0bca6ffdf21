"""Lowering spec strings to Airflow template strings, keeping literal text literal under Jinja."""

from __future__ import annotations

from typing import Any

from pipegen.expr import Lit, Ref, Template
from pipegen.render import py

# Airflow renders every string in a templated field with Jinja. Jinja acts on these openers, and it
# also rewrites line endings ('\r\n' and '\r' become '\n'), so text holding them is protected too.
_JINJA_OPENERS = ("{{", "{%", "{#", "\r", "\n")
# The DAG's macro for ${run.date}: the run's date in the schedule's timezone.
RUN_DATE_MACRO = "pipegen_run_date"
# The DAG's macro for a SageMaker training job name: one per run and step, as the runtime derives it.
JOB_NAME_MACRO = "pipegen_job_name"
# The DAG's macro for ${secret.X}: the Airflow Variable X, masked in logs and rendered fields.
SECRET_MACRO = "pipegen_secret"


def jinja_string_literal(text: str) -> str:
    """A Jinja string literal that evaluates to exactly text (Jinja unescapes with 'unicode-escape')."""
    return "'" + text.encode("unicode_escape").decode("ascii").replace("'", "\\'") + "'"


def ref_expression(ref: Ref) -> str:
    """The Jinja expression an Airflow task renders for a reference."""
    if ref.namespace == "params":
        return f"params[{jinja_string_literal(ref.name)}]"
    if ref.namespace == "run":
        # Not `ds`: that is the logical date in UTC, and absent for a run without a logical date.
        return f"{RUN_DATE_MACRO}(dag_run)" if ref.name == "date" else "run_id"
    if ref.namespace == "env":
        # The worker's environment at render time, through the DAG's env_var macro.
        return f"env_var({jinja_string_literal(ref.name)})"
    # Secrets live in Airflow Variables (and through them in any configured secrets backend), read by a
    # macro that masks the value: Airflow masks a Variable only when its name sounds secret.
    return f"{SECRET_MACRO}({jinja_string_literal(ref.name)})"


def templated(template: Template) -> str:
    """Python source for a value placed in a templated field.

    Literal text without Jinja openers stays a plain string; literal text with them is wrapped in
    airflow.sdk.literal(); text mixing references and literals becomes a Jinja template in which
    every literal holding a brace is emitted as a Jinja string literal.
    """
    if template.is_literal:
        text = template.literal_text()
        if any(opener in text for opener in _JINJA_OPENERS):
            return f"literal({py(text)})"
        return py(text)
    return py(jinja_text(template))


def jinja_text(template: Template) -> str:
    """A template as Jinja template text: references as expressions, literal parts holding a brace or a line
    break as Jinja string literals (so no Jinja can form from them), the rest as they are."""
    out = []
    for part in template.parts:
        if isinstance(part, Ref):
            out.append("{{ " + ref_expression(part) + " }}")
        elif any(c in part.text for c in "{}\r\n"):
            out.append("{{ " + jinja_string_literal(part.text) + " }}")
        else:
            out.append(part.text)
    return "".join(out)


def literal_source(value: Any) -> str:
    """Python source for a JSON-like value placed in a templated field: every string in it reaches the task as written.

    Names the spec restricts (metrics, models, aliases) hold no Jinja opener today; they take the same path,
    so a looser pattern tomorrow cannot turn one into a template.
    """
    if isinstance(value, str):
        return f"literal({py(value)})" if _has_opener(value) else py(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal_source(v) for v in value) + "]"
    if isinstance(value, dict):
        # Airflow renders a dict's values, never its keys.
        return (
            "{"
            + ", ".join(f"{py(k)}: {literal_source(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
            + "}"
        )
    return py(value)


def needs_literal(value: Any) -> bool:
    """True when literal_source(value) uses airflow.sdk.literal."""
    if isinstance(value, str):
        return _has_opener(value)
    if isinstance(value, list | tuple):
        return any(needs_literal(v) for v in value)
    if isinstance(value, dict):
        return any(needs_literal(v) for v in value.values())
    return False


def _has_opener(text: str) -> bool:
    return any(opener in text for opener in _JINJA_OPENERS)


def plain(template: Template) -> str:
    """Python source for a literal-only value in a field Airflow does not template."""
    assert template.is_literal
    return py(template.literal_text())


def uses_literal(template: Template) -> bool:
    """True when templated() needs the airflow.sdk.literal import."""
    return template.is_literal and any(o in template.literal_text() for o in _JINJA_OPENERS)


def has_part(template: Template, kind: type[Lit] | type[Ref]) -> bool:
    """True when the template holds a part of this kind."""
    return any(isinstance(p, kind) for p in template.parts)
