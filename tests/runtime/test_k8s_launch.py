"""The Kubernetes launcher (pipegen.runtime.k8s_launch): how it reads each kind's status, names objects per run and
attempt, fills a run's values into the compiler's objects, and what it creates, reattaches to and deletes.

The status documents are shaped as the controllers write them and are checked against each project's published
schema here (the Spark Operator's models, KubeRay's RayJob CRD, the JobSet and TrainJob models, Kubernetes' own Job
schema), so the launcher is tested on what a cluster returns. No Kubernetes API server runs here (none can be
installed from the reachable registries): the lifecycle tests use `Objects`, a dict of objects by name that plays
the API's create/get/delete and whose statuses the test sets, to check pipegen's own decisions (reattach, next
attempt, delete at the timeout); ApiCluster's calls on a real cluster are not exercised.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from typing import Any

import kubernetes_validate
import pytest
from kubeflow_spark_api.models import SparkV1beta2SparkApplicationStatus
from kubeflow_trainer_api import models

from pipegen.k8s import ray as k8s_ray
from pipegen.k8s import spark as k8s_spark
from pipegen.runtime import k8s_launch
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.k8s_launch import filled, launch, named, object_name, outcome
from tests.k8s.strict import validate_ray_job

# ---- status documents, as each controller writes them -----------------------------------------------------------

SPARK = {
    "completed": {
        "applicationState": {"state": "COMPLETED"},
        "driverInfo": {"podName": "clicks-features-driver"},
        "executionAttempts": 1,
        "submissionAttempts": 1,
        "sparkApplicationId": "spark-7f3b",
        "terminationTime": "2026-12-02T03:20:00Z",
    },
    "failed": {
        "applicationState": {
            "state": "FAILED",
            "errorMessage": "driver container failed with ExitCode: 1, Reason: Error",
        },
        "driverInfo": {"podName": "clicks-features-driver"},
        "executionAttempts": 1,
        "submissionAttempts": 1,
    },
    "submission_failed": {
        "applicationState": {"state": "SUBMISSION_FAILED", "errorMessage": "failed to run spark-submit: exit 1"},
        "driverInfo": {},
        "submissionAttempts": 1,
    },
    "running": {
        "applicationState": {"state": "RUNNING"},
        "driverInfo": {"podName": "clicks-features-driver"},
        "executorState": {"clicks-exec-1": "RUNNING"},
    },
}
RAY = {
    "succeeded": {"jobStatus": "SUCCEEDED", "jobDeploymentStatus": "Complete", "jobId": "rayjob-x", "message": ""},
    "failed": {
        "jobStatus": "FAILED",
        "jobDeploymentStatus": "Complete",
        "reason": "AppFailed",
        "message": "Job entrypoint command failed with exit code 1",
    },
    "stopped": {"jobStatus": "STOPPED", "jobDeploymentStatus": "Complete"},
    "deadline": {
        "jobDeploymentStatus": "Failed",
        "reason": "DeadlineExceeded",
        "message": "The RayJob has passed the activeDeadlineSeconds. DeadlineExceeded",
    },
    "invalid": {"jobDeploymentStatus": "ValidationFailed", "reason": "ValidationFailed", "message": "bad spec"},
    # jobDeploymentStatus Complete alone is not success: KubeRay sets it for failed and stopped jobs too.
    "running": {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"},
}
WHEN = "2026-12-02T03:20:00Z"


def condition(kind: str, reason: str, message: str, status: str = "True") -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": WHEN,
    }


JOBSET = {
    "completed": {
        "restarts": 0,
        "terminalState": "Completed",
        "conditions": [condition("Completed", "AllJobsCompleted", "jobset completed successfully")],
    },
    "failed": {
        "restarts": 0,
        "terminalState": "Failed",
        "conditions": [condition("Failed", "FailedJobs", "jobset failed due to one or more job failures")],
    },
    "running": {
        "replicatedJobsStatus": [
            {"name": "node", "active": 1, "ready": 0, "failed": 0, "succeeded": 0, "suspended": 0}
        ],
        "restarts": 0,
    },
}
TRAINJOB = {
    "complete": {"conditions": [condition("Complete", "JobsCompleted", "TrainJob is completed")]},
    "failed": {"conditions": [condition("Failed", "JobsFailed", "TrainJob is failed: node-0 exited with 1")]},
    "suspended": {"conditions": [condition("Suspended", "Suspended", "TrainJob is suspended")]},
}
JOB = {
    "complete": {
        "conditions": [
            condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
            condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
        ],
        "succeeded": 2,
        "completedIndexes": "0-1",
    },
    "failed": {
        "conditions": [
            condition("FailureTarget", "PodFailurePolicy", "Container node for pod ml/j-0 failed with exit code 1"),
            condition("Failed", "PodFailurePolicy", "Container node for pod ml/j-0 failed with exit code 1"),
        ],
        "failed": 1,
    },
    # The pods are still ending: not failed yet (Kubernetes 1.31+ adds Failed once they have).
    "failing": {
        "conditions": [condition("FailureTarget", "PodFailurePolicy", "Container node for pod ml/j-0 failed")],
        "failed": 1,
    },
    "running": {"active": 2, "ready": 2},
}


def as_json(value: Any) -> Any:
    """A model's dict as the API writes it (the models read timestamps as datetimes)."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def round_trip(model: Any, status: dict[str, Any]) -> None:
    """The models ignore unknown keys: a status is theirs only if it comes back unchanged."""
    back = model.from_dict(status)
    assert back is not None and as_json(back.to_dict()) == status, model.__name__


