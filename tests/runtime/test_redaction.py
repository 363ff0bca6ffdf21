"""The redactor: rendered secrets and URL credentials never leave the runtime in messages, logs or results."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pipegen.runtime.__main__ import main as runtime_main
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.redact import redact, redact_data, register
from pipegen.runtime.redacted_output import run_redacted
from pipegen.runtime.templating import Values
from pipegen.runtime.url_credentials import is_credential_name


def secret() -> str:
    """A value no other test registers (the redactor is process-wide) with characters that get escaped."""
    return f'tok_{uuid.uuid4().hex[:12]}/+&"é'


def test_registered_values_are_masked_in_every_form() -> None:
    value = secret()
    register(value)
    forms = [
        value,
        "tok_" + value[4:16] + "%2F%2B%26%22%C3%A9",  # quote(safe="")
        "tok_" + value[4:16] + "/%2B%26%22%C3%A9",  # quote()
        json.dumps(value)[1:-1],
        json.dumps(json.dumps(value)[1:-1])[1:-1],  # JSON inside JSON, as a Lambda error in a history event
    ]
    for form in forms:
        assert redact(f"before {form} after") == "before *** after", form
    assert redact_data({"reason": f"x{value}x", "n": [value, 3]}) == {"reason": "x***x", "n": ["***", 3]}


def test_url_credentials_are_masked_without_registration() -> None:
    # Airflow renders Variables itself: the runtime sees values it did not render.
    text = (
        "failed: https://ci.example.com/hooks/rebuild?token=tok_live_42&sort_key=dt: ConnectionError; "
        "postgresql://etl:hunter2@db:5432/a; https://hooks.slack.com/services/T0/B0/Xq7pL2mN9; "
        "https://acct.blob.core.windows.net/c/b?sv=2022&sig=kP3x%2Fq9Z; https://h/x?X-Amz-Signature=abc&page=2"
    )
    assert redact(text) == (
        "failed: https://ci.example.com/hooks/rebuild?token=***&sort_key=dt: ConnectionError; "
        "postgresql://etl:***@db:5432/a; https://hooks.slack.com/services/***; "
        "https://acct.blob.core.windows.net/c/b?sv=2022&sig=***; https://h/x?X-Amz-Signature=***&page=2"
    )


@pytest.mark.parametrize("name", ["token", "api_key", "apiKey", "client_secret", "password", "sig", "X-Amz-Signature"])
def test_credential_names(name: str) -> None:
    assert is_credential_name(name)


@pytest.mark.parametrize("name", ["sort_key", "page", "author", "keyword", "sv", "limit"])
def test_plain_names(name: str) -> None:
    assert not is_credential_name(name)


def test_short_values_are_not_masked() -> None:
    # As Airflow's masker: masking "true" everywhere would garble every line and protect nothing.
    register("abcd")
    assert redact("abcd") == "abcd"


def test_a_rendered_secret_is_masked_in_runtime_failures() -> None:
    value = secret()
    values = Values({}, "run-1", "2026-01-02", {"PIPEGEN_SECRET_HOOK": value})
    url = values.string("http://127.0.0.1:9/hooks/${secret.hook}")
    assert value in url  # rendered for use...
    assert str(RuntimeFailure(f"cannot post to {url}")) == "cannot post to http://127.0.0.1:9/hooks/***"


def test_every_pipegen_secret_in_the_environment_is_registered() -> None:
    # A job inherits PIPEGEN_SECRET_* and may print one that no spec string rendered.
    value = secret()
    Values({}, "run-1", "2026-01-02", {"PIPEGEN_SECRET_UNUSED": value, "HOME": "/home/someone"})
    assert redact(f"env: {value}") == "env: ***"
    assert redact("/home/someone") == "/home/someone"


def test_library_log_records_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    value = secret()
    register(value)
    logger = logging.getLogger("some.library")
    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    logger.propagate = False  # a logger that does not propagate is still covered
    try:
        logger.warning("Retrying after %s: %s", "broken", f"/hooks/{value}?token=abc123")
        try:
            raise ValueError(f"bad {value}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    err = capsys.readouterr().err
    assert "Retrying after broken: /hooks/***?token=***" in err
    assert "ValueError: bad ***" in err
    assert value not in err


def test_command_output_is_redacted(tmp_path: Path) -> None:
    value = secret()
    register(value)
    out = io.BytesIO()
    script = (
        "import os, sys; print(os.environ['TOKEN'], flush=True); sys.stdout.buffer.write(b'\\xff raw\\n'); sys.exit(3)"
    )
    code = run_redacted([sys.executable, "-c", script], env={"TOKEN": value}, output=out)
    assert code == 3
    assert out.getvalue() == b"***\n\xff raw\n"  # bytes that are not UTF-8 pass unchanged


def test_command_timeout_kills_it() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        run_redacted([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5, output=io.BytesIO())


def test_runtime_command_line_redacts_errors_and_results(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    value = secret()
    monkeypatch.setenv("PIPEGEN_SECRET_HOOK", value)
    spec = {"webhooks": ["http://127.0.0.1:9/hooks/${secret.hook}"], "message": {"event": "failed"}}
    args = {"kind": "notify", "spec": spec, "context": {"params": {}, "run_id": "r", "run_date": "2026-01-02"}}
    assert runtime_main(["step", json.dumps(args)]) == 1
    out, err = capsys.readouterr()
    assert "webhook notification failed after 4 retries: http://127.0.0.1:9/hooks/***: ConnectionError" in err
    assert value not in out + err
    # A result (here a gate's reason, naming a path with the secret in it) is printed and written masked.
    name = value.split("/")[0]
    (tmp_path / name).mkdir()
    (tmp_path / name / "part-0").write_text("rows")
    monkeypatch.setenv("PIPEGEN_SECRET_DIR", name)
    gate = {"gate": {"check": "partition_exists", "path": f"{tmp_path}/" + "${secret.dir}/"}}
    args = {"kind": "gate", "spec": gate, "context": {"params": {}, "run_id": "r", "run_date": "2026-01-02"}}
    output = tmp_path / "out.json"
    assert runtime_main(["step", json.dumps(args), "--output", str(output)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(output.read_text())["reason"] == f"{tmp_path}/***/ is not empty"
    assert f"{tmp_path}/***/ is not empty" in out
    assert name not in out + err + output.read_text()


def test_a_gate_reason_masks_a_token_in_its_connection(tmp_path: Path) -> None:
    # As Airflow calls it: the connection was rendered from a Variable, not by the runtime.
    import sqlite3

    from pipegen.runtime.gates import check_gate

    with sqlite3.connect(tmp_path / "data.db") as db:
        db.execute("CREATE TABLE events (id INTEGER)")
    connection = f"sqlite:///file:{tmp_path}/data.db?mode=ro&token=tok_live_8f2a9c71d3&uri=true"
    result = check_gate({"check": "row_count", "connection": connection, "table": "events"})
    assert result["reason"].endswith("/data.db?mode=ro&token=***&uri=true has 0 rows, fewer than the minimum 1")


def test_lambda_handler_masks_an_error_and_keeps_its_type(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipegen.runtime.lambda_handler import handler

    value = secret().split("/")[0]
    monkeypatch.setenv("PIPEGEN_SECRET_BUCKET_PATH", value)  # not in (moto's) Secrets Manager: the fallback
    gate = {"gate": {"check": "partition_exists", "path": "gs://bucket/${secret.bucket_path}/"}}
    event = {
        "action": "step",
        "args": {"kind": "gate", "spec": gate, "context": {"params": {}, "run_id": "r", "run_date": "d"}},
    }
    with pytest.raises(ValueError) as error:
        handler(event)
    assert (
        str(error.value)
        == "unsupported path scheme 'gs://' in 'gs://bucket/***/' (expected s3://, file:// or a local path)"
    )
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_command_output_reaches_a_text_only_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    # A task runner may replace sys.stdout with a stream that has no binary buffer.
    value = secret()
    register(value)
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    code = run_redacted([sys.executable, "-c", "import sys; print(sys.argv[1])", value])
    assert code == 0
    assert stream.getvalue() == "***\n"
