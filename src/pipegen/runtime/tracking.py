"""Connecting to MLflow: one place that sets the tracking URI and turns connection failures into clear errors."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipegen.runtime.errors import RuntimeFailure

if TYPE_CHECKING:
    from mlflow import MlflowClient

# MLflow retries HTTP requests itself (urllib3 Retry with exponential backoff). Its defaults hold one
# call to a server that accepts connections and never answers for over ten minutes; these bound every
# call, connect and read, to under a minute (call_bound_seconds). A worker's own settings win.
RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
# urllib3's cap on one backoff sleep (Retry.DEFAULT_BACKOFF_MAX).
_BACKOFF_MAX = 120.0


def call_bound_seconds(environ: dict[str, str] | None = None) -> float:
    """The longest one MLflow HTTP call can take under the retry settings in force.

    Every attempt waits at most MLFLOW_HTTP_REQUEST_TIMEOUT for the connection and for each read;
    urllib3 sleeps nothing before the first retry and factor * 2**(n-1) (+ jitter, capped) before the n-th.
    """
    env = {**RETRY_DEFAULTS, **(os.environ if environ is None else environ)}
    retries = int(env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])
    timeout = float(env["MLFLOW_HTTP_REQUEST_TIMEOUT"])
    factor = float(env["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"])
    jitter = float(env.get("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "1"))
    sleeps = sum(min(_BACKOFF_MAX, factor * 2.0 ** (n - 1) + jitter) for n in range(2, retries + 1))
    return (retries + 1) * timeout + sleeps


def resolve_tracking_uri(tracking_uri: str | None) -> str:
    """The tracking URI to use: the argument, else MLFLOW_TRACKING_URI; neither is a RuntimeFailure.

    MLflow's own fallback is a `./mlruns` directory inside the worker (a pod, a Lambda): runs and models
    logged there vanish with it, so a step that is not told where the tracking server is fails instead.
    """
    if tracking_uri and tracking_uri.strip():
        return tracking_uri.strip()
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    raise RuntimeFailure(
        "no MLflow tracking server is configured for this step: the spec's mlflow.tracking_uri is empty here "
        "and MLFLOW_TRACKING_URI is not set; set it in the worker's environment (MLflow would otherwise log "
        "into a throwaway ./mlruns directory)"
    )


def client(tracking_uri: str | None) -> MlflowClient:
    """An MlflowClient for the tracking and registry URI, with bounded HTTP retries."""
    for key, value in RETRY_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import mlflow

    uri = resolve_tracking_uri(tracking_uri)
    # mlflow.register_model uses the process-wide URIs; the runtime runs one pipeline step per process.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextlib.contextmanager
def reaching(uri: str | None, doing: str) -> Iterator[None]:
    """Turn a failure to reach the tracking server into a RuntimeFailure that names the server."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except RuntimeFailure:
        raise
    except MlflowException as exc:
        text = str(exc)
        if "Max retries exceeded" in text or "Connection" in text or "timed out" in text.lower():
            retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
            timeout = os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT")
            raise RuntimeFailure(
                f"cannot reach the MLflow tracking server at {resolve_tracking_uri(uri)} while {doing}: "
                f"gave up after {retries} retries with backoff, each attempt bounded by {timeout} s "
                f"(at most {call_bound_seconds():.0f} s per call; MLFLOW_HTTP_REQUEST_* set these) "
                f"({_first_line(text)})"
            ) from exc
        raise
    except OSError as exc:
        raise RuntimeFailure(
            f"cannot reach the MLflow tracking server at {resolve_tracking_uri(uri)} while {doing}: {exc}"
        ) from exc


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= 300 else line[:297] + "..."