def test_the_status_documents_are_what_each_project_publishes() -> None:
    for status in SPARK.values():
        round_trip(SparkV1beta2SparkApplicationStatus, status)
    for status in RAY.values():
        validate_ray_job({"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "r"}, "status": status})
    for status in JOBSET.values():
        round_trip(models.JobsetV1alpha2JobSetStatus, status)
    for status in TRAINJOB.values():
        round_trip(models.TrainerV1alpha1TrainJobStatus, status)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"containers": [{"name": "node", "image": "i"}]}}},
    }
    for status in JOB.values():
        kubernetes_validate.validate({**job, "status": status}, "1.37.0", strict=True)


@pytest.mark.parametrize(
    ("kind", "status", "state", "said"),
    [
        ("SparkApplication", SPARK["completed"], "succeeded", "COMPLETED"),
        ("SparkApplication", SPARK["failed"], "failed", "driver container failed with ExitCode: 1"),
        ("SparkApplication", SPARK["submission_failed"], "failed", "SUBMISSION_FAILED: failed to run spark-submit"),
        ("SparkApplication", SPARK["running"], "running", "RUNNING"),
        ("SparkApplication", None, "running", ""),
        ("RayJob", RAY["succeeded"], "succeeded", "SUCCEEDED"),
        ("RayJob", RAY["failed"], "failed", "AppFailed; Job entrypoint command failed with exit code 1"),
        ("RayJob", RAY["stopped"], "failed", "jobStatus STOPPED"),
        ("RayJob", RAY["deadline"], "failed", "jobDeploymentStatus Failed: DeadlineExceeded"),
        ("RayJob", RAY["invalid"], "failed", "ValidationFailed: ValidationFailed; bad spec"),
        ("RayJob", RAY["running"], "running", "RUNNING"),
        ("JobSet", JOBSET["completed"], "succeeded", "Completed"),
        ("JobSet", JOBSET["failed"], "failed", "FailedJobs; jobset failed due to one or more job failures"),
        ("JobSet", JOBSET["running"], "running", ""),
        ("TrainJob", TRAINJOB["complete"], "succeeded", "Complete"),
        ("TrainJob", TRAINJOB["failed"], "failed", "JobsFailed; TrainJob is failed: node-0 exited with 1"),
        ("TrainJob", TRAINJOB["suspended"], "running", ""),
        ("Job", JOB["complete"], "succeeded", "Complete"),
        ("Job", JOB["failed"], "failed", "PodFailurePolicy; Container node for pod ml/j-0 failed with exit code 1"),
        ("Job", JOB["failing"], "running", ""),
        ("Job", JOB["running"], "running", ""),
    ],
)
def test_each_kind_reports_its_outcome_with_its_own_message(
    kind: str, status: dict[str, Any] | None, state: str, said: str
) -> None:
    found = outcome(kind, status)
    assert found.state == state
    assert said in found.message


