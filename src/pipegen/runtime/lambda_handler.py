"""The AWS Lambda entry point Step Functions invokes: {"action": NAME, "args": {...}} -> result.

What the handler returns or raises lands in the execution history (state output, a Catch's Cause),
so both leave it redacted; `${secret.X}` is read from AWS Secrets Manager (aws_secrets.py).
A JSONPath state machine sends a `step` request's spec as one JSON string, "spec_json" (asl-validator
cannot read every string inside a JSONPath payload's lists); the handler decodes it into "spec".
"""

from __future__ import annotations

import json
from typing import Any

from pipegen.runtime.actions import action
from pipegen.runtime.aws_secrets import SecretsManagerStore
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.redact import install_log_redaction, redact, redact_data
from pipegen.runtime.templating import secret_store


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Run the action the state machine asks for and return its JSON result."""
    install_log_redaction()
    try:
        # One store per invocation: each secret is read once per call, and a rotated value is seen
        # by the next call rather than cached in a warm container for its lifetime.
        with secret_store(SecretsManagerStore()):
            result = action(str(event["action"]))(**arguments(event))
    except Exception as exc:  # noqa: BLE001 - every error's text leaves through the redactor
        # from None: a chained original error, unmasked, must not reach the Lambda's error report.
        raise _masked(exc) from None
    redacted: dict[str, Any] = redact_data(result)
    return redacted


def arguments(event: dict[str, Any]) -> dict[str, Any]:
    """The action's keyword arguments: the event's args, a "spec_json" string decoded into "spec"."""
    args = dict(event.get("args") or {})
    if "spec_json" in args:
        text = args.pop("spec_json")
        if "spec" in args:
            raise ValueError('a request holds "spec_json" or "spec", not both')
        if not isinstance(text, str):
            raise ValueError(f'"spec_json" must be a JSON string, not {type(text).__name__}')
        args["spec"] = json.loads(text)
    return args


def _masked(exc: Exception) -> Exception:
    """The error with its message redacted, keeping its type (Step Functions shows it as the error name)."""
    text = str(exc)
    masked = redact(text)
    if masked == text:
        return exc
    exc.args = (masked,)
    if str(exc) == masked:
        return exc
    # A type whose message is not its args (OSError, some library errors): say what it was instead.
    return RuntimeFailure(f"{type(exc).__name__}: {masked}")
