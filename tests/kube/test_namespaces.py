"""Each business unit's namespace: its name, what it holds, and ensuring it in kubesim.

The kubesim part proves the namespace really is `restricted`: a task's Job passes its
admission, a privileged pod is refused, and the watch sees every unit's Jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from activities.jobs import JobActivities
from kubesim.process import KubesimProcess, start_kubesim
from meridian.channels.watch import JobWatcher
from meridian.kube.clients import ClusterClients
from meridian.kube.contracts import (
    NAMESPACE_NOT_READY,
    CreateJobInput,
    DeleteJobsInput,
    EnsureNamespaceInput,
    JobObservation,
    JobPhase,
    JobRef,
    ListJobKeysInput,
)
from meridian.kube.gateway import JobGateway
from meridian.kube.namespaces import (
    ALLOW_STATUS_POLICY,
    DENY_INGRESS_POLICY,
    NAME_MAX,
    UnitNamespaces,
    unit_manifests,
    unit_namespace,
)
from meridian.tasks.spec import TaskSpec
from meridian.tenancy.quotas import QuotaSettings, UnitQuota

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
REGION = "aws-us-east-1"


# -- naming -------------------------------------------------------------------------------


def test_a_plain_unit_keeps_its_name() -> None:
    assert unit_namespace("ads") == "meridian-ads"
    assert unit_namespace("search-eu", prefix="acme-") == "acme-search-eu"


@pytest.mark.parametrize(
    "unit",
    ["Ads", "ads_team", "ads.team", "ads--team", "-ads", "ads-", "_", "A" * 63, "x" * 54],
)
def test_names_are_dns_labels_within_63_characters(unit: str) -> None:
    name = unit_namespace(unit)
    assert DNS_LABEL.match(name), name
    assert len(name) <= NAME_MAX
    assert name.startswith("meridian-")


def test_a_changed_or_cut_name_is_hashed_and_stable() -> None:
    assert unit_namespace("Ads") == unit_namespace("Ads")  # stable across calls
    assert re.fullmatch(r"meridian-ads--[0-9a-f]{10}", unit_namespace("Ads"))
    long = "a" * 60
    assert unit_namespace(long) == unit_namespace(long)
    assert unit_namespace(long).startswith("meridian-aaaa")
    assert len(unit_namespace(long)) == NAME_MAX


def test_distinct_units_never_share_a_namespace() -> None:
    units = ["ads", "Ads", "ADS", "ads_", "ads.", "ads-x", "ads_x", "ads.x", "a" * 62, "a" * 63]
    # A unit named like another's hashed name still gets its own.
    units.append(unit_namespace("Ads").removeprefix("meridian-"))
    names = [unit_namespace(u) for u in units]
    assert len(set(names)) == len(units), names


# -- the objects ------------------------------------------------------------------------


def test_the_namespace_is_labelled_restricted_and_owned() -> None:
    [ns, *_] = unit_manifests(
        "ads", namespace="meridian-ads", services_namespace="meridian", quota=UnitQuota()
    )
    assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == "meridian-ads"
    assert ns["metadata"]["labels"] == {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": "latest",
        "meridian.io/managed": "true",
        "meridian.io/business-unit": "ads",
    }


def test_ingress_is_denied_but_for_the_status_port_from_the_services() -> None:
    manifests = unit_manifests(
        "ads", namespace="meridian-ads", services_namespace="mer-svc", quota=UnitQuota()
    )
    policies = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "NetworkPolicy"}
    deny = policies[DENY_INGRESS_POLICY]
    assert deny["metadata"]["namespace"] == "meridian-ads"
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    allow = policies[ALLOW_STATUS_POLICY]["spec"]
    assert allow["podSelector"] == {"matchLabels": {"meridian.io/managed": "true"}}
    assert allow["ingress"] == [
        {
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mer-svc"}}}
            ],
            "ports": [{"protocol": "TCP", "port": "status"}],
        }
    ]
    assert not any(m["kind"] == "ResourceQuota" for m in manifests)  # no quota: none


def test_the_units_quota_is_its_resource_quota() -> None:
    quota = UnitQuota(max_active_tasks=20, cpu="16", memory="64Gi")
    manifests = unit_manifests(
        "ads", namespace="meridian-ads", services_namespace="meridian", quota=quota
    )
    [rq] = [m for m in manifests if m["kind"] == "ResourceQuota"]
    assert rq["metadata"]["namespace"] == "meridian-ads"
    assert rq["spec"] == {"hard": {"requests.cpu": "16", "requests.memory": "64Gi", "pods": "20"}}


# -- against kubesim -------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubesim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubesimProcess]:
    regions: dict[str, Any] = {
        "defaults": {"job_duration": "200ms"},
        "regions": [
            {
                "name": REGION,
                "provider": "aws",
                "location": "us-east-1",
                "node_pools": [{"name": "general", "count": 2, "cpu": "8", "memory": "32Gi"}],
            }
        ],
    }
    path: Path = tmp_path_factory.mktemp("regions") / "regions.yaml"
    path.write_text(yaml.safe_dump(regions))
    process = start_kubesim(path, tmp_path_factory.mktemp("kubesim"))
    yield process
    assert process.stop() == 0, process.log_path.read_text()


@pytest.fixture
def gateway(kubesim: KubesimProcess) -> Iterator[JobGateway]:
    clients = ClusterClients(kubesim.kubeconfig)
    yield JobGateway(clients)
    clients.close()


def unique_unit(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:6]}"


def task_spec(unit: str, **job: Any) -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "name": "etl",
            "business_unit": unit,
            "kind": "batch",
            "data_source": {"provider": "aws", "region": "us-east-1"},
            "job": {"image": "busybox", "annotations": {"kubesim.io/duration": "200ms"}, **job},
        }
    )


def test_ensure_makes_the_namespace_once_and_is_idempotent(gateway: JobGateway) -> None:
    unit = unique_unit("ads")
    quotas = QuotaSettings(default=UnitQuota(max_active_tasks=5, cpu="8"))
    namespaces = UnitNamespaces(gateway, services_namespace="meridian", quotas=quotas)
    core = gateway.clients.core(REGION)
    networking = gateway.clients.networking(REGION)

    with gateway.counting() as first:
        name = namespaces.ensure(REGION, unit)
    assert name == f"meridian-{unit}"
    ns = core.read_namespace(name)
    assert ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns.metadata.labels["meridian.io/business-unit"] == unit
    policies = networking.list_namespaced_network_policy(name).items
    assert sorted(p.metadata.name for p in policies) == [ALLOW_STATUS_POLICY, DENY_INGRESS_POLICY]
    quota = core.read_namespaced_resource_quota("meridian-quota", name)
    assert quota.spec.hard == {"pods": "5", "requests.cpu": "8"}
    assert first.requests == 4

    # Cached: a second create for the unit costs no request.
    with gateway.counting() as again:
        assert namespaces.ensure(REGION, unit) == name
    assert again.requests == 0

    # Another worker process (no cache) ensures it again: no error, nothing doubled, and
    # a label an operator removed and a changed quota are brought back in line.
    core.patch_namespace(
        name,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": None, "team": "x"}}},
    )
    stricter = QuotaSettings(default=UnitQuota(max_active_tasks=3, cpu="8"))
    with gateway.counting() as cold:
        UnitNamespaces(gateway, services_namespace="meridian", quotas=stricter).ensure(REGION, unit)
    assert cold.requests == 4  # one server-side apply per object, existing or not
    labels = core.read_namespace(name).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["team"] == "x"  # an operator's own label is kept
    assert len(networking.list_namespaced_network_policy(name).items) == 2
    assert core.read_namespaced_resource_quota("meridian-quota", name).spec.hard["pods"] == "3"


def test_a_units_task_runs_in_its_namespace_and_passes_restricted_admission(
    gateway: JobGateway,
) -> None:
    unit = unique_unit("ads")
    activities = JobActivities(gateway, namespace="meridian")
    created = activities.create_job(
        CreateJobInput(task_id=f"t-{unit}", spec=task_spec(unit), attempt=1, region=REGION)
    )
    namespace = f"meridian-{unit}"
    assert created.created and created.namespace == namespace
    batch = gateway.clients.batch(REGION)
    job = batch.read_namespaced_job(created.job_name, namespace)
    assert job.metadata.labels["meridian.io/business-unit"] == unit
    labels = gateway.clients.core(REGION).read_namespace(namespace).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"

    def finished() -> JobObservation | None:
        obs = activities.read_job(
            JobRef(
                task_id=f"t-{unit}",
                attempt=1,
                region=REGION,
                job_name=created.job_name,
                namespace=namespace,
            )
        )
        return obs if obs.phase is JobPhase.SUCCEEDED else None

    assert _wait(finished), "the compliant pod was admitted and ran to success"
    # Nothing of the task's ran in the services' namespace.
    assert (
        batch.list_namespaced_job("meridian", label_selector=f"meridian.io/task-id=t-{unit}").items
        == []
    )


def test_a_create_after_ensure_namespace_is_one_request(gateway: JobGateway) -> None:
    """The workflow prepares the namespace first (an activity with its own budget) and
    names it in the create: the create itself pays for no set-up, even on a worker
    whose cache is cold (another replica prepared it)."""
    unit = unique_unit("ads")
    preparing = JobActivities(gateway, namespace="meridian")
    ready = preparing.ensure_namespace(EnsureNamespaceInput(region=REGION, business_unit=unit))
    assert ready.namespace == f"meridian-{unit}"
    policies = gateway.clients.networking(REGION).list_namespaced_network_policy(ready.namespace)
    assert len(policies.items) == 2
    with gateway.counting() as cached:
        again = preparing.ensure_namespace(EnsureNamespaceInput(region=REGION, business_unit=unit))
    assert again == ready and cached.requests == 0

    other_replica = JobActivities(gateway, namespace="meridian")
    inp = CreateJobInput(
        task_id=f"t-{unit}",
        spec=task_spec(unit),
        attempt=1,
        region=REGION,
        namespace=ready.namespace,
    )
    with gateway.counting() as create:
        created = other_replica.create_job(inp)
    assert created.created and created.namespace == ready.namespace
    assert create.requests == 1


def test_a_create_that_goes_first_lands_only_in_a_namespace_this_worker_prepared(
    gateway: JobGateway,
) -> None:
    """The workflow sends the create first: a worker that has not prepared the unit's
    namespace refuses it without a request (the workflow then prepares it, with its
    own budget); one that has creates with one request, in that namespace, and makes
    it again if it was deleted since."""
    unit = unique_unit("ads")
    activities = JobActivities(gateway, namespace="meridian")
    inp = CreateJobInput(
        task_id=f"t-{unit}",
        spec=task_spec(unit),
        attempt=1,
        region=REGION,
        only_if_namespace_ready=True,
    )
    with gateway.counting() as refused, pytest.raises(ApplicationError) as raised:
        activities.create_job(inp)
    assert raised.value.type == NAMESPACE_NOT_READY and raised.value.non_retryable
    # Expected once per unit and region: the SDK logs it at DEBUG, not as a failure.
    assert raised.value.category == ApplicationErrorCategory.BENIGN
    assert refused.requests == 0
    namespace = f"meridian-{unit}"
    batch = gateway.clients.batch(REGION)
    assert batch.list_namespaced_job(namespace).items == []

    activities.ensure_namespace(EnsureNamespaceInput(region=REGION, business_unit=unit))
    with gateway.counting() as create:
        created = activities.create_job(inp)
    assert created.created and created.namespace == namespace
    assert create.requests == 1

    gateway.clients.core(REGION).delete_namespace(namespace)
    again = activities.create_job(inp.model_copy(update={"task_id": f"b-{unit}"}))
    assert again.created and again.namespace == namespace
    labels = gateway.clients.core(REGION).read_namespace(namespace).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_unit_namespace_refuses_a_privileged_pod(gateway: JobGateway) -> None:
    unit = unique_unit("ads")
    namespace = UnitNamespaces(gateway).ensure(REGION, unit)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rooted"},
        "spec": {
            "containers": [
                {"name": "main", "image": "busybox", "securityContext": {"privileged": True}}
            ]
        },
    }
    with pytest.raises(client.ApiException) as refused:
        gateway.clients.core(REGION).create_namespaced_pod(namespace, pod)
    assert refused.value.status == 403
    assert "restricted" in str(refused.value.body)


def test_a_namespace_deleted_under_a_running_worker_is_made_again(gateway: JobGateway) -> None:
    unit = unique_unit("ads")
    activities = JobActivities(gateway, namespace="meridian")
    first = CreateJobInput(task_id=f"a-{unit}", spec=task_spec(unit), attempt=1, region=REGION)
    namespace = activities.create_job(first).namespace
    gateway.clients.core(REGION).delete_namespace(namespace)
    second = first.model_copy(update={"task_id": f"b-{unit}"})
    assert activities.create_job(second).created
    labels = gateway.clients.core(REGION).read_namespace(namespace).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_legacy_input_keeps_its_job_in_the_services_namespace(gateway: JobGateway) -> None:
    """A create recorded before namespaces existed (its input says "meridian") and
    retried now lands where its workflow reads and deletes it."""
    unit = unique_unit("ads")
    activities = JobActivities(gateway, namespace="meridian")
    inp = CreateJobInput(
        task_id=f"old-{unit}", spec=task_spec(unit), attempt=1, region=REGION, namespace="meridian"
    )
    created = activities.create_job(inp)
    assert created.namespace == "meridian"
    ref = JobRef(task_id=f"old-{unit}", attempt=1, region=REGION, job_name=created.job_name)
    assert activities.delete_job(ref).deleted


def test_a_job_whose_namespace_is_unknown_is_found_and_deleted(gateway: JobGateway) -> None:
    unit = unique_unit("ads")
    activities = JobActivities(gateway, namespace="meridian")
    created = activities.create_job(
        CreateJobInput(task_id=f"t-{unit}", spec=task_spec(unit), attempt=1, region=REGION)
    )
    ref = JobRef(
        task_id=f"t-{unit}", attempt=1, region=REGION, job_name=created.job_name, namespace=None
    )
    assert activities.delete_job(ref).deleted
    assert activities.delete_job(ref).deleted is False  # gone from every namespace


def test_two_units_land_in_two_namespaces_and_the_job_sweep_sees_and_deletes_both(
    gateway: JobGateway,
) -> None:
    units = [unique_unit("ads"), unique_unit("search")]
    activities = JobActivities(gateway, namespace="meridian")
    created = {
        u: activities.create_job(
            CreateJobInput(task_id=f"t-{u}", spec=task_spec(u), attempt=1, region=REGION)
        )
        for u in units
    }
    assert {c.namespace for c in created.values()} == {f"meridian-{u}" for u in units}
    keys = activities.list_job_keys(ListJobKeysInput(region=REGION)).jobs
    mine = {k.job_name: k.namespace for k in keys if k.task_id in {f"t-{u}" for u in units}}
    assert mine == {c.job_name: c.namespace for c in created.values()}
    names = list(mine)
    activities.delete_jobs(DeleteJobsInput(region=REGION, job_names=names, namespaces=mine))
    batch = gateway.clients.batch(REGION)
    for name, namespace in mine.items():
        assert _wait(lambda n=name, ns=namespace: not _exists(batch, n, ns))  # type: ignore[misc]


async def test_the_watch_reports_the_jobs_of_every_units_namespace(gateway: JobGateway) -> None:
    units = [unique_unit("ads"), unique_unit("search")]
    seen: list[JobObservation] = []

    async def report(obs: JobObservation) -> None:
        seen.append(obs)

    watcher = JobWatcher(
        region=REGION, gateway=gateway, namespace=None, report=report, watch_timeout_seconds=2
    )
    stop = asyncio.Event()
    watching = asyncio.create_task(watcher.run(stop))
    try:
        activities = JobActivities(gateway, namespace="meridian")
        for unit in units:
            await asyncio.to_thread(
                activities.create_job,
                CreateJobInput(task_id=f"t-{unit}", spec=task_spec(unit), attempt=1, region=REGION),
            )
        wanted = {f"t-{u}" for u in units}
        for _ in range(200):
            done = {o.task_id for o in seen if o.phase is JobPhase.SUCCEEDED}
            if wanted <= done:
                break
            await asyncio.sleep(0.05)
        ended = {o.task_id: o.namespace for o in seen if o.phase is JobPhase.SUCCEEDED}
        assert {t: ended.get(t) for t in wanted} == {f"t-{u}": f"meridian-{u}" for u in units}
    finally:
        stop.set()
        await asyncio.wait_for(watching, timeout=20)


def _exists(batch: client.BatchV1Api, name: str, namespace: str) -> bool:
    try:
        batch.read_namespaced_job(name, namespace)
        return True
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise


def _wait(predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    return None


def test_a_create_started_after_its_deadline_is_not_sent(gateway: JobGateway) -> None:
    """Queued behind a failover's backlog until its workflow gave up: the workflow has
    moved on, so a Job made now would be a second live copy. Nothing is sent."""
    unit = unique_unit("late")
    activities = JobActivities(gateway, namespace="meridian")
    activities.ensure_namespace(EnsureNamespaceInput(region=REGION, business_unit=unit))
    inp = CreateJobInput(task_id=f"t-{unit}", spec=task_spec(unit), attempt=1, region=REGION)
    now = datetime.now(UTC)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        scheduled_time=now - timedelta(seconds=20),
        started_time=now,
        schedule_to_close_timeout=timedelta(seconds=15),
        start_to_close_timeout=timedelta(seconds=15),
    )
    with gateway.counting() as sent, pytest.raises(ApplicationError) as raised:
        env.run(activities.create_job, inp)
    assert raised.value.type == "DeadlinePassed" and not raised.value.non_retryable
    assert sent.requests == 0
    # In time, the same create is sent and lands.
    env.info = dataclasses.replace(env.info, scheduled_time=now)
    assert env.run(activities.create_job, inp).created
