"""The Job controller's sync branches that the API-level tests do not reach, in process.

Work-queue mode, scaling down, restarts counting against backoffLimit, suspend/resume.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubesim.admission import prepare_create
from kubesim.cluster import Cluster
from kubesim.config import parse_config
from kubesim.resources import EVENTS, JOBS, PODS
from kubesim.server import Simulator
from kubesim.types import Obj

REGION = "aws-us-east-1"
CONFIG: dict[str, Any] = {
    "defaults": {"job_duration": "10s", "termination_delay": "10ms"},
    "regions": [{"name": REGION, "node_pools": [{"name": "general", "count": 2}]}],
}


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    sim = Simulator(parse_config(CONFIG), base_port=18200)
    cluster = sim.clusters[REGION]
    cluster.bootstrap()
    yield cluster
    await cluster.close()


def create_job(
    cluster: Cluster,
    name: str,
    duration: str = "10s",
    exit_code: int = 0,
    restart_policy: str = "Never",
    **spec: Any,
) -> None:
    job: Obj = {
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        "kubesim.io/duration": duration,
                        "kubesim.io/exit-code": str(exit_code),
                    }
                },
                "spec": {
                    "restartPolicy": restart_policy,
                    "containers": [{"name": "main", "image": "busybox"}],
                },
            },
            **spec,
        },
    }
    cluster.store.create(JOBS.name, prepare_create(JOBS, job, "default"))


def job(cluster: Cluster, name: str) -> Obj:
    obj = cluster.store.get(JOBS.name, "default", name)
    assert obj is not None
    return obj


def condition(cluster: Cluster, name: str, type_: str) -> Obj | None:
    for cond in (job(cluster, name).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return None


def pods(cluster: Cluster, name: str) -> list[Obj]:
    return [
        e.obj
        for e in cluster.store[PODS.name].entries("default")
        if (e.obj["metadata"].get("labels") or {}).get("job-name") == name
    ]


def reasons(cluster: Cluster, name: str) -> list[str]:
    """The reasons of the Job's events, each as often as it was recorded."""
    return [
        e.obj["reason"]
        for e in cluster.store[EVENTS.name].entries("default")
        if e.obj["involvedObject"]["name"] == name and e.obj["involvedObject"]["kind"] == "Job"
        for _ in range(e.obj["count"])
    ]


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    for _ in range(int(timeout / 0.01)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def running(cluster: Cluster, name: str) -> int:
    return sum(1 for p in pods(cluster, name) if p["status"].get("phase") == "Running")


async def test_work_queue_job_completes_once_a_pod_succeeded_and_the_rest_stopped(
    cluster: Cluster,
) -> None:
    create_job(cluster, "queue", duration="100ms", parallelism=2)
    assert job(cluster, "queue")["spec"].get("completions") is None
    await until(lambda: condition(cluster, "queue", "Complete"))
    status = job(cluster, "queue")["status"]
    assert status["succeeded"] >= 1 and "active" not in status and "failed" not in status
    assert reasons(cluster, "queue").count("SuccessfulCreate") == 2
    assert condition(cluster, "queue", "SuccessCriteriaMet") is not None
    assert status["completionTime"] and status["startTime"]


async def test_lowering_parallelism_removes_the_surplus_pods(cluster: Cluster) -> None:
    create_job(cluster, "wide", parallelism=3, completions=3)
    await until(lambda: running(cluster, "wide") == 3)

    def narrow(obj: Obj) -> None:
        obj["spec"]["parallelism"] = 1

    cluster.store.mutate(JOBS.name, "default", "wide", narrow)
    await until(lambda: len(pods(cluster, "wide")) == 1)
    await until(lambda: job(cluster, "wide")["status"].get("terminating") == 0)
    status = job(cluster, "wide")["status"]
    assert status["active"] == 1 and status["ready"] == 1
    assert "failed" not in status  # the controller's own deletions are not failures
    assert reasons(cluster, "wide").count("SuccessfulDelete") == 2


async def test_restarts_in_place_count_against_the_backoff_limit(cluster: Cluster) -> None:
    create_job(
        cluster,
        "flaky",
        duration="50ms",
        exit_code=1,
        restart_policy="OnFailure",
        backoffLimit=2,
    )
    failed = await until(lambda: condition(cluster, "flaky", "Failed"))
    assert failed["reason"] == "BackoffLimitExceeded"
    assert condition(cluster, "flaky", "FailureTarget") is not None
    assert reasons(cluster, "flaky").count("SuccessfulCreate") == 1
    assert "BackoffLimitExceeded" in reasons(cluster, "flaky")
    # The one pod, stopped by the failure, counts as failed.
    # The status catches up with the pod's deletion on the controller's next sync.
    await until(
        lambda: not pods(cluster, "flaky") and job(cluster, "flaky")["status"]["terminating"] == 0
    )
    status = job(cluster, "flaky")["status"]
    assert status["failed"] == 1 and "active" not in status and status["terminating"] == 0


async def test_suspend_and_resume(cluster: Cluster) -> None:
    create_job(cluster, "sleepy", suspend=True)
    suspended = await until(lambda: condition(cluster, "sleepy", "Suspended"))
    assert suspended["status"] == "True" and suspended["reason"] == "JobSuspended"
    await asyncio.sleep(0.05)
    assert not pods(cluster, "sleepy") and "startTime" not in job(cluster, "sleepy")["status"]

    def toggle(value: bool) -> Callable[[Obj], None]:
        def apply(obj: Obj) -> None:
            obj["spec"]["suspend"] = value

        return apply

    cluster.store.mutate(JOBS.name, "default", "sleepy", toggle(False))
    await until(lambda: running(cluster, "sleepy") == 1)
    resumed = condition(cluster, "sleepy", "Suspended")
    assert resumed is not None and resumed["status"] == "False"
    assert resumed["reason"] == "JobResumed"
    assert job(cluster, "sleepy")["status"]["startTime"]
    cluster.store.mutate(JOBS.name, "default", "sleepy", toggle(True))
    await until(lambda: not pods(cluster, "sleepy"))
    again = condition(cluster, "sleepy", "Suspended")
    assert again is not None and again["status"] == "True"
    events = reasons(cluster, "sleepy")
    assert events.count("Suspended") == 2 and events.count("Resumed") == 1
    assert "SuccessfulDelete" in events
