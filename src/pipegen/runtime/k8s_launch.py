"""Create a step's Kubernetes objects, wait for the main one to finish, and clean up: KFP's launcher (KFP v2 has
no ResourceOp), for a SparkApplication, a RayJob, a JobSet, a TrainJob, or an Indexed Job behind its headless Service.

Names are deterministic per run and attempt: `<pipeline-step>-<digest of the run>-<n>`. A retried task looks at
attempt 1, 2, ... in turn: an object that runs or succeeded is reattached to (waited for, never created twice); a
failed one is deleted and the next attempt's objects are created.

What is deleted when:
- at the step's timeout, and when the task is stopped (SIGTERM: a cancelled run, the pod's deadline): everything
  the attempt created, before the step fails;
- on success: everything (pods, the headless Service), once the outcome is read;
- on failure: nothing yet: the objects and their pods' logs stay for `kubectl describe`/`logs`, the step fails with
  the resource's own message, and the next attempt (a retry) deletes them before creating its own. The last failed
  attempt's objects stay until deleted by hand (they carry the labels `app.kubernetes.io/managed-by=pipegen`,
  `pipegen.dev/pipeline` and `pipegen.dev/step`).

How each kind reports its outcome (`outcome`, a pure function of the object's status):
- SparkApplication (sparkoperator.k8s.io/v1beta2, kubeflow/spark-operator api/v1beta2/sparkapplication_types.go):
  status.applicationState.state COMPLETED succeeds; FAILED or SUBMISSION_FAILED fails, with
  status.applicationState.errorMessage (restartPolicy Never: no other state is final).
- RayJob (ray.io/v1, ray-project/kuberay ray-operator/apis/ray/v1/rayjob_types.go): status.jobStatus, Ray's own
  status of the job, SUCCEEDED succeeds, FAILED or STOPPED fails; status.jobDeploymentStatus Failed or
  ValidationFailed fails too (the cluster never ran the job: a deadline, a refused spec); message status.message.
  jobDeploymentStatus Complete alone is not success (it is Complete for failed jobs as well).
- JobSet (jobset.x-k8s.io/v1alpha2, kubernetes-sigs/jobset api/jobset/v1alpha2/jobset_types.go): status.terminalState
  Completed or Failed; the message of its Completed/Failed condition.
- TrainJob (trainer.kubeflow.org/v1alpha1, kubeflow/trainer pkg/apis/trainer/v1alpha1/trainjob_types.go): only
  conditions: type Complete or Failed with status "True", and that condition's message.
- Job (batch/v1, the Indexed Job): conditions Complete or Failed with status "True" (from Kubernetes 1.31 these come
  after the pods ended; FailureTarget and SuccessCriteriaMet come first and are waited past).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pipegen.runtime.errors import RuntimeFailure

log = logging.getLogger(__name__)

# Each kind's API group and plural (the REST path), and the verbs the launcher's service account needs on it.
PLURALS = {
    ("sparkoperator.k8s.io", "SparkApplication"): "sparkapplications",
    ("ray.io", "RayJob"): "rayjobs",
    ("jobset.x-k8s.io", "JobSet"): "jobsets",
    ("trainer.kubeflow.org", "TrainJob"): "trainjobs",
    ("batch", "Job"): "jobs",
    ("", "Service"): "services",
}
VERBS = ("create", "get", "delete")
# The same values as pipegen.k8s.spark / pipegen.k8s.ray, which the runtime does not import (they load the compiler;
# tests/runtime/test_k8s_launch.py holds them equal).
SPARK_SUCCEEDED, SPARK_FAILED = ("COMPLETED",), ("FAILED", "SUBMISSION_FAILED")
RAY_SUCCEEDED, RAY_FAILED = ("SUCCEEDED",), ("FAILED", "STOPPED")
RAY_FAILED_DEPLOYMENTS = ("Failed", "ValidationFailed")
# A name's length: a SparkApplication's driver Service is `<name>-<16 hex>-driver-svc` (63 at most), KubeRay refuses
# RayJob names past 47, an Indexed Job's pod hostname is `<name>-<index>` and a JobSet's `<name>-node-0-<index>`.
NAME_LENGTH = 35


@dataclass(frozen=True)
class Outcome:
    """Where the main object is: running (or not started), succeeded or failed, and what its status says."""

    state: Literal["running", "succeeded", "failed"]
    message: str = ""


def _true_condition(status: Mapping[str, Any], *types: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") in types and str(condition.get("status")) == "True":
            return dict(condition)
    return None


def _said(*texts: object) -> str:
    return "; ".join(str(t) for t in texts if t) or "no reason given"


def outcome(kind: str, status: Mapping[str, Any] | None) -> Outcome:
    """The outcome a kind's status document reports (see the module's docstring for each kind's fields)."""
    status = status or {}
    if kind == "SparkApplication":
        app = status.get("applicationState") or {}
        state = str(app.get("state") or "")
        if state in SPARK_SUCCEEDED:
            return Outcome("succeeded", state)
        if state in SPARK_FAILED:
            return Outcome("failed", f"{state}: {_said(app.get('errorMessage'))}")
        return Outcome("running", state)
    if kind == "RayJob":
        job, deployment = str(status.get("jobStatus") or ""), str(status.get("jobDeploymentStatus") or "")
        if job in RAY_SUCCEEDED:
            return Outcome("succeeded", job)
        if job in RAY_FAILED or deployment in RAY_FAILED_DEPLOYMENTS:
            what = f"jobStatus {job}" if job in RAY_FAILED else f"jobDeploymentStatus {deployment}"
            return Outcome("failed", f"{what}: {_said(status.get('reason'), status.get('message'))}")
        return Outcome("running", job or deployment)
    if kind == "JobSet":
        terminal = str(status.get("terminalState") or "")
        condition = _true_condition(status, terminal) or {}
        if terminal == "Completed":
            return Outcome("succeeded", terminal)
        if terminal == "Failed":
            return Outcome("failed", f"{terminal}: {_said(condition.get('reason'), condition.get('message'))}")
        return Outcome("running")
    if kind in ("TrainJob", "Job"):
        failed = _true_condition(status, "Failed")
        if failed is not None:
            return Outcome("failed", f"Failed: {_said(failed.get('reason'), failed.get('message'))}")
        if _true_condition(status, "Complete") is not None:
            return Outcome("succeeded", "Complete")
        return Outcome("running")
    raise ValueError(f"no outcome is known for kind '{kind}'")


