"""What the Prefect kubernetes task's wait loop makes of a Job's status and its pods (pipegen.runtime.kubernetes_wait).

The documents are shaped as the API server returns them (`kubectl get -o json`: the Job and Pod references at
https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/), and each is validated strictly against
Kubernetes' published schema first, status included, so a misspelt or invented field cannot stand in for a real one.
"""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from pipegen.runtime.kubernetes_wait import Verdict, verdict, waiting_reason

KUBERNETES = "1.37.0"
JOB = "feed-ranking-16gpu-train-5f1c9a2e-1"
T0 = "2026-03-08T02:00:00Z"


def real(obj: dict[str, Any]) -> dict[str, Any]:
    """The document, once Kubernetes' schema (strict: no unknown field) accepts it."""
    kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    return obj


def job(**status: Any) -> dict[str, Any]:
    return real(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": JOB, "namespace": "ml-training", "uid": "0b7e5a52-8c1d-4f0e-9a51-3c1f0d2b6a77"},
            "spec": {
                "completionMode": "Indexed",
                "completions": 2,
                "parallelism": 2,
                "backoffLimit": 0,
                "activeDeadlineSeconds": 28800,
                "selector": {
                    "matchLabels": {"batch.kubernetes.io/controller-uid": "0b7e5a52-8c1d-4f0e-9a51-3c1f0d2b6a77"}
                },
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "node", "image": "feed/train:2.0.0"}]}
                },
            },
            "status": status,
        }
    )


def condition(kind: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": T0,
        "lastTransitionTime": T0,
    }


def pod(
    index: int, phase: str, *, waiting: tuple[str, str] | None = None, unschedulable: str | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "qosClass": "Guaranteed"}
    if unschedulable is not None:
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable,
                "lastProbeTime": None,
                "lastTransitionTime": T0,
            }
        ]
    else:
        status |= {"hostIP": "10.0.3.7", "podIP": f"10.244.1.{10 + index}", "startTime": T0}
        state: dict[str, Any] = (
            {"waiting": {"reason": waiting[0], "message": waiting[1]}}
            if waiting
            else {"running": {"startedAt": T0}}
            if phase == "Running"
            else {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": T0, "finishedAt": T0}}
        )
        status["containerStatuses"] = [
            {
                "name": "node",
                "image": "feed/train:2.0.0",
                "imageID": "",
                "ready": phase == "Running",
                "restartCount": 0,
                "started": phase == "Running",
                "state": state,
            }
        ]
    return real(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{JOB}-{index}-x7k2p",
                "namespace": "ml-training",
                "labels": {"batch.kubernetes.io/job-completion-index": str(index), "job-name": JOB},
            },
            "spec": {"restartPolicy": "Never", "containers": [{"name": "node", "image": "feed/train:2.0.0"}]},
            "status": status,
        }
    )


PULL = ("ImagePullBackOff", 'Back-off pulling image "feed/train:2.0.0"')
CREATING = ("ContainerCreating", "")
RUNNING = job(active=2, ready=2, startTime=T0)


def judge(
    job_doc: dict[str, Any],
    pods: list[dict[str, Any]],
    waited: float,
    *,
    pending_for: float | None = None,
    timeout: int | None = 7200,
    startup_timeout: int | None = 1200,
) -> Verdict:
    ages = {p["metadata"]["name"]: waited if pending_for is None else pending_for for p in pods}
    return verdict(job_doc, pods, waited=waited, pending_for=ages, timeout=timeout, startup_timeout=startup_timeout)


def test_a_running_job_is_waited_on() -> None:
    assert judge(RUNNING, [pod(0, "Running"), pod(1, "Running")], 5000) == Verdict()


def test_a_complete_job_succeeded() -> None:
    done = job(
        succeeded=2,
        startTime=T0,
        completionTime=T0,
        completedIndexes="0-1",
        conditions=[
            condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
            condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
        ],
    )
    assert judge(done, [pod(0, "Succeeded"), pod(1, "Succeeded")], 3600) == Verdict(succeeded=True)


def test_a_failed_job_fails_the_attempt_with_its_reason() -> None:
    failed = job(
        failed=1,
        startTime=T0,
        conditions=[
            condition(
                "FailureTarget",
                "PodFailurePolicy",
                f"Container node for pod ml-training/{JOB}-1-x7k2p failed with exit code 1 matching FailJob rule at "
                "index 0",
            )
        ],
    )
    result = judge(failed, [pod(0, "Running"), pod(1, "Failed")], 900)
    assert result.failure is not None and not result.succeeded
    assert result.failure.startswith(f"Job {JOB} failed (PodFailurePolicy: Container node for pod ml-training/{JOB}-1")


