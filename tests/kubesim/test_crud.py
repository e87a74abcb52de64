"""Create, get, list, update, patch and delete, with the real API's Status errors."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import job_body


def _status(exc: ApiException) -> dict:
    return json.loads(exc.body)


def test_initial_namespaces_exist(core: client.CoreV1Api) -> None:
    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "meridian"} <= names


def test_create_get_list_delete_job(batch: client.BatchV1Api, namespace: str) -> None:
    created = batch.create_namespaced_job(namespace, job_body("crud", duration="10s"))
    meta = created.metadata
    assert meta.uid and meta.creation_timestamp and meta.generation == 1
    assert int(meta.resource_version) > 0
    # Server-side defaults of the Job strategy.
    assert created.spec.backoff_limit == 6
    assert created.spec.completions == 1 and created.spec.parallelism == 1
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": meta.uid}
    assert created.spec.template.metadata.labels["job-name"] == "crud"
    fetched = batch.read_namespaced_job("crud", namespace)
    assert fetched.metadata.uid == meta.uid
    listed = batch.list_namespaced_job(namespace)
    assert [j.metadata.name for j in listed.items] == ["crud"]
    assert int(listed.metadata.resource_version) >= int(meta.resource_version)
    batch.delete_namespaced_job("crud", namespace, propagation_policy="Background")
    with pytest.raises(ApiException) as err:
        batch.read_namespaced_job("crud", namespace)
    assert err.value.status == 404


def test_not_found_is_a_status_object(batch: client.BatchV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as err:
        batch.read_namespaced_job("missing", namespace)
    assert _status(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'jobs.batch "missing" not found',
        "reason": "NotFound",
        "details": {"name": "missing", "group": "batch", "kind": "jobs"},
        "code": 404,
    }


def test_create_twice_is_409_already_exists(batch: client.BatchV1Api, namespace: str) -> None:
    batch.create_namespaced_job(namespace, job_body("twice", duration="10s"))
    with pytest.raises(ApiException) as err:
        batch.create_namespaced_job(namespace, job_body("twice"))
    assert err.value.status == 409
    status = _status(err.value)
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'jobs.batch "twice" already exists'
    assert status["details"] == {"name": "twice", "group": "batch", "kind": "jobs"}


def test_job_without_containers_is_422(batch: client.BatchV1Api, namespace: str) -> None:
    body = job_body("empty")
    body["spec"]["template"]["spec"]["containers"] = []
    with pytest.raises(ApiException) as err:
        batch.create_namespaced_job(namespace, body)
    status = _status(err.value)
    assert err.value.status == 422 and status["reason"] == "Invalid"
    assert status["details"]["kind"] == "Job" and status["details"]["group"] == "batch"
    assert {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.template.spec.containers",
    } in status["details"]["causes"]


def test_name_that_is_not_dns1123_is_422(batch: client.BatchV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as err:
        batch.create_namespaced_job(namespace, job_body("Not_Valid"))
    status = _status(err.value)
    assert err.value.status == 422
    assert status["message"].startswith(
        'Job.batch "Not_Valid" is invalid: metadata.name: Invalid value'
    )  # noqa: E501
    assert status["details"]["causes"][0]["field"] == "metadata.name"


def test_create_in_missing_namespace_is_404(batch: client.BatchV1Api) -> None:
    with pytest.raises(ApiException) as err:
        batch.create_namespaced_job("no-such-namespace", job_body("x"))
    assert err.value.status == 404
    assert _status(err.value)["details"] == {"name": "no-such-namespace", "kind": "namespaces"}


def test_resource_versions_increase_per_cluster(
    batch: client.BatchV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    a = batch.create_namespaced_job(namespace, job_body("rv-a", duration="10s"))
    cm = core.create_namespace({"metadata": {"name": f"{namespace}-x"}})
    b = batch.create_namespaced_job(namespace, job_body("rv-b", duration="10s"))
    rvs = [
        int(a.metadata.resource_version),
        int(cm.metadata.resource_version),
        int(b.metadata.resource_version),
    ]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


def test_merge_and_strategic_patch(batch: client.BatchV1Api, namespace: str) -> None:
    batch.create_namespaced_job(namespace, job_body("patch", duration="10s", labels={"a": "1"}))
    patched = batch.patch_namespaced_job("patch", namespace, {"metadata": {"labels": {"b": "2"}}})
    assert patched.metadata.labels["a"] == "1" and patched.metadata.labels["b"] == "2"
    # A null removes a key (RFC 7386).
    patched = batch.patch_namespaced_job("patch", namespace, {"metadata": {"labels": {"a": None}}})
    assert "a" not in patched.metadata.labels
    # The official client sends dict patches as strategic merge; ask for a merge patch too.
    patched = batch.patch_namespaced_job(
        "patch",
        namespace,
        {"spec": {"suspend": True}},
        _content_type="application/merge-patch+json",
    )
    assert patched.spec.suspend is True
    assert patched.metadata.generation == 2  # spec changed


def test_server_side_apply_creates_then_updates(core: client.CoreV1Api, namespace: str) -> None:
    """One request whether the object exists or not, as on a real API server; a field
    manager is required."""
    apply = "application/apply-patch+yaml"
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q", "labels": {"team": "a"}},
        "spec": {"hard": {"pods": "5"}},
    }
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_resource_quota("q", namespace, quota, _content_type=apply)
    assert err.value.status == 422 and "fieldManager" in _status(err.value)["message"]
    created = core.patch_namespaced_resource_quota(
        "q", namespace, quota, field_manager="test", _content_type=apply
    )
    assert created.metadata.uid and created.spec.hard == {"pods": "5"}
    quota["spec"] = {"hard": {"pods": "3"}}
    updated = core.patch_namespaced_resource_quota(
        "q", namespace, quota, field_manager="test", force=True, _content_type=apply
    )
    assert updated.metadata.uid == created.metadata.uid and updated.spec.hard == {"pods": "3"}
    with pytest.raises(ApiException) as missing:
        core.patch_namespaced_resource_quota(
            "q", "no-such-namespace", quota, field_manager="test", _content_type=apply
        )
    assert missing.value.status == 404


def test_json_patch(batch: client.BatchV1Api, namespace: str) -> None:
    batch.create_namespaced_job(namespace, job_body("jp", duration="10s"))
    patched = batch.patch_namespaced_job(
        "jp", namespace, [{"op": "add", "path": "/metadata/annotations", "value": {"x": "y"}}]
    )
    assert patched.metadata.annotations == {"x": "y"}


def test_update_with_stale_resource_version_conflicts(
    batch: client.BatchV1Api, namespace: str
) -> None:
    job = batch.create_namespaced_job(namespace, job_body("stale", duration="10s"))
    batch.patch_namespaced_job("stale", namespace, {"metadata": {"labels": {"x": "1"}}})
    job.metadata.labels = {"y": "2"}
    with pytest.raises(ApiException) as err:
        batch.replace_namespaced_job("stale", namespace, job)
    status = _status(err.value)
    assert err.value.status == 409 and status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]
    # A fresh read goes through; the Job controller may write status in between (as on a
    # real cluster), so read-modify-write retries on conflict the way clients do.
    for _ in range(5):
        fresh = batch.read_namespaced_job("stale", namespace)
        fresh.metadata.labels = {"y": "2"}
        try:
            replaced = batch.replace_namespaced_job("stale", namespace, fresh)
            break
        except ApiException as again:
            assert again.status == 409
    assert replaced.metadata.labels == {"y": "2"}


def test_generate_name(core: client.CoreV1Api, namespace: str) -> None:
    pod = core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"generateName": "gen-"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        },
    )
    assert pod.metadata.name.startswith("gen-") and len(pod.metadata.name) == len("gen-") + 5
    assert pod.status.phase == "Pending"


def test_delete_namespace_removes_its_objects(
    core: client.CoreV1Api, batch: client.BatchV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(namespace, job_body("gone", duration="10s"))
    core.delete_namespace(namespace)
    assert namespace not in {n.metadata.name for n in core.list_namespace().items}
    assert not [
        j for j in batch.list_job_for_all_namespaces().items if j.metadata.namespace == namespace
    ]
