"""policy/v1 PodDisruptionBudgets and the pods/eviction subresource."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import NODES, job_body, wait_for


def test_eviction_honours_the_disruption_budget(api_clients: Any) -> None:
    api = api_clients(NODES)
    core, batch, policy = client.CoreV1Api(api), client.BatchV1Api(api), client.PolicyV1Api(api)
    namespace = f"pdb-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        batch.create_namespaced_job(
            namespace,
            job_body("svc", duration="60s", labels={"app": "svc"}, parallelism=2, completions=2),
        )
        pods = wait_for(
            lambda: (
                len(
                    running := [
                        p
                        for p in core.list_namespaced_pod(namespace).items
                        if p.status.phase == "Running"
                    ]
                )
                == 2
                and running
            )
        )
        # First a budget that allows no disruption (both pods must stay), then one that
        # allows one. Not "evict one, then the second is refused": the Job replaces the
        # evicted pod, and once the replacement runs the budget rightly allows another
        # eviction, so that order races the Job controller.
        policy.create_namespaced_pod_disruption_budget(
            namespace,
            {
                "metadata": {"name": "keep-both"},
                "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "svc"}}},
            },
        )
        pdb = wait_for(lambda: budget(policy, "keep-both", namespace, expected_pods=2))
        assert pdb.status.current_healthy == 2 and pdb.status.desired_healthy == 2
        assert pdb.status.disruptions_allowed == 0
        name = pods[0].metadata.name
        eviction = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        with pytest.raises(ApiException) as err:
            core.create_namespaced_pod_eviction(name, namespace, eviction)
        status = json.loads(err.value.body)
        assert err.value.status == 429 and status["reason"] == "TooManyRequests"
        assert status["message"] == (
            "Cannot evict pod as it would violate the pod's disruption budget."
        )
        assert status["details"]["causes"][0]["reason"] == "DisruptionBudget"
        assert core.read_namespaced_pod(name, namespace).metadata.deletion_timestamp is None

        policy.patch_namespaced_pod_disruption_budget(
            "keep-both", namespace, {"spec": {"minAvailable": 1}}
        )
        pdb = wait_for(lambda: budget(policy, "keep-both", namespace, allowed=1))
        assert pdb.status.current_healthy == 2 and pdb.status.desired_healthy == 1
        core.create_namespaced_pod_eviction(name, namespace, eviction)
        live = {p.metadata.name: p for p in core.list_namespaced_pod(namespace).items}
        evicted = live.get(name)
        assert evicted is None or evicted.metadata.deletion_timestamp is not None
    finally:
        core.delete_namespace(namespace)


def budget(
    policy: Any,
    name: str,
    namespace: str,
    expected_pods: int | None = None,
    allowed: int | None = None,
) -> Any:
    """The budget once its status shows what the test waits for, else None."""
    pdb = policy.read_namespaced_pod_disruption_budget(name, namespace)
    status = pdb.status
    if status is None:
        return None
    if expected_pods is not None and status.expected_pods != expected_pods:
        return None
    if allowed is not None and status.disruptions_allowed != allowed:
        return None
    return pdb