def test_the_deadline_the_cluster_enforces_is_a_failure() -> None:
    over = job(
        failed=2,
        startTime=T0,
        conditions=[condition("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")],
    )
    assert judge(over, [], 28801).failure == (
        f"Job {JOB} failed (DeadlineExceeded: Job was active longer than specified deadline)"
    )


def test_the_timeout_counts_wall_time_from_creation_even_with_no_active_pod() -> None:
    """prefect-kubernetes' loop counted only the time the Job had active pods: a Job whose pods never came never
    timed out. Here the step's timeout is wall time since the Job's creation, whatever its status says."""
    created = job()  # no pod yet: status is empty, active unset
    assert judge(created, [], 7199, startup_timeout=None) == Verdict()
    result = judge(created, [], 7200, startup_timeout=None)
    assert result.failure == f"Job {JOB} timed out: not finished 7200s after its creation (timeout 7200s)"
    assert judge(RUNNING, [pod(0, "Running"), pod(1, "Running")], 7300).failure is not None


def test_a_pod_pulling_its_image_past_startup_timeout_fails_the_attempt_naming_the_pod_and_the_reason() -> None:
    pods = [pod(0, "Running"), pod(1, "Pending", waiting=PULL)]
    job_doc = job(active=2, ready=1, startTime=T0)
    assert judge(job_doc, pods, 1199) == Verdict()
    assert judge(job_doc, pods, 1200).failure == (
        f"pod {JOB}-1-x7k2p of Job {JOB} has not started within startup_timeout (1200s): container node: "
        'ImagePullBackOff (Back-off pulling image "feed/train:2.0.0")'
    )


def test_an_unschedulable_pod_past_startup_timeout_says_why_the_scheduler_left_it() -> None:
    message = "0/12 nodes are available: 12 Insufficient nvidia.com/gpu. preemption: 0/12 nodes are available"
    result = judge(job(active=1, startTime=T0), [pod(0, "Pending", unschedulable=message)], 1500)
    assert result.failure == (
        f"pod {JOB}-0-x7k2p of Job {JOB} has not started within startup_timeout (1200s): not scheduled: "
        f"Unschedulable ({message})"
    )


def test_startup_timeout_counts_from_when_each_pod_appeared() -> None:
    """A pod that appeared late (a replacement, or a slow controller) gets its own allowance, not the Job's age."""
    pods = [pod(0, "Running"), pod(1, "Pending", waiting=CREATING)]
    assert judge(RUNNING, pods, 5000, pending_for=600) == Verdict()
    assert judge(RUNNING, pods, 5000, pending_for=1200).failure is not None


def test_without_startup_timeout_a_pending_pod_is_waited_on_until_the_timeout() -> None:
    pods = [pod(0, "Pending", waiting=PULL)]
    assert judge(RUNNING, pods, 7000, startup_timeout=None) == Verdict()


def test_no_pod_at_all_past_startup_timeout_fails_the_attempt() -> None:
    result = judge(job(), [], 1200)
    assert result.failure is not None and result.failure.startswith(f"Job {JOB} has no pod 1200s after its creation")


def test_a_pod_being_deleted_is_not_one_that_failed_to_start() -> None:
    leaving = copy.deepcopy(pod(1, "Pending", waiting=PULL))
    leaving["metadata"]["deletionTimestamp"] = T0
    assert judge(RUNNING, [pod(0, "Running"), real(leaving)], 5000) == Verdict()


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (
            pod(0, "Pending", waiting=PULL),
            'container node: ImagePullBackOff (Back-off pulling image "feed/train:2.0.0")',
        ),
        (pod(0, "Pending", waiting=CREATING), "container node: ContainerCreating"),
        (
            pod(0, "Pending", unschedulable="0/3 nodes are available"),
            "not scheduled: Unschedulable (0/3 nodes are available)",
        ),
    ],
)
def test_waiting_reason(doc: dict[str, Any], reason: str) -> None:
    assert waiting_reason(doc) == reason


def test_a_made_up_status_field_is_not_accepted_as_real() -> None:
    """The strict validation above can fail: a Pod status with an invented field is rejected."""
    bogus = copy.deepcopy(pod(0, "Pending", waiting=PULL))
    bogus["status"]["waitingReason"] = "ImagePullBackOff"
    with pytest.raises(kubernetes_validate.ValidationError):
        real(bogus)
