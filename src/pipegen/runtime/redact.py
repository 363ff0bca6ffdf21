"""One process-wide redactor: secret values and URL credentials masked in every text the runtime emits.

`Values` registers each secret it renders (templating.py); every boundary that turns an error, a
result or a log record into text passes it through `redact()` (messages for people: registered values
and URL credentials) or `redact_data()` (results other steps read: registered values only, so a
result's URLs keep working). Log records of every library are redacted as they are created.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from pipegen.runtime.url_credentials import QUERY_PARAM, SECRET_PATH, USERINFO, is_credential_name

__all__ = [
    "MASK",
    "forget",
    "install_log_redaction",
    "redact",
    "redact_data",
    "register",
    "register_environment",
]

MASK = "***"
# Airflow's secrets masker skips values shorter than 5 characters ([logging] min_length_masked_secret):
# masking "true" or "1234" everywhere would garble every log line and protect nothing.
MIN_LENGTH = 5
ENV_PREFIX = "PIPEGEN_SECRET_"

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None
_installed = False


def _forms(value: str) -> Iterable[str]:
    """The value as written, URL-quoted, and JSON/repr-escaped (once and, for JSON inside JSON, twice)."""
    once = json.dumps(value)[1:-1]
    yield from (value, quote(value, safe=""), quote(value), quote_plus(value), once, json.dumps(once)[1:-1])
    yield from (json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1])
    # A multi-line secret (a PEM key) reaches line-by-line output one line at a time.
    yield from (line.strip() for line in value.splitlines())


def register(value: str) -> None:
    """Mask this secret value (and its quoted and escaped forms) in everything redacted from now on."""
    global _pattern
    new = {form for form in _forms(value) if len(form) >= MIN_LENGTH} - _values
    if not new:
        return
    with _lock:
        _values.update(new)
        # Longest first, so a secret that contains another is masked whole.
        alternatives = sorted(_values, key=lambda s: (-len(s), s))
        _pattern = re.compile("|".join(map(re.escape, alternatives)))
    install_log_redaction()


def forget() -> None:
    """Forget every registered value: for a process that runs many pipelines' steps (a test session)."""
    global _pattern
    with _lock:
        _values.clear()
        _pattern = None


def register_environment(environ: Mapping[str, str]) -> None:
    """Register every PIPEGEN_SECRET_* value: a job inherits them, and may print them before they are rendered."""
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and value:
            register(value)


def redact(text: str) -> str:
    """Text fit for logs: registered secret values and URL credentials replaced by ***."""
    text = _redact_values(text)
    text = USERINFO.sub(rf"\g<keep>{MASK}@", text)
    text = QUERY_PARAM.sub(lambda m: m["keep"] + MASK if is_credential_name(m["name"]) else m[0], text)
    return SECRET_PATH.sub(rf"\g<keep>{MASK}", text)


def redact_data(value: Any) -> Any:
    """A JSON-like result with every registered secret value masked in its strings (URLs otherwise kept)."""
    if isinstance(value, str):
        return _redact_values(value)
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    if isinstance(value, dict):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    return value


def _redact_values(text: str) -> str:
    pattern = _pattern
    return pattern.sub(MASK, text) if pattern is not None else text


def install_log_redaction() -> None:
    """Redact every log record as it is created, whichever logger and handler it goes to.

    A logging.Filter on the root logger does not see records that child loggers (urllib3, sqlalchemy,
    mlflow) pass straight to the root's handlers, nor records of loggers that do not propagate; a
    record factory sees them all, including handlers added later (Airflow's task log handler).
    """
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's to report, not ours
            return record
        record.msg, record.args = redact(message), ()
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted now, redacted, and cached where Formatter.format looks first.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return record

    logging.setLogRecordFactory(factory)
