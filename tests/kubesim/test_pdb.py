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
        policy.create_namespaced_pod_disruption_budget(
            namespace,
            {
                "metadata": {"name": "keep-one"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "svc"}}},
            },
        )
        pdb = wait_for(
            lambda: (
                (
                    b := policy.read_namespaced_pod_disruption_budget("keep-one", namespace)
                ).status.expected_pods
                == 2
                and b
            )
        )
        assert pdb.status.current_healthy == 2 and pdb.status.desired_healthy == 1
        assert pdb.status.disruptions_allowed == 1
        eviction = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pods[0].metadata.name, "namespace": namespace},
        }
        core.create_namespaced_pod_eviction(pods[0].metadata.name, namespace, eviction)
        evicted = (
            core.read_namespaced_pod(pods[0].metadata.name, namespace)
            if pods[0].metadata.name
            in {p.metadata.name for p in core.list_namespaced_pod(namespace).items}
            else None
        )  # noqa: E501
        assert evicted is None or evicted.metadata.deletion_timestamp is not None
        second = {**eviction, "metadata": {"name": pods[1].metadata.name, "namespace": namespace}}
        with pytest.raises(ApiException) as err:
            core.create_namespaced_pod_eviction(pods[1].metadata.name, namespace, second)
        status = json.loads(err.value.body)
        assert err.value.status == 429 and status["reason"] == "TooManyRequests"
        assert status["message"] == (
            "Cannot evict pod as it would violate the pod's disruption budget."
        )
        assert status["details"]["causes"][0]["reason"] == "DisruptionBudget"
        assert (
            core.read_namespaced_pod(pods[1].metadata.name, namespace).metadata.deletion_timestamp
            is None
        )  # noqa: E501
    finally:
        core.delete_namespace(namespace)
