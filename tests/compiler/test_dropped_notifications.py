"""A notification a target does not send is a located warning, never dropped silently (the differential suite
found KFP posting no failure webhook, and no target posting notify.on_success)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source

SPEC = """\
pipegen: 1
name: nw
backends:
  here: {type: local}
steps:
  - name: t
    task: {backend: here, command: [echo, hi]}
notify:
  on_failure: [{webhook: "https://example.com/f"}]
  on_success: [{webhook: "https://example.com/s"}]
targets:
  kfp: {base_image: "r/i:1"}
"""


def warnings(target: str) -> list[str]:
    result = compile_checked(check_source(Source("nw.yaml", SPEC)), [target])
    assert result.ok
    return [d.format() for d in result.diagnostics if d.code == "PG702"]


def test_each_unsent_notification_is_a_located_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipegen.targets.kfp import TARGET

    # KFP sends both (an exit handler); as a target that did not, it says so for each.
    assert warnings("kfp") == []
    features = {k: v for k, v in TARGET.support.features.items() if not k.startswith("notify.")}
    monkeypatch.setattr(type(TARGET), "support", replace(TARGET.support, features=features))
    assert warnings("kfp") == [
        "nw.yaml:9:15: warning[PG702]: target 'kfp' does not send notify.on_failure: no webhook is posted when the "
        "run fails; hint: alert from Kubeflow Pipelines v2's own run notifications (`pipegen targets` lists the "
        "targets that send it)",
        "nw.yaml:10:15: warning[PG702]: target 'kfp' does not send notify.on_success: no webhook is posted when the "
        "run succeeds; hint: alert from Kubeflow Pipelines v2's own run notifications (`pipegen targets` lists the "
        "targets that send it)",
    ]
    # Airflow sends both (its DAG callbacks); Step Functions too (tests/stepfunctions/test_notify_success.py).
    assert warnings("airflow") == []
