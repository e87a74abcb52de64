"""The Job builder applies a burst plan: steering, billed requests, billed annotations."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from meridian.kube.jobs import build_job
from meridian.serverless.models import ServerlessConfig
from meridian.serverless.plan import plan_burst
from meridian.tasks.spec import TaskSpec

API = client.ApiClient()


def _spec(cpu: str = "300m", memory: str = "700Mi") -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "name": "t",
            "business_unit": "bu",
            "data_source": {"provider": "aws", "region": "us-east-1"},
            "job": {"image": "busybox", "resources": {"cpu": cpu, "memory": memory}},
            "labels": {"team": "a"},
        }
    )


def _json(job: client.V1Job) -> dict[str, Any]:
    data: dict[str, Any] = API.sanitize_for_serialization(job)
    return data


def test_without_a_plan_the_job_is_as_before() -> None:
    job = _json(build_job("t1", _spec(), 1, "meridian"))
    pod = job["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert "annotations" not in job["metadata"]
    assert pod["containers"][0]["resources"]["requests"] == {"cpu": "300m", "memory": "700Mi"}


def test_an_eci_virtual_node_plan_steers_the_pod_and_records_the_billed_size() -> None:
    config = ServerlessConfig.model_validate({"kind": "eci", "eci_steering": "virtual-node"})
    spec = _spec()
    plan = plan_burst(config, spec.job.resources.cpu_millis, spec.job.resources.memory_bytes)
    job = _json(build_job("t1", spec, 1, "meridian", burst=plan))
    template = job["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == {"type": "virtual-kubelet"}
    assert pod["tolerations"] == [
        {
            "key": "virtual-kubelet.io/provider",
            "operator": "Equal",
            "value": "alibabacloud",
            "effect": "NoSchedule",
        }
    ]
    billed = {"cpu": "500m", "memory": "1Gi"}
    assert pod["containers"][0]["resources"] == {"requests": billed, "limits": billed}
    for meta in (job["metadata"], template["metadata"]):
        assert meta["annotations"]["meridian.io/billed-cpu"] == "500m"
        assert meta["annotations"]["meridian.io/billed-memory"] == "1Gi"
        assert meta["annotations"]["meridian.io/serverless-kind"] == "eci"
        assert meta["labels"]["meridian.io/capacity"] == "serverless"
        assert meta["labels"]["team"] == "a"
        assert meta["labels"]["meridian.io/task-id"] == "t1"


def test_a_fargate_plan_labels_the_pod_for_the_profile() -> None:
    config = ServerlessConfig.model_validate({"kind": "fargate"})
    plan = plan_burst(config, 300, 700 * 2**20)
    # The profile selects every unit's namespace (`meridian-*`).
    job = _json(build_job("t1", _spec(), 1, "meridian-ads", burst=plan))
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["meridian.io/capacity"] == "serverless"
    assert "nodeSelector" not in template["spec"]
    # 700Mi + 256Mi rounds to 0.5 vCPU / 1 GB; the pod asks for 1 GB less the overhead.
    requests = template["spec"]["containers"][0]["resources"]["requests"]
    assert requests == {"cpu": "500m", "memory": "768Mi"}
    assert template["metadata"]["annotations"]["meridian.io/billed-memory"] == "1Gi"


def test_a_fargate_plan_refuses_a_namespace_its_profile_does_not_select() -> None:
    config = ServerlessConfig.model_validate({"kind": "fargate", "namespaces": ["tasks"]})
    plan = plan_burst(config, 300, 700 * 2**20)
    with pytest.raises(ValueError, match="selects pods in tasks, not in namespace 'meridian'"):
        build_job("t1", _spec(), 1, "meridian", burst=plan)


def test_the_plan_survives_a_round_trip_as_json() -> None:
    # Plans travel in activity inputs through the pydantic data converter.
    from meridian.serverless.plan import BurstPlan

    config = ServerlessConfig.model_validate({"kind": "aci"})
    plan = plan_burst(config, 1000, 2**30)
    assert BurstPlan.model_validate_json(plan.model_dump_json()) == plan