def object_name(base: str, run_id: str, attempt: int) -> str:
    """The objects' name for one attempt of a step in one run: a DNS-1123 label of at most NAME_LENGTH characters.

    base is `<pipeline>-<step>`; the digest covers base and run id whole, so names cut short stay distinct.
    """
    digest = hashlib.sha256(f"{base}\0{run_id}".encode()).hexdigest()[:10]
    suffix = f"-{digest}-{attempt}"
    head = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")[: NAME_LENGTH - len(suffix)].strip("-")
    return (head or "pipegen") + suffix


def named(objects: Sequence[Mapping[str, Any]], slots: Sequence[Mapping[str, Any]], name: str) -> list[dict[str, Any]]:
    """The objects with the name written where the slots say (`{"at": path, "name": [parts]}`: the parts joined
    by the name). Other slots were filled before (runtime.step renders them)."""
    import copy

    out = copy.deepcopy([dict(o) for o in objects])
    for slot in slots:
        if "name" in slot:
            put(out, slot["at"], name.join(slot["name"]))
    return out


def filled(
    objects: Sequence[Mapping[str, Any]],
    slots: Sequence[Mapping[str, Any]],
    render: Callable[[str], str],
    mlflow_run: Mapping[str, str] | None,
) -> list[dict[str, Any]]:
    """The objects with the run's values written where the slots say; every other string stays as it came.

    Slots: `{"at": path, "text": template, "kubelet": bool}` (a spec string rendered; with kubelet its '$' doubled,
    which the kubelet reads as one), `{"at": path, "shell": [templates]}` (rendered words as one POSIX shell line,
    then '$' doubled: KubeRay's submitter hands a RayJob's entrypoint to bash), `{"at": path, "mlflow": "run_id" |
    "experiment_id"}` (the training run start_run made). Name slots are launch's.
    """
    import copy
    import shlex

    out = copy.deepcopy([dict(o) for o in objects])
    for slot in slots:
        if "text" in slot:
            value = render(slot["text"])
            put(out, slot["at"], value.replace("$", "$$") if slot.get("kubelet") else value)
        elif "shell" in slot:
            put(out, slot["at"], shlex.join(render(w) for w in slot["shell"]).replace("$", "$$"))
        elif "mlflow" in slot:
            if mlflow_run is None:
                raise RuntimeFailure("this step's objects need the training run, and the task was given none")
            put(out, slot["at"], str(mlflow_run[slot["mlflow"]]))
    return out


def put(document: Any, path: Sequence[str | int], value: Any) -> None:
    """Set the value at path (keys and list indices) inside document."""
    *parents, last = path
    for key in parents:
        document = document[key]
    document[last] = value


