"""A spec with a hostile string in every free-text field, for the targets' escaping tests."""

from __future__ import annotations

# Quotes of every kind, triple quotes, backslashes, newlines, Jinja of every kind, a literal ${, unicode.
HOSTILE = (
    "h\"'\\ \"\"\" ''' \\n\n\t{{ conn.x.password }} {% if True %}x{% endif %} {# c #} $${HOME} ünï ✓ {{{ }}} \\x00"
)
# The same shape with harmless text: both hold '{{', so both take the same escaping paths.
BENIGN = "b {{ x }}"


def literal_value(text: str) -> str:
    """What a spec string means once `$${` is read as a literal `${`."""
    return text.replace("$${", "${")


def spec_text(s: str, param: str | None = None) -> str:
    """The hostile-fields spec with s in every free-text field (YAML double-quoted, JSON-escaped).

    param replaces s as the parameter default, for targets that refuse some defaults (kfp: line breaks).
    """
    import json

    q = json.dumps(s, ensure_ascii=False)
    qp = json.dumps(s if param is None else param, ensure_ascii=False)
    url = json.dumps("https://example.com/" + s, ensure_ascii=False)
    return f"""\
pipegen: 1
name: hostile
description: {q}
owner: {q}
tags: [{q}]
params:
  p: {qp}
mlflow:
  tracking_uri: {q}
  experiment: {q}
backends:
  pods:
    type: kubernetes
    image: {q}
    namespace: {q}
    service_account: {q}
    node_selector: {{pool: {q}}}
    env: {{A_VAR: {q}}}
steps:
  - name: ready
    gate: {{check: partition_exists, path: {q}}}
  - name: prep
    task:
      backend: pods
      command: [{q}, "${{run.date}}", {json.dumps(s + "${params.p}", ensure_ascii=False)}]
      env: {{B_VAR: {q}, C_VAR: "${{run.date}}/{json.dumps(s, ensure_ascii=False)[1:-1]}"}}
  - name: train
    train:
      backend: pods
      command: [python, {q}]
      metrics: [m]
  - name: judge
    evaluate: {{run_of: train, thresholds: ["m > 0"]}}
  - name: ship
    promote: {{model: m, run_of: train, artifact: {q}, notify: [{{webhook: {url}}}]}}
notify:
  on_failure: [{{webhook: {url}}}]
"""
