"""Building an attempt's Job and reading Jobs and pods back (pure, no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from meridian.kube.contracts import FailureKind, JobPhase
from meridian.kube.jobs import build_job, observe_job
from meridian.tasks.spec import TaskSpec

SPEC = TaskSpec.model_validate(
    {
        "name": "svc",
        "business_unit": "ads",
        "kind": "resident",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {
            "image": "busybox",
            "env": {"B": "2", "A": "1"},
            "status_port": 8080,
            "resources": {"cpu": "250m", "memory": "64Mi"},
            "annotations": {"kubesim.io/duration": "5s"},
        },
        "labels": {"team": "growth"},
    }
)


def job_json(**status: Any) -> dict[str, Any]:
    job = build_job("t1", SPEC, 2, "meridian")
    data: dict[str, Any] = client.ApiClient().sanitize_for_serialization(job)
    data["metadata"]["resourceVersion"] = "42"
    data["status"] = status
    return data


def test_job_carries_fencing_token_labels_and_resident_port() -> None:
    job = build_job("t1", SPEC, 2, "meridian")
    assert job.metadata.name == "t1-a2"
    assert job.metadata.labels["meridian.io/task-id"] == "t1"
    assert job.metadata.labels["meridian.io/attempt"] == "2"
    assert job.metadata.labels["team"] == "growth"
    assert job.spec.backoff_limit == 0  # Meridian's own retry policy owns retries
    container = job.spec.template.spec.containers[0]
    env = {e.name: e.value for e in container.env}
    assert env["MERIDIAN_ATTEMPT"] == "2" and env["A"] == "1"
    assert container.resources.requests == {"cpu": "250m", "memory": "64Mi"}
    assert container.ports[0].name == "status"
    annotations = job.spec.template.metadata.annotations
    assert annotations["kubesim.io/resident"] == "true"
    assert annotations["kubesim.io/duration"] == "5s"


def test_observe_phases() -> None:
    assert observe_job(job_json(active=1), "r", source="t").phase is JobPhase.PENDING
    running = observe_job(job_json(active=1, ready=1), "r", source="t")
    assert running.phase is JobPhase.RUNNING and running.status_port == 8080
    done = observe_job(
        job_json(conditions=[{"type": "Complete", "status": "True"}]), "r", source="t"
    )
    assert done.phase is JobPhase.SUCCEEDED and done.resource_version == 42
    assert (done.task_id, done.attempt, done.job_name) == ("t1", 2, "t1-a2")
    assert observe_job({"metadata": {"name": "x", "labels": {}}}, "r", source="t") is None


def pod(phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"nodeName": "n1"},
        "status": {"phase": phase, **status},
    }


def test_failed_job_tells_crash_from_lost_node() -> None:
    failed = job_json(
        conditions=[{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    )
    crash = pod("Failed", containerStatuses=[{"state": {"terminated": {"exitCode": 3}}}])
    obs = observe_job(failed, "r", [crash], source="t")
    assert obs.failure_kind is FailureKind.APPLICATION and obs.exit_code == 3
    lost = pod("Failed", reason="NodeLost", message="node n1 lost")
    obs = observe_job(failed, "r", [lost], source="t")
    assert obs.failure_kind is FailureKind.INFRASTRUCTURE and obs.reason == "NodeLost"


def test_unschedulable_pod_is_reported_with_its_time() -> None:
    since = "2026-01-01T00:00:05Z"
    stuck = pod(
        "Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "lastTransitionTime": since,
                "message": "0/3 nodes: Insufficient cpu",
            }
        ],
    )
    stuck["spec"] = {}
    obs = observe_job(job_json(active=1), "r", [stuck], source="t")
    assert obs.unschedulable_since == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert "Insufficient cpu" in (obs.message or "")