class Cluster(Protocol):
    """The Kubernetes API as the launcher uses it: objects as dicts, None for one that does not exist."""

    def create(self, obj: Mapping[str, Any]) -> None:
        """Create the object; an existing one of that name is kept (a retry reattaches)."""

    def get(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """The object as the API server has it now, or None."""

    def delete(self, obj: Mapping[str, Any]) -> None:
        """Delete the object and, in the background, what it owns (pods); a missing one is already gone."""


def _kind(obj: Mapping[str, Any]) -> str:
    return str(obj["kind"])


def _describe(obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{_kind(obj)} {meta.get('namespace', 'default')}/{meta['name']}"


def launch(
    objects: Sequence[Mapping[str, Any]],
    slots: Sequence[Mapping[str, Any]],
    *,
    base: str,
    run_id: str,
    cluster: Cluster,
    timeout_seconds: float | None = None,
    poll_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Create the objects in order (the main one last), wait for the main one's outcome, clean up (module docstring).

    Returns {"name", "kind", "attempt", "status"}; RuntimeFailure with the resource's own message when it fails.
    """
    from pipegen.runtime.aws_jobs import _wait

    attempt = 1
    while True:
        made = named(objects, slots, object_name(base, run_id, attempt))
        main = made[-1]
        found = cluster.get(main)
        if found is None:
            for obj in made:
                cluster.create(obj)
            log.info("created %s", ", ".join(_describe(o) for o in made))
            break
        if found.get("metadata", {}).get("deletionTimestamp"):
            attempt += 1  # an earlier attempt's, being deleted
            continue
        if outcome(_kind(main), found.get("status")).state == "failed":
            log.info("deleting %s: it failed in an earlier attempt", _describe(main))
            _delete(cluster, made)
            attempt += 1
            continue
        for obj in made[:-1]:
            cluster.create(obj)  # the Service of an attempt stopped between the two creations
        log.info("found %s created earlier for this run: waiting for it", _describe(main))
        break
    what = _describe(main)
    seen: list[Outcome] = []

    def done() -> bool:
        current = cluster.get(main)
        if current is None:
            raise RuntimeFailure(f"{what} was deleted before it finished")
        result = outcome(_kind(main), current.get("status"))
        if not seen or result != seen[-1]:
            log.info("%s: %s", what, result.message or result.state)
        seen.append(result)
        if result.state == "failed":
            raise RuntimeFailure(
                f"{what} failed: {result.message} (kept for inspection: kubectl describe -n "
                f"{main['metadata'].get('namespace', 'default')} {_kind(main).lower()} {main['metadata']['name']})"
            )
        return result.state == "succeeded"

    _wait(
        done,
        lambda reason: _delete(cluster, made),
        what,
        timeout_seconds=timeout_seconds,
        poll_seconds=poll_seconds,
        sleep=sleep,
        clock=clock,
    )
    _delete(cluster, made)
    return {"name": main["metadata"]["name"], "kind": _kind(main), "attempt": attempt, "status": seen[-1].message}


def _delete(cluster: Cluster, objects: Sequence[Mapping[str, Any]]) -> None:
    """Delete the main object first (its pods stop), then what it needed (the headless Service)."""
    for obj in reversed(objects):
        cluster.delete(obj)
    log.info("deleted %s", ", ".join(_describe(o) for o in objects))


class ApiCluster:
    """Cluster through the official `kubernetes` client (the `k8s` extra): in-cluster config first (the task pod's
    service account), a kubeconfig second. Custom resources and Jobs through CustomObjectsApi, Services through
    CoreV1Api."""

    def __init__(self) -> None:
        from kubernetes import client, config  # type: ignore[import-not-found,import-untyped,unused-ignore]

        try:
            config.load_incluster_config()
        except config.ConfigException:
            try:
                config.load_kube_config()
            except config.ConfigException as exc:
                raise RuntimeFailure(
                    f"cannot reach a Kubernetes API server: not in a pod with a service account, and {exc}"
                ) from None
        self._api = client.ApiClient()
        self._custom = client.CustomObjectsApi(self._api)
        self._core = client.CoreV1Api(self._api)
        self._options = client.V1DeleteOptions(propagation_policy="Background")

    def _where(self, obj: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
        group, _, version = str(obj["apiVersion"]).rpartition("/")
        plural = PLURALS[(group, _kind(obj))]
        meta = obj["metadata"]
        return group, version, str(meta.get("namespace", "default")), plural, str(meta["name"])

    def _missing(self, exc: Exception, *codes: int) -> bool:
        from kubernetes.client.rest import ApiException  # type: ignore[import-not-found,import-untyped,unused-ignore]

        return isinstance(exc, ApiException) and exc.status in codes

    def create(self, obj: Mapping[str, Any]) -> None:
        """Create it (409 AlreadyExists: this run's attempt made it before)."""
        group, version, namespace, plural, _ = self._where(obj)
        try:
            if group:
                self._custom.create_namespaced_custom_object(group, version, namespace, plural, dict(obj))
            else:
                self._core.create_namespaced_service(namespace, dict(obj))
        except Exception as exc:
            if not self._missing(exc, 409):
                raise

    def get(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """The object now (a dict), None when absent."""
        group, version, namespace, plural, name = self._where(obj)
        try:
            if group:
                found = self._custom.get_namespaced_custom_object(group, version, namespace, plural, name)
            else:
                found = self._api.sanitize_for_serialization(self._core.read_namespaced_service(name, namespace))
        except Exception as exc:
            if self._missing(exc, 404):
                return None
            raise
        return dict(found)

    def delete(self, obj: Mapping[str, Any]) -> None:
        """Delete it with background propagation (a Job's pods go too; the API's default for Jobs orphans them)."""
        group, version, namespace, plural, name = self._where(obj)
        try:
            if group:
                self._custom.delete_namespaced_custom_object(
                    group, version, namespace, plural, name, body=self._options
                )
            else:
                self._core.delete_namespaced_service(name, namespace, body=self._options)
        except Exception as exc:
            if not self._missing(exc, 404):
                raise
