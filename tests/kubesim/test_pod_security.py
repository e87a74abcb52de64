"""Pod Security admission: a namespace labelled `pod-security.kubernetes.io/enforce:
restricted` refuses pods (and Jobs whose pods would be refused) with 403 and the
violations, as a real API server words them; what Meridian's Job builder makes passes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from meridian.kube.clients import ClusterClients
from meridian.kube.errors import KubeForbidden
from meridian.kube.gateway import JobGateway
from meridian.kube.jobs import build_job
from meridian.tasks.spec import TaskSpec

from .conftest import CORE, job_body, job_finished, wait_for

ENFORCE = "pod-security.kubernetes.io/enforce"
VIOLATIONS = (
    'violates PodSecurity "restricted:latest": '
    "allowPrivilegeEscalation != false "
    '(container "main" must set securityContext.allowPrivilegeEscalation=false), '
    "unrestricted capabilities "
    '(container "main" must set securityContext.capabilities.drop=["ALL"]), '
    "runAsNonRoot != true "
    '(pod or container "main" must set securityContext.runAsNonRoot=true), '
    "seccompProfile "
    '(pod or container "main" must set securityContext.seccompProfile.type to '
    '"RuntimeDefault" or "Localhost")'
)
SPEC = TaskSpec.model_validate(
    {
        "name": "etl",
        "business_unit": "ads",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox", "annotations": {"kubesim.io/duration": "200ms"}},
    }
)


@pytest.fixture
def restricted(core: client.CoreV1Api) -> str:
    """A fresh namespace labelled for the restricted profile, labelled through the API."""
    name = f"psa-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name}})
    core.patch_namespace(name, {"metadata": {"labels": {ENFORCE: "restricted"}}})
    return name


def pod_body(name: str, **security: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "busybox:1.36"}
    if security:
        container["securityContext"] = security
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container]},
    }


def forbidden(exc: ApiException) -> dict[str, Any]:
    assert exc.status == 403, exc.body
    status: dict[str, Any] = json.loads(exc.body)
    assert status["reason"] == "Forbidden" and status["code"] == 403
    return status


def test_a_non_compliant_pod_is_refused_with_its_violations(
    core: client.CoreV1Api, restricted: str
) -> None:
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(restricted, pod_body("plain"))
    status = forbidden(info.value)
    assert status["message"] == f'pods "plain" is forbidden: {VIOLATIONS}'
    assert status["details"] == {"name": "plain", "kind": "pods"}
    assert core.list_namespaced_pod(restricted).items == []


def test_root_privileged_and_host_settings_are_named(
    core: client.CoreV1Api, restricted: str
) -> None:
    body = pod_body(
        "root",
        privileged=True,
        runAsUser=0,
        allowPrivilegeEscalation=False,
        capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]},
        runAsNonRoot=True,
        seccompProfile={"type": "Unconfined"},
    )
    body["spec"]["hostNetwork"] = True
    body["spec"]["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(restricted, body)
    message = forbidden(info.value)["message"]
    for words in (
        "host namespaces (hostNetwork=true)",
        'hostPath volumes (volume "root")',
        'privileged (container "main" must not set securityContext.privileged=true)',
        'restricted volume types (volume "root" uses restricted volume type "hostPath")',
        'must not include "SYS_ADMIN" in securityContext.capabilities.add',
        'runAsUser=0 (container "main" must not set runAsUser=0)',
        'container "main" must not set securityContext.seccompProfile.type to "Unconfined"',
    ):
        assert words in message, message


def test_a_non_compliant_job_is_refused(batch: client.BatchV1Api, restricted: str) -> None:
    with pytest.raises(ApiException) as info:
        batch.create_namespaced_job(restricted, job_body("plain"))
    status = forbidden(info.value)
    assert status["message"] == f'jobs.batch "plain" is forbidden: {VIOLATIONS}'
    assert batch.list_namespaced_job(restricted).items == []


def test_unlabelled_namespaces_admit_anything(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, pod_body("plain"))


def test_the_jobs_meridian_builds_are_admitted_and_run(
    batch: client.BatchV1Api, restricted: str
) -> None:
    batch.create_namespaced_job(restricted, build_job("t-psa", SPEC, 1, restricted))
    job = wait_for(job_finished(batch, restricted, "t-psa-a1"), what="the Job to finish")
    assert job.status.succeeded == 1


def test_the_gateway_raises_forbidden_for_a_refused_job(
    kubesim: Any, restricted: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def without_security(
        task_id: str, spec: TaskSpec, attempt: int, ns: str, **kwargs: Any
    ) -> client.V1Job:
        job = build_job(task_id, spec, attempt, ns, **kwargs)
        job.spec.template.spec.security_context = None
        return job

    monkeypatch.setattr("meridian.kube.gateway.build_job", without_security)
    gateway = JobGateway(ClusterClients(kubesim.kubeconfig))
    with pytest.raises(KubeForbidden) as info:
        gateway.create_job(CORE, restricted, "t-bad", SPEC, 1)
    assert info.value.status == 403
    assert "violates PodSecurity" in str(info.value)


def test_pods_of_a_job_created_before_the_label_are_not_created(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    # The label on an existing namespace: the Job controller's pod creation is refused,
    # as on a real cluster, and says so in a FailedCreate event.
    batch.create_namespaced_job(namespace, job_body("early", suspend=True))
    core.patch_namespace(namespace, {"metadata": {"labels": {ENFORCE: "restricted"}}})
    batch.patch_namespaced_job("early", namespace, {"spec": {"suspend": False}})

    def refused() -> Any:
        events = core.list_namespaced_event(namespace).items
        return [e for e in events if e.reason == "FailedCreate"]

    [event] = wait_for(refused, what="a FailedCreate event")
    assert "violates PodSecurity" in event.message
    assert core.list_namespaced_pod(namespace).items == []
