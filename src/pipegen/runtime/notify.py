"""notify: POST a JSON message to webhooks, retrying transient failures with backoff."""

from __future__ import annotations

import json
from typing import Any

from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.redact import redact_data

RETRIES = 4
BACKOFF_FACTOR = 0.5
TIMEOUT_SECONDS = 10


def notify(*, webhooks: list[str], message: dict[str, Any], timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    """POST message as JSON to every webhook; 5xx answers and connection errors are retried."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(
        total=RETRIES,
        backoff_factor=BACKOFF_FACTOR,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"POST"}),
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    # The message may quote a failure's error and cause; the receiver is no place for a secret either.
    body = json.dumps(redact_data(message), sort_keys=True)
    failures = []
    for url in webhooks:
        try:
            response = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=timeout)
        except requests.RequestException as exc:
            failures.append(f"{url}: {type(exc).__name__}")
            continue
        if response.status_code >= 400:
            failures.append(f"{url}: HTTP {response.status_code}")
    if failures:
        # The URLs are rendered; RuntimeFailure masks a ${secret.X} in them, or a token no spec named.
        raise RuntimeFailure(f"webhook notification failed after {RETRIES} retries: {'; '.join(failures)}")
    return {"sent": len(webhooks)}
