"""Secrets on Step Functions: the runtime Lambda reads them from Secrets Manager; no value enters the history.

moto serves Secrets Manager, S3 and the state machine; its executor runs the compiled definition and
routes every lambda:invoke to pipegen's handler (tests/stepfunctions/support.py).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.templating import Values
from tests.stepfunctions.asl import compile_text
from tests.stepfunctions.support import history, run_state_machine
from tests.support_mlflow import free_port


def _no_secrets_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in os.environ:
        if key.startswith("PIPEGEN_SECRET"):
            monkeypatch.delenv(key)


def test_failed_execution_history_holds_no_secret(
    sfn: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    _no_secrets_in_environment(monkeypatch)
    secrets = {key: f"{key}-{uuid.uuid4().hex}" for key in ("db_token", "hook_token")}
    manager = boto3.client("secretsmanager")
    for key, value in secrets.items():
        manager.create_secret(Name=f"pipegen/{key}", SecretString=value)
    with sqlite3.connect(tmp_path / "data.db") as db:
        db.execute("CREATE TABLE events (id INTEGER)")
        db.execute("INSERT INTO events VALUES (1)")
    bucket = f"empty-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    port = free_port()  # nobody listens: the notification fails
    text = (
        "pipegen: 1\nname: secretive\n"
        "backends:\n  jobs: {type: aws_batch, job_queue: ml-cpu-64, job_definition: pricing-train:3}\n"
        "steps:\n"
        "  - name: ready\n    gate:\n      check: row_count\n"
        f'      connection: "sqlite:///file:{tmp_path}/data.db?mode=ro&token=${{secret.db_token}}&uri=true"\n'
        "      table: events\n"
        f"  - name: landed\n    gate: {{check: partition_exists, path: 's3://{bucket}/dt=${{run.date}}/'}}\n"
        "  - name: train\n    train: {backend: jobs, command: [python, -m, x], metrics: [auc]}\n"
        f"notify:\n  on_failure: [{{webhook: 'http://127.0.0.1:{port}/hooks/${{secret.hook_token}}'}}]\n"
    )
    outputs, diagnostics = compile_text(text, tmp_path, "secretive.yaml")
    assert outputs, diagnostics
    definition = outputs["stepfunctions/secretive.asl.json"]
    assert all(value not in definition for value in secrets.values())

    result = run_state_machine(definition, name, {})
    events = history(result["executionArn"])
    recorded = json.dumps([result, events], default=str)

    # The gate read its token from Secrets Manager and passed; the next gate failed; the notification
    # was tried with the webhook's token and failed too, each message masked.
    assert result["status"] == "FAILED", recorded[-3000:]
    assert [e["args"]["kind"] for e in sfn] == ["gate", "gate", "notify"]
    assert "/data.db?mode=ro&token=***&uri=true has 1 row (minimum 1)" in recorded
    assert (
        f"webhook notification failed after 4 retries: http://127.0.0.1:{port}/hooks/***: ConnectionError" in recorded
    )
    for key, value in secrets.items():
        assert value not in recorded, f"secret {key} is in the execution history"


@pytest.fixture
def manager(aws: str) -> Any:
    return boto3.client("secretsmanager")


# The store is imported in each test, so the history test above also runs (and fails) on code without it.


def test_store_reads_prefixed_secrets_once_per_store(manager: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipegen.runtime.aws_secrets import SecretsManagerStore
    from pipegen.runtime.templating import secret_store

    prefix = f"team-{uuid.uuid4().hex[:8]}/pipegen/"
    monkeypatch.setenv("PIPEGEN_SECRETS_PREFIX", prefix)
    manager.create_secret(Name=f"{prefix}db-password", SecretString="s3cr3t-from-sm")
    store = SecretsManagerStore()
    calls: list[str] = []
    store._secretsmanager().meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", lambda params, **_: calls.append(params["SecretId"])
    )
    values = Values({}, "run-1", "2026-01-02", {})
    with secret_store(store):
        assert values.string("a ${secret.db-password} b ${secret.db-password}") == "a s3cr3t-from-sm b s3cr3t-from-sm"
    assert calls == [f"{prefix}db-password"]


def test_store_falls_back_to_the_environment_when_the_secret_is_absent(manager: Any) -> None:
    from pipegen.runtime.aws_secrets import SecretsManagerStore
    from pipegen.runtime.templating import secret_store

    values = Values({}, "run-1", "2026-01-02", {"PIPEGEN_SECRET_LOCAL_ONLY": "from-the-environment"})
    with secret_store(SecretsManagerStore(prefix=f"absent-{uuid.uuid4().hex}/")):
        assert values.string("${secret.local_only}") == "from-the-environment"
        with pytest.raises(RuntimeFailure, match=r"\$\{secret.nowhere\} is neither in AWS Secrets Manager \(secret "):
            values.string("${secret.nowhere}")


def test_a_binary_secret_is_a_clear_error(manager: Any) -> None:
    from pipegen.runtime.aws_secrets import SecretsManagerStore

    prefix = f"bin-{uuid.uuid4().hex[:8]}/"
    manager.create_secret(Name=f"{prefix}blob", SecretBinary=b"\x00\x01")
    with pytest.raises(RuntimeFailure, match=r"holds binary data; \$\{secret.blob\} reads SecretString"):
        SecretsManagerStore(prefix=prefix).lookup("blob")
