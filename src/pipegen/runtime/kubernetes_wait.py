"""Run one attempt of a kubernetes step: create its objects, wait for its Job in pipegen's own loop, delete them.

The loop polls every POLL seconds (the Job's status and its pods), prints each pod's log once the pod has ended, and
fails the attempt when the Job fails, when the step's timeout has passed (wall time since the Job was created), or
when a pod has not started within the backend's startup_timeout (still Pending: unscheduled, pulling its image,
creating its container). A failed poll is retried (API_ERRORS in a row end the attempt): one blip of the API server
must not delete hours of training. What a status means is `verdict`, a pure function of the documents the API returns.

Fields read, as the Kubernetes API reference defines them (https://kubernetes.io/docs/reference/kubernetes-api/):
- Job (workload-resources/job-v1): status.conditions[] {type: Complete | Failed | FailureTarget | ..., status:
  "True" | "False" | "Unknown", reason, message}; spec.selector.matchLabels (the pods' labels, set by the API server).
- Pod (workload-resources/pod-v1): metadata.name, metadata.deletionTimestamp; status.phase (Pending | Running |
  Succeeded | Failed | Unknown); status.conditions[] {type: PodScheduled, status, reason (Unschedulable), message};
  status.initContainerStatuses[] and status.containerStatuses[] {name, state.waiting {reason, message}}.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Seconds between two polls of the Job and its pods.
POLL = 5.0
# Consecutive failed polls (API server unreachable or erring) before the attempt fails: a minute at POLL.
API_ERRORS = 12
ENDED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Verdict:
    """Where an attempt stands: succeeded, failed (with why), or neither yet (wait on)."""

    succeeded: bool = False
    failure: str | None = None


def verdict(
    job: Mapping[str, Any],
    pods: list[Mapping[str, Any]],
    *,
    waited: float,
    pending_for: Mapping[str, float],
    timeout: int | None,
    startup_timeout: int | None,
) -> Verdict:
    """What the Job's status and its pods say, `waited` seconds after the Job was created.

    pending_for: how long each pod (by name) has been seen since it first appeared; timeout and startup_timeout in
    seconds, None for no bound.
    """
    name = job.get("metadata", {}).get("name", "?")
    for condition in job.get("status", {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        kind = condition.get("type")
        if kind == "Complete":
            return Verdict(succeeded=True)
        # FailureTarget: the Job controller has decided the Job fails (Failed follows once its pods are gone).
        if kind in ("Failed", "FailureTarget"):
            why = ": ".join(str(x) for x in (condition.get("reason"), condition.get("message")) if x)
            return Verdict(failure=f"Job {name} failed" + (f" ({why})" if why else ""))
    if timeout is not None and waited >= timeout:
        return Verdict(
            failure=f"Job {name} timed out: not finished {int(waited)}s after its creation (timeout {timeout}s)"
        )
    if startup_timeout is None or waited < startup_timeout:
        return Verdict()
    live = [pod for pod in pods if not pod.get("metadata", {}).get("deletionTimestamp")]
    if not pods:
        return Verdict(
            failure=f"Job {name} has no pod {int(waited)}s after its creation (startup_timeout {startup_timeout}s): "
            "none was created (see `kubectl describe job` for why, e.g. a quota)"
        )
    for pod in sorted(live, key=_pod_name):
        pod_name = _pod_name(pod)
        if pod.get("status", {}).get("phase", "Pending") != "Pending":
            continue
        if pending_for.get(pod_name, 0.0) >= startup_timeout:
            return Verdict(
                failure=f"pod {pod_name} of Job {name} has not started within startup_timeout ({startup_timeout}s): "
                + waiting_reason(pod)
            )
    return Verdict()


def waiting_reason(pod: Mapping[str, Any]) -> str:
    """Why a Pending pod has not started: its scheduling condition, or a container's waiting reason."""
    status = pod.get("status", {})
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return _said("not scheduled", condition.get("reason"), condition.get("message"))
    for key in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(key) or []:
            waiting = (container.get("state") or {}).get("waiting")
            if waiting:
                return _said(f"container {container.get('name')}", waiting.get("reason"), waiting.get("message"))
    return "Pending, no reason given yet"