def test_the_states_are_the_builders_own() -> None:
    # The runtime does not import pipegen.k8s (it loads the compiler): its copies must not drift.
    assert k8s_launch.SPARK_SUCCEEDED == k8s_spark.SUCCEEDED_STATES
    assert k8s_launch.SPARK_FAILED == k8s_spark.FAILED_STATES
    assert k8s_launch.RAY_SUCCEEDED == k8s_ray.SUCCEEDED_STATUSES
    assert k8s_launch.RAY_FAILED == k8s_ray.FAILED_STATUSES
    assert k8s_launch.RAY_FAILED_DEPLOYMENTS == k8s_ray.FAILED_DEPLOYMENTS


def test_names_are_per_run_and_attempt_and_fit_every_kind() -> None:
    long = "a-very-long-pipeline-name-that-goes-on-train_the_model"
    names = {object_name(base, run, n) for base in (long, long + "2", "p-s") for run in ("r1", "r2") for n in (1, 2)}
    assert len(names) == 12
    for name in names:
        assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name) and len(name) <= k8s_launch.NAME_LENGTH, name
    assert object_name("p-s", "r1", 1) == object_name("p-s", "r1", 1)
    assert object_name("p_s", "run", 3).endswith("-3")


# ---- filling in a run's values ----------------------------------------------------------------------------------

OBJECTS = [
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "", "namespace": "ml"},
        "spec": {"selector": {"batch.kubernetes.io/job-name": ""}},
    },
    {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "", "namespace": "ml"},
        "spec": {
            "template": {
                "spec": {
                    "subdomain": "",
                    "containers": [
                        {
                            "name": "node",
                            # Literal text as the compiler wrote it: '$$' is the kubelet's escape, `${params.lr}`
                            # was a literal `$${params.lr}` in the spec; neither is rendered again.
                            "command": ["python", "--note=$${params.lr} $$(HOME)", "--lr", ""],
                            "env": [
                                {"name": "MASTER_ADDR", "value": ""},
                                {"name": "MLFLOW_RUN_ID", "value": ""},
                                {"name": "WHO", "value": ""},
                            ],
                        }
                    ],
                }
            }
        },
    },
]
CONTAINER = [1, "spec", "template", "spec", "containers", 0]
SLOTS = [
    {"at": [0, "metadata", "name"], "name": ["", ""]},
    {"at": [0, "spec", "selector", "batch.kubernetes.io/job-name"], "name": ["", ""]},
    {"at": [1, "metadata", "name"], "name": ["", ""]},
    {"at": [1, "spec", "template", "spec", "subdomain"], "name": ["", ""]},
    {"at": [*CONTAINER, "command", 3], "text": "${params.lr}", "kubelet": True},
    {"at": [*CONTAINER, "env", 0, "value"], "name": ["", "-0.", ""]},
    {"at": [*CONTAINER, "env", 1, "value"], "mlflow": "run_id"},
    {"at": [*CONTAINER, "env", 2, "value"], "shell": ["echo", "${params.who}"]},
]


def test_only_the_slots_are_rendered_and_literal_text_stays_as_it_came() -> None:
    values = {"${params.lr}": "0.1$(SECRET)", "${params.who}": "it's $me"}
    before = copy.deepcopy(OBJECTS)
    done = named(
        filled(OBJECTS, SLOTS, lambda text: values.get(text, text), {"run_id": "abc123", "experiment_id": "7"}),
        SLOTS,
        "n-1",
    )
    assert before == OBJECTS  # the request is not changed in place
    service, job = done
    assert service["metadata"]["name"] == "n-1" and service["spec"]["selector"] == {
        "batch.kubernetes.io/job-name": "n-1"
    }
    spec = job["spec"]["template"]["spec"]
    assert spec["subdomain"] == "n-1"
    node = spec["containers"][0]
    # A rendered value's '$' doubled: the kubelet reads '$$(SECRET)' as the text '$(SECRET)', never a variable.
    assert node["command"] == ["python", "--note=$${params.lr} $$(HOME)", "--lr", "0.1$$(SECRET)"]
    assert node["env"] == [
        {"name": "MASTER_ADDR", "value": "n-1-0.n-1"},
        {"name": "MLFLOW_RUN_ID", "value": "abc123"},
        {"name": "WHO", "value": "echo 'it'\"'\"'s $$me'"},
    ]


