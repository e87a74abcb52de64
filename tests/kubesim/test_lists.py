"""Label and field selectors, and paginated lists with continue tokens."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import job_body, wait_for


@pytest.fixture
def labelled_jobs(batch: client.BatchV1Api, namespace: str) -> str:
    for name, labels in [
        ("a", {"tier": "web", "env": "prod"}),
        ("b", {"tier": "web", "env": "dev"}),
        ("c", {"tier": "db", "env": "prod"}),
        ("d", {"tier": "cache"}),
    ]:
        batch.create_namespaced_job(namespace, job_body(name, duration="30s", labels=labels))
    return namespace


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a", "b"]),
        ("tier==web", ["a", "b"]),
        ("tier!=web", ["c", "d"]),
        ("tier in (web,db)", ["a", "b", "c"]),
        ("tier notin (web,db)", ["d"]),
        ("env", ["a", "b", "c"]),
        ("!env", ["d"]),
        ("tier=web,env=prod", ["a"]),
        ("tier in (web),env notin (dev)", ["a"]),
    ],
)
def test_label_selectors(
    batch: client.BatchV1Api, labelled_jobs: str, selector: str, expected: list[str]
) -> None:
    jobs = batch.list_namespaced_job(labelled_jobs, label_selector=selector)
    assert sorted(j.metadata.name for j in jobs.items) == expected


def test_field_selector_on_name_and_namespace(batch: client.BatchV1Api, labelled_jobs: str) -> None:
    jobs = batch.list_job_for_all_namespaces(
        field_selector=f"metadata.namespace={labelled_jobs},metadata.name=c"
    )
    assert [j.metadata.name for j in jobs.items] == ["c"]
    jobs = batch.list_namespaced_job(labelled_jobs, field_selector="metadata.name!=c")
    assert sorted(j.metadata.name for j in jobs.items) == ["a", "b", "d"]


def test_pod_field_selectors_phase_and_node(
    core: client.CoreV1Api, batch: client.BatchV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(namespace, job_body("quick", duration="50ms"))
    batch.create_namespaced_job(namespace, job_body("slow", duration="30s"))
    wait_for(
        lambda: core.list_namespaced_pod(namespace, field_selector="status.phase=Succeeded").items,  # noqa: E501
        what="a Succeeded pod",
    )
    running = wait_for(
        lambda: core.list_namespaced_pod(namespace, field_selector="status.phase=Running").items,
        what="a Running pod",
    )
    assert [p.metadata.labels["job-name"] for p in running] == ["slow"]
    node = running[0].spec.node_name
    on_node = core.list_namespaced_pod(namespace, field_selector=f"spec.nodeName={node}")
    assert running[0].metadata.name in {p.metadata.name for p in on_node.items}
    unbound = core.list_namespaced_pod(namespace, field_selector="spec.nodeName=")
    assert unbound.items == []


def test_unsupported_field_selector_is_400(batch: client.BatchV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as err:
        batch.list_namespaced_job(namespace, field_selector="spec.parallelism=1")
    assert err.value.status == 400
    assert json.loads(err.value.body)["message"] == "field label not supported: spec.parallelism"


def test_pagination_with_continue(batch: client.BatchV1Api, namespace: str) -> None:
    names = [f"page-{i:02d}" for i in range(23)]
    for name in names:
        batch.create_namespaced_job(namespace, job_body(name, duration="30s"))
    seen: list[str] = []
    token = None
    pages = 0
    first_rv = None
    while True:
        page = batch.list_namespaced_job(namespace, limit=10, _continue=token)
        pages += 1
        first_rv = first_rv or page.metadata.resource_version
        seen += [j.metadata.name for j in page.items]
        token = page.metadata._continue
        if not token:
            assert page.metadata.remaining_item_count is None
            break
        assert page.metadata.remaining_item_count == len(names) - len(seen)
        # Every page of one list reports the snapshot's resourceVersion.
        assert page.metadata.resource_version == first_rv
    assert pages == 3
    assert seen == names


def test_invalid_continue_token_is_400(batch: client.BatchV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as err:
        batch.list_namespaced_job(namespace, limit=1, _continue="not-a-token")
    assert err.value.status == 400
