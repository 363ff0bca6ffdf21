"""A waiting gate on KFP: its pod deadline covers the whole wait, and a retry resumes the wait instead of restarting it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.kfp.test_compile import compile_ir, step_tasks


def gate_spec(partition: Path, *, timeout: str, wait: str, retries: int = 0) -> str:
    return (
        "pipegen: 1\nname: waits\n"
        f"defaults: {{timeout: {timeout}, retries: {retries}, retry_delay: 1s}}\n"
        "targets: {kfp: {base_image: 'registry.example.com/ml/pipegen-runtime:0.1'}}\n"
        "steps:\n"
        "  - name: ready\n"
        f"    gate: {{check: partition_exists, path: '{partition}/', wait: {{timeout: {wait}, interval: 1s}}}}\n"
    )


def compiled(tmp_path: Path, text: str) -> tuple[Any, dict[str, Any]]:
    """The pipeline as KFP stores it (IR, loaded back) and the IR itself."""
    from kfp import components

    result = compile_checked(check_source(Source("waits.yaml", text)), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    module = tmp_path / "waits.py"
    module.write_text(result.outputs[0].text, encoding="utf-8")
    ir_path = tmp_path / "waits.yaml"
    compile_ir(module, ir_path)
    import yaml

    documents = list(yaml.safe_load_all(ir_path.read_text()))
    return components.load_component_from_file(str(ir_path)), {"pipeline": documents[0], "platform": documents[1]}


def pod_deadline(ir: dict[str, Any], task: str) -> int:
    executor = ir["pipeline"]["components"][step_tasks(ir["pipeline"])[task]["componentRef"]["name"]]["executorLabel"]
    return int(
        ir["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"][executor]["activeDeadlineSeconds"]
    )


@pytest.fixture
def local_runner(tmp_path: Path) -> None:
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp-root"))


@pytest.mark.usefixtures("local_runner")
def test_data_landing_after_the_step_timeout_but_within_the_wait_passes(tmp_path: Path) -> None:
    partition = tmp_path / "dt=2026-03-08"
    pipeline, ir = compiled(tmp_path, gate_spec(partition, timeout="2s", wait="20s"))
    # kfp.local does not enforce set_timeout: the pod deadline in the IR must cover the wait itself.
    assert pod_deadline(ir, "ready") >= 20 + 300

    def land() -> None:
        time.sleep(5)
        partition.mkdir()
        (partition / "part-0").write_text("rows")

    lander = threading.Thread(target=land)
    started = time.monotonic()
    lander.start()
    try:
        pipeline()
    finally:
        lander.join()
    # The gate waited past the step's 2 s timeout for the data that landed at ~5 s.
    assert time.monotonic() - started > 5


@pytest.mark.usefixtures("local_runner")
def test_a_retry_after_the_wait_timed_out_fails_at_once(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    pipeline, ir = compiled(tmp_path, gate_spec(tmp_path / "never", timeout="1h", wait="3s", retries=1))
    retry = step_tasks(ir["pipeline"])["ready"]["retryPolicy"]
    assert retry["maxRetryCount"] == 1
    with pytest.raises(RuntimeError):
        pipeline()
    logs = capfd.readouterr()
    text = logs.out + logs.err
    # The first attempt waited its 3 s; the retry did not wait another 3 s but said why it stopped.
    assert "is empty or missing after waiting" in text
    assert "deadline passed: the wait for" in text
