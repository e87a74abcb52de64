"""The Job controller: success, retries up to backoffLimit, deadline, parallelism,
suspend, TTL and deletion propagation."""

from __future__ import annotations

import re

from kubernetes import client, watch

from .conftest import condition, job_body, job_finished, wait_for


def _pods(core: client.CoreV1Api, namespace: str, job: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items


def test_job_success(batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str) -> None:
    created = batch.create_namespaced_job(
        namespace,
        job_body(
            "ok", duration="300ms", env={"MERIDIAN_ATTEMPT": "3"}, labels={"meridian.io/task": "t1"}
        ),
    )
    job = wait_for(job_finished(batch, namespace, "ok"), what="job to finish")
    complete = condition(job, "Complete")
    assert complete.status == "True" and condition(job, "Failed") is None
    assert job.status.succeeded == 1 and not job.status.failed and not job.status.active
    assert job.status.start_time and job.status.completion_time
    assert job.status.completion_time >= job.status.start_time
    [pod] = _pods(core, namespace, "ok")
    uid = created.metadata.uid
    labels = pod.metadata.labels
    assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "ok"
    assert labels["controller-uid"] == labels["batch.kubernetes.io/controller-uid"] == uid
    assert labels["meridian.io/task"] == "t1"
    assert re.fullmatch(r"ok-[a-z0-9]{5}", pod.metadata.name)
    [owner] = pod.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Job", "ok", uid, True)
    assert pod.status.phase == "Succeeded"
    assert re.fullmatch(r"127\.\d+\.\d+\.\d+", pod.status.pod_ip)
    assert pod.status.pod_ip != "127.0.0.1"
    [cs] = pod.status.container_statuses
    assert cs.state.terminated.exit_code == 0 and cs.state.terminated.reason == "Completed"
    assert cs.state.terminated.started_at and cs.state.terminated.finished_at
    assert pod.spec.containers[0].env[0].name == "MERIDIAN_ATTEMPT"
    assert pod.spec.containers[0].env[0].value == "3"
    log = core.read_namespaced_pod_log(pod.metadata.name, namespace)
    assert "MERIDIAN_ATTEMPT=3" in log and "exited with code 0" in log
    reasons = {e.reason for e in core.list_namespaced_event(namespace).items}
    assert {"SuccessfulCreate", "Scheduled", "Pulled", "Started", "Completed"} <= reasons


def test_failure_retries_up_to_backoff_limit(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(
        namespace, job_body("bad", duration="100ms", exit_code=3, backoffLimit=2)
    )
    job = wait_for(job_finished(batch, namespace, "bad"), what="job to fail")
    failed = condition(job, "Failed")
    assert failed.status == "True" and failed.reason == "BackoffLimitExceeded"
    assert failed.message == "Job has reached the specified backoff limit"
    assert job.status.failed == 3 and not job.status.succeeded
    assert job.status.completion_time is None
    pods = _pods(core, namespace, "bad")
    assert len(pods) == 3
    for pod in pods:
        assert pod.status.phase == "Failed"
        terminated = pod.status.container_statuses[0].state.terminated
        assert terminated.exit_code == 3 and terminated.reason == "Error"
    events = [
        e for e in core.list_namespaced_event(namespace).items if e.reason == "BackoffLimitExceeded"
    ]
    assert events and events[0].type == "Warning"


def test_backoff_limit_zero_fails_on_first_error(batch: client.BatchV1Api, namespace: str) -> None:
    batch.create_namespaced_job(
        namespace, job_body("once", duration="50ms", exit_code=1, backoffLimit=0)
    )
    job = wait_for(job_finished(batch, namespace, "once"))
    assert condition(job, "Failed").reason == "BackoffLimitExceeded"
    assert job.status.failed == 1


def test_active_deadline_seconds(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(
        namespace, job_body("slow", duration="60s", activeDeadlineSeconds=1)
    )
    job = wait_for(job_finished(batch, namespace, "slow"), timeout=5)
    failed = condition(job, "Failed")
    assert failed.reason == "DeadlineExceeded"
    assert failed.message == "Job was active longer than specified deadline"
    wait_for(
        lambda: not [p for p in _pods(core, namespace, "slow") if p.status.phase == "Running"],
        what="pods to stop",
    )


def _job_statuses_until_settled(
    batch: client.BatchV1Api, namespace: str, name: str, resource_version: str
) -> list[client.V1JobStatus]:
    """Every status the Job is written with from resource_version until it is Failed with
    no pod left terminating."""
    w = watch.Watch()
    statuses = []
    for event in w.stream(
        batch.list_namespaced_job,
        namespace,
        field_selector=f"metadata.name={name}",
        resource_version=resource_version,
        timeout_seconds=10,
    ):
        status = event["object"].status
        statuses.append(status)
        if condition(event["object"], "Failed") and status.terminating == 0:
            w.stop()
    return statuses


def test_deadline_counts_the_pods_it_stops_as_failed(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    # pkg/controller/job deletes the active pods of a Job past its deadline and counts each
    # as failed (and as terminating until it is gone); active drops to 0.
    created = batch.create_namespaced_job(
        namespace, job_body("late", duration="60s", parallelism=2, activeDeadlineSeconds=2)
    )
    running = wait_for(
        lambda: (
            len([p for p in _pods(core, namespace, "late") if p.status.phase == "Running"]) == 2
        ),
        timeout=2,
        what="both pods running before the deadline",
    )
    assert running
    statuses = _job_statuses_until_settled(
        batch, namespace, "late", created.metadata.resource_version
    )
    failing = [s for s in statuses if any(c.type == "Failed" for c in s.conditions or [])]
    first, last = failing[0], failing[-1]
    assert (first.failed, first.active, first.ready, first.terminating) == (2, None, 0, 2)
    assert (last.failed, last.active, last.terminating) == (2, None, 0)
    job = batch.read_namespaced_job("late", namespace)
    assert job.status.failed == 2 and not job.status.active and job.status.terminating == 0
    assert not job.status.succeeded
    assert [(c.type, c.status, c.reason) for c in job.status.conditions] == [
        ("FailureTarget", "True", "DeadlineExceeded"),
        ("Failed", "True", "DeadlineExceeded"),
    ]
    wait_for(lambda: not _pods(core, namespace, "late"), what="pods removed")
    assert batch.read_namespaced_job("late", namespace).status.failed == 2


def test_backoff_limit_counts_the_remaining_active_pods_as_failed(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    created = batch.create_namespaced_job(
        namespace, job_body("lost", duration="60s", parallelism=2, backoffLimit=0)
    )
    pods = wait_for(
        lambda: (
            (ps := [p for p in _pods(core, namespace, "lost") if p.status.phase == "Running"])
            and len(ps) == 2
            and ps
        ),
        what="both pods running",
    )
    # A pod removed before it finished is one failure, past backoffLimit 0: the Job fails
    # and the other, still running, pod is stopped and counted as failed too.
    core.delete_namespaced_pod(pods[0].metadata.name, namespace, grace_period_seconds=0)
    statuses = _job_statuses_until_settled(
        batch, namespace, "lost", created.metadata.resource_version
    )
    failing = [s for s in statuses if any(c.type == "Failed" for c in s.conditions or [])]
    assert (failing[0].failed, failing[0].active, failing[0].terminating) == (2, None, 1)
    job = batch.read_namespaced_job("lost", namespace)
    assert condition(job, "Failed").reason == "BackoffLimitExceeded"
    assert job.status.failed == 2 and not job.status.active and job.status.terminating == 0


def test_parallelism_and_completions(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(
        namespace, job_body("par", duration="300ms", parallelism=2, completions=5)
    )
    max_active = 0

    def done() -> bool:
        nonlocal max_active
        job = batch.read_namespaced_job("par", namespace)
        max_active = max(max_active, job.status.active or 0)
        return bool(condition(job, "Complete"))

    wait_for(done, timeout=10)
    job = batch.read_namespaced_job("par", namespace)
    assert job.status.succeeded == 5
    assert max_active == 2
    assert len(_pods(core, namespace, "par")) == 5


def test_suspend_and_resume(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(namespace, job_body("sus", duration="200ms", suspend=True))
    job = wait_for(lambda: condition(batch.read_namespaced_job("sus", namespace), "Suspended"))
    assert job.status == "True" and job.reason == "JobSuspended"
    assert _pods(core, namespace, "sus") == []
    batch.patch_namespaced_job("sus", namespace, {"spec": {"suspend": False}})
    job = wait_for(job_finished(batch, namespace, "sus"))
    assert condition(job, "Complete").status == "True"
    assert condition(job, "Suspended").status == "False"


def test_ttl_seconds_after_finished_deletes_job_and_pods(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(
        namespace, job_body("ttl", duration="50ms", ttlSecondsAfterFinished=1)
    )
    wait_for(job_finished(batch, namespace, "ttl"))
    wait_for(lambda: not batch.list_namespaced_job(namespace).items, timeout=5, what="TTL deletion")
    wait_for(lambda: not _pods(core, namespace, "ttl"), what="pods garbage-collected")


def test_delete_background_removes_pods(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(namespace, job_body("bg", duration="60s"))
    wait_for(lambda: _pods(core, namespace, "bg"))
    batch.delete_namespaced_job("bg", namespace, propagation_policy="Background")
    wait_for(lambda: not _pods(core, namespace, "bg"), what="pods deleted")


def test_delete_foreground_waits_for_pods(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(namespace, job_body("fg", duration="60s"))
    wait_for(lambda: [p for p in _pods(core, namespace, "fg") if p.status.phase == "Running"])
    batch.delete_namespaced_job("fg", namespace, propagation_policy="Foreground")
    # Until its pods are gone, the Job stays with a deletionTimestamp and the finalizer.
    pending = batch.list_namespaced_job(namespace).items
    if pending:
        assert pending[0].metadata.deletion_timestamp is not None
        assert "foregroundDeletion" in pending[0].metadata.finalizers
    wait_for(lambda: not batch.list_namespaced_job(namespace).items, what="job removed")
    assert not _pods(core, namespace, "fg")


def test_delete_orphan_leaves_pods_running(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(namespace, job_body("orph", duration="60s"))
    wait_for(lambda: _pods(core, namespace, "orph"))
    batch.delete_namespaced_job("orph", namespace, propagation_policy="Orphan")
    pods = _pods(core, namespace, "orph")
    assert len(pods) == 1 and not pods[0].metadata.owner_references
    assert pods[0].metadata.deletion_timestamp is None


def test_delete_pod_with_grace_period(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(namespace, job_body("grace", duration="60s", backoffLimit=5))
    [pod] = wait_for(
        lambda: [p for p in _pods(core, namespace, "grace") if p.status.phase == "Running"]
    )
    deleted = core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=30)
    assert deleted.metadata.deletion_timestamp is not None
    assert deleted.metadata.deletion_grace_period_seconds == 30
    wait_for(
        lambda: pod.metadata.name not in {p.metadata.name for p in _pods(core, namespace, "grace")}
    )
    # The Job controller counts the removed pod as failed and replaces it.
    job = wait_for(
        lambda: (
            (j := batch.read_namespaced_job("grace", namespace)).status.failed
            and j.status.active
            and j
        )
    )
    assert job.status.failed == 1
    replacement = [p for p in _pods(core, namespace, "grace") if not p.metadata.deletion_timestamp]
    core.delete_namespaced_pod(replacement[0].metadata.name, namespace, grace_period_seconds=0)
    assert not [
        p
        for p in _pods(core, namespace, "grace")
        if p.metadata.name == replacement[0].metadata.name
    ]
