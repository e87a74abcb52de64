"""The unit worker's Role and ClusterRole allow exactly the calls its code makes.

The calls are recorded, not listed by hand: the JobGateway, the Job watch and the node
activities (probe, cordon, uncordon, drain) run against kubesim through a client that
notes every request, and each request becomes the (API group, resource, verb) that
Kubernetes' RBAC would check. A grep keeps the recording complete: every Kubernetes API
method the worker's code names must have been called here.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from kubernetes import client
from temporalio.testing import ActivityEnvironment

from activities.scaling import ScalingUnitActivities
from kubesim.process import KubesimProcess
from meridian.channels.watch import JobWatcher
from meridian.kube.clients import ClusterClients
from meridian.kube.gateway import JobGateway
from meridian.kube.namespaces import UnitNamespaces
from meridian.regions.config import load_regions
from meridian.regions.pod_cache import RegionPodReader
from meridian.scaling.contracts import DrainNodeInput, NodeActionInput
from meridian.tasks.spec import TaskSpec
from meridian.tenancy.quotas import QuotaSettings, UnitQuota
from tests.conftest import REPO

from .conftest import REGION
from .support import kustomize

Permission = tuple[str, str, str]  # (api group, resource[/subresource], verb)
# The code the unit worker runs that talks to its cluster.
UNIT_CODE = [
    "meridian/kube/gateway.py",
    "meridian/channels/watch.py",
    "meridian/channels/resident.py",
    "meridian/regions/listing.py",
    "meridian/regions/pod_cache.py",
    "meridian/kube/watch_stream.py",
    "activities/jobs.py",
    "activities/scaling.py",
]
SPEC = TaskSpec.model_validate(
    {
        "name": "etl",
        "business_unit": "ads",
        "data_source": {"provider": "aws", "region": "us-west-2"},
        "job": {"image": "busybox:1.36", "annotations": {"kubesim.io/duration": "200ms"}},
    }
)


class RecordingClients(ClusterClients):
    """ClusterClients whose requests are noted, and which Kubernetes methods made them."""

    def __init__(self, kubeconfig: str) -> None:
        super().__init__(kubeconfig)
        # (method, URL, the answer's status)
        self.requests: list[tuple[str, str, int]] = []
        self.methods: set[str] = set()

    def api_client(self, region: str) -> client.ApiClient:
        api = super().api_client(region)
        rest = api.rest_client
        if not getattr(rest, "recorded", False):
            original = rest.request

            def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                try:
                    response = original(method, url, *args, **kwargs)
                except client.ApiException as exc:
                    self.requests.append((method, url, int(exc.status or 0)))
                    raise
                self.requests.append((method, url, int(response.status)))
                return response

            rest.request = request
            rest.recorded = True
        return api

    def core(self, region: str) -> client.CoreV1Api:
        return _Named(super().core(region), self.methods)  # type: ignore[return-value]

    def batch(self, region: str) -> client.BatchV1Api:
        return _Named(super().batch(region), self.methods)  # type: ignore[return-value]


class _Named:
    def __init__(self, api: Any, methods: set[str]) -> None:
        self._api, self._methods = api, methods

    def __getattr__(self, name: str) -> Any:
        self._methods.add(name)
        return getattr(self._api, name)


def permission(method: str, url: str) -> tuple[str | None, Permission]:
    """(namespace or None for cluster scope, the permission RBAC checks) of a request."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    group = "" if parts[0] == "api" else parts[1]
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    named = len(rest) > 1
    watch = parse_qs(urlsplit(url).query).get("watch") == ["true"]
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch"}
    if method == "GET":
        verb = "get" if named else ("watch" if watch else "list")
    elif method == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = verbs[method]
    return namespace, (group, resource, verb)


def granted(rules: list[dict[str, Any]]) -> set[Permission]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _pod_on(node: str) -> dict[str, Any]:
    """Someone else's workload on the node: a drain evicts it."""
    return {
        "metadata": {
            "name": f"web-{uuid.uuid4().hex[:6]}",
            "annotations": {"kubesim.io/duration": "1h"},
        },
        "spec": {"nodeName": node, "containers": [{"name": "web", "image": "nginx:1.27"}]},
    }