def test_a_training_slot_without_a_training_run_fails_clearly() -> None:
    with pytest.raises(RuntimeFailure, match="need the training run"):
        filled(OBJECTS, SLOTS, lambda text: "x", None)


# ---- the lifecycle ---------------------------------------------------------------------------------------------


class Objects:
    """A dict of objects by (kind, name) standing in for the API server's create/get/delete (see the docstring)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.statuses: list[dict[str, Any]] = []  # what the main object's status becomes at each read

    def create(self, obj: Any) -> None:
        key = (obj["kind"], obj["metadata"]["name"])
        self.calls.append(("create", *key))
        self.objects.setdefault(key, copy.deepcopy(dict(obj)))

    def get(self, obj: Any) -> dict[str, Any] | None:
        key = (obj["kind"], obj["metadata"]["name"])
        found = self.objects.get(key)
        if found is not None and self.statuses and key[0] == "Job":
            found["status"] = self.statuses.pop(0)
        return copy.deepcopy(found)

    def delete(self, obj: Any) -> None:
        key = (obj["kind"], obj["metadata"]["name"])
        self.calls.append(("delete", *key))
        self.objects.pop(key, None)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.01)


def run(cluster: Objects, **kwargs: Any) -> dict[str, Any]:
    clock = Clock()
    objects = filled(OBJECTS, SLOTS, lambda text: "v", {"run_id": "r", "experiment_id": "e"})
    return launch(
        objects, SLOTS, base="p-train", run_id="run-1", cluster=cluster, sleep=clock.sleep, clock=clock, **kwargs
    )


def test_creates_the_service_first_waits_and_deletes_everything_on_success() -> None:
    cluster = Objects()
    cluster.statuses = [JOB["running"], JOB["running"], JOB["complete"]]
    name = object_name("p-train", "run-1", 1)
    result = run(cluster)
    assert result == {"name": name, "kind": "Job", "attempt": 1, "status": "Complete"}
    assert cluster.calls == [
        ("create", "Service", name),
        ("create", "Job", name),
        ("delete", "Job", name),
        ("delete", "Service", name),
    ]


def test_a_retry_reattaches_to_the_running_object_instead_of_creating_a_second() -> None:
    cluster = Objects()
    name = object_name("p-train", "run-1", 1)
    cluster.objects[("Job", name)] = {"kind": "Job", "metadata": {"name": name}, "status": JOB["running"]}
    cluster.statuses = [JOB["running"], JOB["running"], JOB["complete"]]
    assert run(cluster)["attempt"] == 1
    # The Service is created again only if it is missing (create keeps an existing one): no second Job.
    assert [c for c in cluster.calls if c[0] == "create"] == [("create", "Service", name)]


def test_a_failed_attempt_fails_with_the_resources_message_and_is_kept_until_the_retry_deletes_it() -> None:
    cluster = Objects()
    first, second = object_name("p-train", "run-1", 1), object_name("p-train", "run-1", 2)
    cluster.statuses = [JOB["running"], JOB["failing"], JOB["failed"]]
    with pytest.raises(
        RuntimeFailure, match=r"Job ml/.* failed: Failed: PodFailurePolicy; Container node .* exit code 1"
    ):
        run(cluster)
    assert ("Job", first) in cluster.objects  # kept: its pods' logs can be read
    cluster.statuses = [JOB["failed"], JOB["complete"]]
    assert run(cluster)["attempt"] == 2
    assert cluster.calls[-6:] == [
        ("delete", "Job", first),
        ("delete", "Service", first),
        ("create", "Service", second),
        ("create", "Job", second),
        ("delete", "Job", second),
        ("delete", "Service", second),
    ]


def test_the_timeout_deletes_everything_before_the_step_fails() -> None:
    cluster = Objects()
    cluster.statuses = [JOB["running"]] * 1000
    with pytest.raises(RuntimeFailure, match="did not finish within 60s"):
        run(cluster, timeout_seconds=60)
    assert cluster.objects == {}
    assert [c[:2] for c in cluster.calls[-2:]] == [("delete", "Job"), ("delete", "Service")]
