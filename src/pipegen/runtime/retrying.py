"""Retrying infrastructure failures inside a step, for orchestrators whose retries cannot tell them from verdicts.

KFP's set_retry re-runs a task whatever made it fail, so a threshold check that failed (a verdict, final on
every target) would be judged again and again. Such steps run without orchestrator retries and get the
spec's retry policy here instead, applied only to failures to reach a service.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pipegen.runtime.errors import RuntimeFailure

log = logging.getLogger(__name__)
T = TypeVar("T")

# tracking.reaching's message for an MLflow server that could not be reached (after MLflow's own HTTP retries).
_UNREACHABLE_PREFIX = "cannot reach "
_CONNECTION_WORDS = ("max retries exceeded", "connection", "timed out", "temporarily unavailable")
# botocore's names for a service that did not answer or asked to slow down.
_BOTO_TRANSIENT = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}
_AWS_THROTTLE_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}


def is_infrastructure_error(exc: BaseException) -> bool:
    """True for a failure to reach a service (tracking server, cloud API): worth retrying. A verdict is not."""
    if isinstance(exc, RuntimeFailure):
        return str(exc).startswith(_UNREACHABLE_PREFIX)
    if isinstance(exc, OSError):  # ConnectionError, TimeoutError, socket and DNS errors
        return True
    name = type(exc).__name__
    if name in _BOTO_TRANSIENT:
        return True
    if name == "ClientError":
        error = getattr(exc, "response", {}).get("Error", {})
        status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.get("Code") in _AWS_THROTTLE_CODES or int(status) >= 500
    if type(exc).__module__.startswith("mlflow"):
        text = str(exc).lower()
        return any(word in text for word in _CONNECTION_WORDS)
    return False


def retry_delays(policy: dict[str, Any]) -> list[float]:
    """The waits between attempts: {retries, delay_seconds, backoff (factor), max_delay_seconds (cap or None)}."""
    delay, factor = float(policy.get("delay_seconds", 0)), float(policy.get("backoff", 1.0))
    cap = policy.get("max_delay_seconds")
    delays = [delay * factor**i for i in range(int(policy.get("retries", 0)))]
    return [min(d, float(cap)) if cap is not None else d for d in delays]


def with_retries(
    action: Callable[[], T], policy: dict[str, Any] | None, *, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Run action, retrying infrastructure errors by the policy; any other failure is raised at once."""
    delays = retry_delays(policy) if policy else []
    for attempt, delay in enumerate([*delays, None], start=1):
        try:
            return action()
        except Exception as exc:
            if delay is None or not is_infrastructure_error(exc):
                raise
            log.warning("attempt %d failed to reach a service (%s); retrying in %.0fs", attempt, exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # the last attempt returns or raises