async def _exercise(sim_regions: Path, clients: RecordingClients) -> None:
    gateway = JobGateway(clients)
    # As ensure_namespace does on a fresh cluster: the unit's namespace with its policies
    # and quota, each a server-side apply that creates it, then (found missing, or a
    # worker whose cache is cold) applied again over what exists.
    quotas = QuotaSettings(default=UnitQuota(cpu="64", memory="256Gi", max_active_tasks=100))
    namespaces = UnitNamespaces(gateway, quotas=quotas)
    tasks = namespaces.ensure(REGION, "ads")
    namespaces.ensure(REGION, "ads", again=True)  # exists: applied, nothing created
    name, created = gateway.create_job(REGION, tasks, "task-1", SPEC, 1)
    assert created
    gateway.observe(REGION, tasks, name, task_id="task-1", attempt=1, source="test")
    gateway.list_observations(REGION, None, source="test")
    list(gateway.list_jobs_raw(REGION, None))
    gateway.job_pods(REGION, tasks, name)
    gateway.nodes_and_live_pods(REGION, within=5.0)
    gateway.list_nodes(REGION, within=5.0)
    # The pod cache: every live pod listed, then every pod watched.
    pods = RegionPodReader(REGION, gateway, watch_timeout_seconds=1)
    pods.run(max_cycles=1)
    assert pods.synced() and pods.stats.watches == 1

    async def report(_: object) -> None:
        return None

    # Every unit's namespace: the unit worker watches them all.
    watcher = JobWatcher(
        region=REGION, gateway=gateway, namespace=None, report=report, watch_timeout_seconds=1
    )
    await watcher.run(asyncio.Event(), max_cycles=1)

    nodes = gateway.get_json(clients.core(REGION).list_node)["items"]
    node = nodes[0]["metadata"]["name"]
    plain = client.CoreV1Api(clients.api_client(REGION))  # set-up, not the worker's own
    plain.create_namespaced_pod("default", _pod_on(node))
    scaling = ScalingUnitActivities(gateway, load_regions(sim_regions), control_url=None)
    env = ActivityEnvironment()
    env.run(scaling.cordon_node, NodeActionInput(region=REGION, node=node))
    result = env.run(scaling.drain_node, DrainNodeInput(region=REGION, node=node))
    assert result.evicted, "the drain must evict someone for the test to see it"
    env.run(scaling.uncordon_node, NodeActionInput(region=REGION, node=node))
    assert gateway.delete_job(REGION, tasks, name)


def _rules(kind: str) -> list[dict[str, Any]]:
    overlay = REPO / "infra" / "k8s" / "overlays" / f"unit-{REGION}"
    docs = yaml.safe_load_all(kustomize(overlay))
    rules: list[dict[str, Any]] = next(d for d in docs if d["kind"] == kind)["rules"]
    return rules


async def test_the_unit_roles_allow_exactly_what_the_worker_calls(
    kubesim: KubesimProcess, sim_regions: Path
) -> None:
    clients = RecordingClients(kubesim.kubeconfig)
    try:
        await _exercise(sim_regions, clients)
    finally:
        clients.close()
    seen = []
    for method, url, status in clients.requests:
        namespace, perm = permission(method, url)
        seen.append((namespace, perm))
        if method == "PATCH" and status == 201:
            # A server-side apply that created the object: RBAC checks create as well.
            seen.append((namespace, (perm[0], perm[1], "create")))
    # Set-up requests (the pod to drain) are not the worker's: drop them.
    seen = [(ns, p) for ns, p in seen if p != ("", "pods", "create")]
    used = {p for _, p in seen}

    # Task namespaces are made at run time, one per business unit, so no Role could be
    # bound in them beforehand: the ClusterRole grants exactly what the worker calls.
    assert granted(_rules("ClusterRole")) == used, "\n".join(map(str, sorted(used)))
    assert ("", "nodes", "patch") in used and ("", "pods/eviction", "create") in used
    assert ("", "namespaces", "create") in used and ("batch", "jobs", "watch") in used
    assert ("", "pods", "watch") in used
    assert ("networking.k8s.io", "networkpolicies", "patch") in used


def test_every_kubernetes_call_in_the_worker_is_exercised_here() -> None:
    used: set[str] = set()
    for path in UNIT_CODE:
        text = (REPO / path).read_text()
        used |= set(re.findall(r"\b(?:core|batch)\.([a-z_]+)\b", text))
    exercised = {
        "create_namespaced_job",
        "read_namespaced_job",
        "delete_namespaced_job",
        "list_namespaced_job",
        "list_namespaced_pod",
        "list_pod_for_all_namespaces",
        "list_node",
        "read_node",
        "patch_node",
        "create_namespaced_pod_eviction",
        "read_namespace",
        "create_namespace",
        "patch_namespace",
        "list_job_for_all_namespaces",
    }
    assert used <= exercised, f"new Kubernetes calls, add them to _exercise: {used - exercised}"


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        (
            "GET",
            "https://h/apis/batch/v1/namespaces/t/jobs?watch=true",
            ("t", ("batch", "jobs", "watch")),
        ),
        ("GET", "https://h/api/v1/nodes/n1", (None, ("", "nodes", "get"))),
        (
            "POST",
            "https://h/api/v1/namespaces/d/pods/p/eviction",
            ("d", ("", "pods/eviction", "create")),
        ),
        ("GET", "https://h/api/v1/namespaces/t", (None, ("", "namespaces", "get"))),
    ],
)
def test_requests_map_to_rbac_permissions(
    method: str, url: str, expected: tuple[str | None, Permission]
) -> None:
    assert permission(method, url) == expected