def _said(what: str, reason: str | None, message: str | None) -> str:
    return f"{what}: {reason or 'Pending'}" + (f" ({message})" if message else "")


def _pod_name(pod: Mapping[str, Any]) -> str:
    return str(pod.get("metadata", {}).get("name", "?"))


async def run_job(
    credentials: Any,
    objects: list[dict[str, Any]],
    *,
    timeout: int | None,
    startup_timeout: int | None,
    echo: Callable[[str], object] = print,
    poll: float = POLL,
) -> str:
    """Create the objects ([headless Service..., Job]) in order, wait for the Job, delete them; the Job's name.

    credentials: a prefect-kubernetes KubernetesCredentials (its get_client gives the API clients, configured from
    the block, the worker's kubeconfig or the pod's service account). Raises RuntimeError when the attempt fails; the
    Job (and its pods) and the Services are deleted however the attempt ends, cancellation included.
    """
    *services, job = objects
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    async with credentials.get_client("core") as core, credentials.get_client("batch") as batch:
        created: list[str] = []
        try:
            # The headless Service first: every node finds pod 0 by its DNS name in it.
            for service in services:
                await core.create_namespaced_service(namespace, service)
                created.append(service["metadata"]["name"])
            sent = await batch.create_namespaced_job(namespace, job)
            try:
                await _wait(
                    core, batch, core.api_client.sanitize_for_serialization(sent), timeout, startup_timeout, echo, poll
                )
            finally:
                # Succeeded, failed, timed out or cancelled: the Job goes, and its pods with it (logs were printed).
                with contextlib.suppress(Exception):
                    await batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        finally:
            for service_name in created:
                with contextlib.suppress(Exception):
                    await core.delete_namespaced_service(service_name, namespace)
    return str(name)


async def _wait(
    core: Any,
    batch: Any,
    job: dict[str, Any],
    timeout: int | None,
    startup_timeout: int | None,
    echo: Callable[[str], object],
    poll: float,
) -> None:
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(job["spec"]["selector"]["matchLabels"].items()))
    container = job["spec"]["template"]["spec"]["containers"][0]["name"]
    start = time.monotonic()
    first_seen: dict[str, float] = {}
    printed: set[str] = set()
    serialize = core.api_client.sanitize_for_serialization
    errors = 0
    while True:
        try:
            status = serialize(await batch.read_namespaced_job_status(name, namespace))
            pods = serialize((await core.list_namespaced_pod(namespace, label_selector=selector)).items)
        except Exception as error:
            # A blip of the API server must not end hours of training (the Job would be deleted): polls are
            # retried for a while; a Job deleted by someone else (404) ends the attempt at once.
            errors += 1
            if getattr(error, "status", None) == 404 or errors > API_ERRORS:
                raise
            echo(f"Job {name}: reading its status failed ({error!r}); retrying in {poll:g}s")
            await asyncio.sleep(poll)
            continue
        errors = 0
        now = time.monotonic()
        for pod in pods:
            first_seen.setdefault(_pod_name(pod), now)
        seen = {pod: now - since for pod, since in first_seen.items()}
        result = verdict(
            status, pods, waited=now - start, pending_for=seen, timeout=timeout, startup_timeout=startup_timeout
        )
        done = result.succeeded or result.failure is not None
        for pod in sorted(pods, key=_pod_name):
            pod_name, phase = _pod_name(pod), pod.get("status", {}).get("phase")
            # An ended pod's whole log; when the attempt ends, what a still-running pod has written so far.
            if pod_name not in printed and (phase in ENDED or (done and phase != "Pending")):
                printed.add(pod_name)
                with contextlib.suppress(Exception):
                    text = await core.read_namespaced_pod_log(pod_name, namespace, container=container)
                    echo(f"--- pod {pod_name} ({phase}) ---\n{text}")
        if result.failure is not None:
            raise RuntimeError(result.failure)
        if result.succeeded:
            return
        await asyncio.sleep(poll)
