"""Kubernetes objects (pipegen.k8s) inside an Airflow DAG, as the templated fields that hold them.

The builders write run-time text through PodValues; here a string with references becomes a token standing for one
Jinja expression (literal parts as Jinja string literals, references as the DAG's expressions), and the finished
object becomes either
- a dict for SparkKubernetesOperator's template_spec (Airflow renders each string of it): a token is `{{ expr }}`,
  literal text is kept inert (a Jinja string literal where it holds an opener; never read as a template file), or
- JSON text for KubernetesCreateResourceOperator's yaml_conf (rendered as one string, then read as YAML): a token is
  `{{ (expr) | tojson }}`, one JSON string whatever the value holds (quotes, line breaks, `{{`), and the literal
  JSON between tokens is kept inert the same way.
The object's name is the one value written inline (`{{ name }}` inside a JSON string): a DNS label of pipegen's
text and a hex digest, nothing to quote.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Sequence
from typing import Any

from pipegen.expr import Lit, parse_template
from pipegen.k8s.distributed import kubelet_text
from pipegen.render import py
from pipegen.targets.airflow.spark import _guard_ext
from pipegen.targets.airflow.values import ValueLowering
from pipegen.targets.airflow_expr import _JINJA_OPENERS, jinja_string_literal, ref_expression

_TOKEN = "\x00pipegen-value-{}\x00"
_TOKEN_JSON = re.compile(r'"\\u0000pipegen-value-(\d+)\\u0000"')
_NAME = "\x00pipegen-name\x00"
_NAME_JSON = "\\u0000pipegen-name\\u0000"
_SQUOTE = "'\"'\"'"  # a ' inside a single-quoted shell word: close, a double-quoted ', open again
# A digest of the DAG run's id: the objects of one run share it, two runs never do.
RUN_DIGEST = "macros.uuid.uuid5(macros.uuid.NAMESPACE_URL, run_id).hex[:8]"
# SparkKubernetesOperator reads a templated string ending with one of these as a template file's name.
SPARK_TEMPLATE_EXT = ("yaml", "yml", "json")


def inert(text: str) -> str:
    """Literal text as Jinja template text that renders to exactly itself."""
    return "{{ " + jinja_string_literal(text) + " }}" if any(o in text for o in _JINJA_OPENERS) else text


class AirflowValues:
    """PodValues for Airflow: literal text as it is, text with references as a token for one Jinja expression."""

    def __init__(self, lo: ValueLowering) -> None:
        self.lo = lo
        self.expressions: list[str] = []

    def token(self, expression: str) -> str:
        """A token for a Jinja expression (a string) placed as a whole string of the object."""
        self.expressions.append(expression)
        return _TOKEN.format(len(self.expressions) - 1)

    def _value(self, value: str, literal: Callable[[str], str], ref: Callable[[str], str]) -> str:
        template = parse_template(value)
        if not template.refs:
            return literal(template.literal_text())
        self.lo.jinja(value)  # the imports and macros its references need
        pieces = [
            jinja_string_literal(literal(p.text)) if isinstance(p, Lit) else ref(f"({ref_expression(p)}) | string")
            for p in template.parts
        ]
        return self.token(" ~ ".join(pieces))

    def text(self, value: str) -> str:
        """Text nothing but the controller reads (images, Spark conf and files)."""
        return self._value(value, lambda t: t, lambda r: r)

    def pod_text(self, value: str) -> str:
        """A container's argument or env value: every '$' doubled, which the kubelet reads as one."""
        return self._value(value, kubelet_text, lambda r: f"{r} | replace('$', '$$')")

    def node_text(self, value: str) -> str:
        """A node container's text for pipegen.k8s.distributed, which doubles the '$' of plain strings itself."""
        return value if not parse_template(value).refs else self.pod_text(value)

    def shell_line(self, words: Sequence[str]) -> str:
        """Words as one shell command line in a container's argument: each word quoted, every '$' doubled."""
        if not any(parse_template(w).refs for w in words):
            return kubelet_text(shlex.join(parse_template(w).literal_text() for w in words))
        pieces: list[str] = []
        for i, word in enumerate(words):
            if i:
                pieces.append(jinja_string_literal(" "))
            template = parse_template(word)
            if not template.refs:
                pieces.append(jinja_string_literal(kubelet_text(shlex.quote(template.literal_text()))))
                continue
            self.lo.jinja(word)
            pieces.append(jinja_string_literal("'"))
            for p in template.parts:
                if isinstance(p, Lit):
                    pieces.append(jinja_string_literal(kubelet_text(p.text.replace("'", _SQUOTE))))
                else:
                    quoted = f"replace({jinja_string_literal(chr(39))}, {jinja_string_literal(_SQUOTE)})"
                    pieces.append(f"({ref_expression(p)}) | string | {quoted} | replace('$', '$$')")
            pieces.append(jinja_string_literal("'"))
        return self.token(" ~ ".join(pieces))

    def xcom(self, task_id: str, key: str) -> str:
        """A value of a task's XCom (start_run's run and experiment ids)."""
        return self.token(f"ti.xcom_pull(task_ids={jinja_string_literal(task_id)})[{jinja_string_literal(key)}]")

    # ---- the object as a templated field ---------------------------------------------------------
    def _string(self, text: str, extensions: tuple[str, ...]) -> str:
        match = re.fullmatch(r"\x00pipegen-value-(\d+)\x00", text)
        if match:
            return "{{ " + self.expressions[int(match.group(1))] + " }}"
        assert "\x00pipegen-value-" not in text, text  # a token is always a whole string
        if _NAME in text:
            return self._named(text)
        # Text ending like a template file's name would be read as one (inert text with an opener ends with '}}').
        return _guard_ext(inert(text), extensions)

    @staticmethod
    def _named(text: str) -> str:
        return ("{{ " + RUN_DIGEST + " }}").join(inert(chunk) for chunk in text.split(_NAME))

    def dict_source(self, value: Any, extensions: tuple[str, ...] = SPARK_TEMPLATE_EXT) -> str:
        """Python source of the object for a templated field Airflow renders string by string."""
        if isinstance(value, str):
            return py(self._string(value, extensions))
        if isinstance(value, list):
            return "[" + ", ".join(self.dict_source(v, extensions) for v in value) + "]"
        if isinstance(value, dict):
            # Airflow renders a dict's values, never its keys.
            items = sorted(value.items())
            return "{" + ", ".join(f"{py(k)}: {self.dict_source(v, extensions)}" for k, v in items) + "}"
        return py(value)

    def yaml_source(self, document: dict[str, Any]) -> str:
        """Python source of the object as JSON text (YAML to the operator) for a field rendered as one string."""
        text = json.dumps(document, sort_keys=True, ensure_ascii=True)
        out: list[str] = []
        last = 0
        for match in _TOKEN_JSON.finditer(text):
            out.append(self._named(text[last : match.start()].replace(_NAME_JSON, _NAME)))
            out.append("{{ (" + self.expressions[int(match.group(1))] + ") | tojson }}")
            last = match.end()
        out.append(self._named(text[last:].replace(_NAME_JSON, _NAME)))
        joined = "".join(out)
        assert "\\u0000pipegen-value-" not in joined, joined  # a token is always a whole string
        return py(joined)


def name_text(base: str) -> str:
    """An object's name for one DAG run: base (a DNS label of at most 31 characters), '-', the run's digest."""
    return f"{base}-{_NAME}"


def name_template(base: str) -> str:
    """The same name as Jinja text (a templated argument of another task)."""
    return f"{base}-{{{{ {RUN_DIGEST} }}}}"
