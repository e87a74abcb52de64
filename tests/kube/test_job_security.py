"""What every task pod runs with: the restricted Pod Security profile, a deadline, a TTL,
and env secrets passed by reference (pure: the Job the builder makes)."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from meridian.kube.jobs import build_job
from meridian.settings import PolicySettings
from meridian.tasks.spec import TaskSpec


def spec(kind: str = "batch", **job: Any) -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "name": "etl",
            "business_unit": "ads",
            "kind": kind,
            "data_source": {"provider": "aws", "region": "us-east-1"},
            "job": {"image": "busybox", **job},
        }
    )


def as_json(job: client.V1Job) -> dict[str, Any]:
    data: dict[str, Any] = client.ApiClient().sanitize_for_serialization(job)
    return data


def test_every_pod_runs_restricted_without_a_service_account_token() -> None:
    pod = as_json(build_job("t1", spec(), 1, "ns"))["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    [container] = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }


def test_run_as_user_is_set_on_the_pod_when_given() -> None:
    pod = as_json(build_job("t1", spec(run_as_user=1000), 1, "ns"))["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_deadline_comes_from_the_task_or_the_kind_default() -> None:
    policy = PolicySettings(batch_timeout_seconds=7200, finished_job_ttl_seconds=600)
    batch = as_json(build_job("t1", spec(), 1, "ns", policy=policy))["spec"]
    assert batch["activeDeadlineSeconds"] == 7200
    assert batch["ttlSecondsAfterFinished"] == 600
    own = as_json(build_job("t1", spec(timeout_seconds=90), 1, "ns", policy=policy))["spec"]
    assert own["activeDeadlineSeconds"] == 90
    resident = as_json(build_job("t1", spec("resident"), 1, "ns", policy=policy))["spec"]
    assert "activeDeadlineSeconds" not in resident
    default = as_json(build_job("t1", spec(), 1, "ns"))["spec"]
    assert default["activeDeadlineSeconds"] == 24 * 3600
    assert default["ttlSecondsAfterFinished"] == 3600


def test_secret_refs_become_secret_key_refs_and_literals_stay_values() -> None:
    job = build_job(
        "t1",
        spec(
            env={
                "PASSWORD": {"secret_ref": {"name": "db-creds", "key": "password"}},
                "MODE": "fast",
            }
        ),
        1,
        "ns",
    )
    env = as_json(job)["spec"]["template"]["spec"]["containers"][0]["env"]
    by_name = {e["name"]: e for e in env}
    assert by_name["PASSWORD"] == {
        "name": "PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}},
    }
    assert by_name["MODE"] == {"name": "MODE", "value": "fast"}
