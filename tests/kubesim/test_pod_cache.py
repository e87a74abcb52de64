"""The pod cache against kubesim: it follows pods as they come, finish and go, recovers a
dropped watch and an outage, and reads the same load a fresh list does."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from kubesim.control import KubesimControl
from kubesim.process import KubesimProcess
from meridian.kube.clients import ClusterClients
from meridian.kube.gateway import JobGateway
from meridian.regions.load import compute_load
from meridian.regions.pod_cache import PodCache, RegionPodReader
from meridian.scaling.observe import observe

from .conftest import CORE, FAULTS, job_body, wait_for


@pytest.fixture
def gateway(kubesim: KubesimProcess) -> Iterator[JobGateway]:
    clients = ClusterClients(kubesim.kubeconfig)
    yield JobGateway(clients)
    clients.close()


@pytest.fixture
def cache(gateway: JobGateway) -> Iterator[PodCache]:
    # A short staleness bound and backoff, so that an outage shows within a test.
    cache = PodCache(gateway, stale_seconds=1.0, backoff_max=0.5, watch_timeout_seconds=10)
    cache.start([CORE, FAULTS])
    wait_for(lambda: cache.synced(CORE) and cache.synced(FAULTS), what="the first lists")
    yield cache
    cache.stop()


def pod_body(name: str, duration: str = "1h", cpu: str = "100m") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"app": "cache-test"},
            "annotations": {"kubesim.io/duration": duration, "kubesim.io/exit-code": "0"},
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}},
                }
            ],
        },
    }


def cached(cache: PodCache, region: str, namespace: str) -> dict[str, dict[str, Any]]:
    return {
        p["metadata"]["name"]: p
        for p in cache.pods(region)
        if p["metadata"].get("namespace") == namespace
    }


def fresh_namespace(core: client.CoreV1Api) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name}})
    return name


def test_a_created_pod_is_cached_and_leaves_when_it_succeeds(
    cache: PodCache, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, pod_body("short", duration="1500ms"))
    seen = wait_for(lambda: cached(cache, CORE, namespace).get("short"), what="the new pod")
    assert seen["spec"]["containers"] == [
        {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
    ]
    wait_for(lambda: "short" not in cached(cache, CORE, namespace), what="the pod to leave")
    # It left for its phase: the pod itself is still there.
    assert core.read_namespaced_pod("short", namespace).status.phase == "Succeeded"


def test_a_deleted_pod_leaves(cache: PodCache, core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, pod_body("long"))
    wait_for(lambda: "long" in cached(cache, CORE, namespace), what="the new pod")
    core.delete_namespaced_pod("long", namespace, grace_period_seconds=0)
    wait_for(lambda: "long" not in cached(cache, CORE, namespace), what="the pod to leave")


def test_a_dropped_watch_is_recovered(
    cache: PodCache,
    control: KubesimControl,
    api_clients: Callable[[str], client.ApiClient],
) -> None:
    core = client.CoreV1Api(api_clients(FAULTS))
    namespace = fresh_namespace(core)
    reader = cache.reader(FAULTS)
    assert reader is not None
    wait_for(lambda: control.region(FAULTS)["watches"] >= 1, what="the watch to open")
    watches = reader.stats.watches
    assert control.drop_watches(FAULTS)["dropped"] >= 1
    core.create_namespaced_pod(namespace, pod_body("after-drop"))
    wait_for(
        lambda: "after-drop" in cached(cache, FAULTS, namespace), what="the pod after the drop"
    )
    assert reader.stats.watches > watches
    assert cache.synced(FAULTS)


def test_an_outage_unsyncs_the_cache_and_the_return_relists(
    cache: PodCache, control: KubesimControl, api_clients: Callable[[str], client.ApiClient]
) -> None:
    core = client.CoreV1Api(api_clients(FAULTS))
    namespace = fresh_namespace(core)
    control.outage(FAULTS)
    try:
        wait_for(lambda: not cache.synced(FAULTS), what="the cache to give up")
    finally:
        control.restore(FAULTS)
    wait_for(lambda: cache.synced(FAULTS), what="the cache to come back")
    core.create_namespaced_pod(namespace, pod_body("after-outage"))
    wait_for(lambda: "after-outage" in cached(cache, FAULTS, namespace), what="the pod after it")


def test_load_over_the_cache_is_load_over_a_fresh_list(
    cache: PodCache, gateway: JobGateway, batch: client.BatchV1Api, namespace: str
) -> None:
    requests = {"cpu": "500m", "memory": "256Mi"}
    for i, duration in enumerate(["300ms", "400ms", "30s", "30s", "60s"]):
        labels = {"meridian.io/managed": "true", "meridian.io/task-id": f"t{i}"}
        batch.create_namespaced_job(
            namespace, job_body(f"j{i}", duration=duration, labels=labels, requests=requests)
        )
    # Too big for any node: pending and unschedulable, the scaling loop's demand.
    batch.create_namespaced_job(namespace, job_body("huge", duration="60s", requests={"cpu": "64"}))

    def running() -> bool:
        pods = cached(cache, CORE, namespace)
        phases = [p["status"].get("phase") for p in pods.values()]
        return len(pods) == 4 and phases.count("Running") == 3

    wait_for(running, what="the short Jobs to end and the long ones to run")

    def same() -> tuple[Any, Any] | None:
        nodes, listed = gateway.nodes_and_live_pods(CORE)
        fresh, mine = list(listed["items"]), cache.pods(CORE)
        load_fresh = compute_load(nodes["items"], fresh)
        load_cached = compute_load(nodes["items"], mine)
        seen_fresh = observe(CORE, 0.0, nodes["items"], fresh, [])
        seen_cached = observe(CORE, 0.0, nodes["items"], mine, [])
        if load_fresh == load_cached and seen_fresh == seen_cached:
            return load_cached, seen_cached
        return None

    load, (observation, pending) = wait_for(same, what="the cache to match a fresh list")
    assert load.pending_pods >= 1 and load.cpu_requested_millis >= 1500
    assert {"t2", "t3", "t4"} <= {t for n in observation.nodes for t in n.task_ids}
    assert any(r.cpu == 64000 for r in pending)


def test_a_reader_without_an_api_is_not_synced(gateway: JobGateway) -> None:
    reader = RegionPodReader("no-such-region", gateway, backoff_initial=0.01)
    reader.run(max_cycles=2)
    assert not reader.synced() and reader.stats.errors == 2
