"""The unit worker's metrics: Kubernetes requests by region, verb and code (against a
real kubesim), Job watch restarts by reason, and resident channels by state."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from temporalio.client import Client
from websockets.asyncio.server import ServerConnection, serve

from kubesim.process import KubesimProcess, start_kubesim
from meridian.channels.resident import ResidentChannels
from meridian.channels.watch import JobWatcher
from meridian.kube.clients import ClusterClients
from meridian.kube.contracts import JobObservation, JobPhase
from meridian.kube.errors import KubeError, KubeGone
from meridian.kube.gateway import JobGateway
from meridian.observability import metrics as m
from meridian.observability.kube import request_verb
from meridian.settings import FailoverSettings
from meridian.tasks.spec import TaskSpec
from tests.api.stage import DEV_REGIONS
from tests.integration.harness import task_body
from tests.observability.support import sample, series

REGION = "aws-us-east-1"
NAMESPACE = "metrics-test"


@pytest.mark.parametrize(
    ("method", "url", "verb"),
    [
        ("GET", "https://h/api/v1/namespaces/ns/pods/p-1", "get"),
        ("GET", "https://h/api/v1/namespaces/ns/pods?labelSelector=a", "list"),
        ("GET", "https://h/api/v1/pods", "list"),
        ("GET", "https://h/api/v1/nodes/n1", "get"),
        ("GET", "https://h/api/v1/namespaces/ns", "get"),
        ("GET", "https://h/apis/batch/v1/namespaces/ns/jobs?watch=true&rv=5", "watch"),
        ("POST", "https://h/apis/batch/v1/namespaces/ns/jobs", "create"),
        ("POST", "https://h/api/v1/namespaces/ns/pods/p/eviction", "create"),
        ("PATCH", "https://h/api/v1/nodes/n1", "patch"),
        ("PUT", "https://h/apis/batch/v1/namespaces/ns/jobs/j", "update"),
        ("DELETE", "https://h/apis/batch/v1/namespaces/ns/jobs/j", "delete"),
        ("DELETE", "https://h/apis/batch/v1/namespaces/ns/jobs", "deletecollection"),
    ],
)
def test_request_verbs_are_the_apiservers(method: str, url: str, verb: str) -> None:
    assert request_verb(method, url) == verb


@pytest.fixture(scope="module")
def kubesim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubesimProcess]:
    with start_kubesim(DEV_REGIONS, tmp_path_factory.mktemp("kubesim")) as process:
        yield process


@pytest.fixture
def gateway(kubesim: KubesimProcess) -> Iterator[JobGateway]:
    clients = ClusterClients(kubesim.kubeconfig)
    yield JobGateway(clients)
    clients.close()


def requests(verb: str, code: str) -> float:
    return sample(m.UNIT, "meridian_kube_requests_total", region=REGION, verb=verb, code=code)


def test_kubernetes_requests_are_counted_by_region_verb_and_code(gateway: JobGateway) -> None:
    spec = TaskSpec.model_validate(task_body())
    created = requests("create", "201")
    listed = requests("list", "200")
    timed = sample(
        m.UNIT, "meridian_kube_request_duration_seconds_count", region=REGION, verb="create"
    )
    gateway.ensure_namespace(REGION, NAMESPACE)
    name, _ = gateway.create_job(REGION, NAMESPACE, "kube-metrics-1", spec, 1)
    missing = requests("get", "404")
    obs = gateway.observe(REGION, NAMESPACE, "no-such-job", task_id="t", attempt=1, source="test")
    assert obs.phase is JobPhase.MISSING
    list(gateway.list_jobs_raw(REGION, NAMESPACE))
    assert requests("create", "201") >= created + 1
    assert requests("get", "404") == missing + 1
    assert requests("list", "200") >= listed + 1
    assert (
        sample(m.UNIT, "meridian_kube_request_duration_seconds_count", region=REGION, verb="create")
        > timed
    )
    # Neither the Job's nor the task's name becomes a label.
    labels = series(m.UNIT, "meridian_kube_requests_total")
    assert not any(name in value for s in labels for value in s.values())


def test_a_region_that_does_not_answer_counts_as_error(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "dead-region", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "dead-region",
            }
        )
    )
    clients = ClusterClients(config)
    before = sample(
        m.UNIT, "meridian_kube_requests_total", region="dead-region", verb="list", code="error"
    )
    with pytest.raises(KubeError):
        list(JobGateway(clients).list_jobs_raw("dead-region", NAMESPACE))
    clients.close()
    after = sample(
        m.UNIT, "meridian_kube_requests_total", region="dead-region", verb="list", code="error"
    )
    assert after == before + 1


async def _nothing(_: JobObservation) -> None:
    return None


def restarts(reason: str, region: str = REGION) -> float:
    return sample(m.UNIT, "meridian_job_watch_restarts_total", region=region, reason=reason)


async def test_a_watch_the_server_ends_is_counted_as_closed(gateway: JobGateway) -> None:
    closed = restarts("closed")
    watches = requests("watch", "200")
    watcher = JobWatcher(
        region=REGION,
        gateway=gateway,
        namespace=NAMESPACE,
        report=_nothing,
        watch_timeout_seconds=1,
    )
    await asyncio.wait_for(watcher.run(asyncio.Event(), max_cycles=2), timeout=30)
    assert restarts("closed") == closed + 2
    assert requests("watch", "200") == watches + 2


async def test_410s_and_errors_are_counted_apart() -> None:
    region = "watch-faults"
    watcher = JobWatcher(
        region=region,
        gateway=cast(JobGateway, None),
        namespace=NAMESPACE,
        report=_nothing,
        backoff_initial=0.0,
    )
    failures: list[KubeError] = [
        KubeGone("too old", status=410),
        KubeError("reset"),
        KubeGone("too old", status=410),
    ]

    async def listed() -> None:
        watcher._resource_version = "1"

    async def watched() -> None:
        raise failures.pop(0)

    watcher._list = listed  # type: ignore[method-assign]
    watcher._watch = watched  # type: ignore[method-assign]
    gone, errors = restarts("gone", region), restarts("error", region)
    await watcher.run(asyncio.Event(), max_cycles=3)
    assert restarts("gone", region) == gone + 2
    assert restarts("error", region) == errors + 1


class _Api:
    """The pod lookup: one running pod on localhost."""

    def job_pods(self, region: str, namespace: str, job_name: str) -> list[dict[str, Any]]:
        return [{"status": {"phase": "Running", "podIP": "127.0.0.1"}}]


class _Temporal:
    def get_workflow_handle(self, task_id: str) -> _Temporal:
        return self

    async def signal(self, name: str, arg: Any) -> None:
        return None


@pytest.fixture
async def pod_port() -> AsyncIterator[int]:
    async def speak(websocket: ServerConnection) -> None:
        await websocket.send(json.dumps({"state": "degraded"}))
        await websocket.wait_closed()

    async with serve(speak, "127.0.0.1", 0) as server:
        yield server.sockets[0].getsockname()[1]


def channel_states() -> dict[tuple[str, str], float]:
    return {
        (s["region"], s["state"]): sample(m.UNIT, "meridian_resident_channels", **s)
        for s in series(m.UNIT, "meridian_resident_channels")
    }


async def test_resident_channels_are_shown_by_region_and_state(pod_port: int) -> None:
    channels = ResidentChannels(
        cast(Client, _Temporal()), cast(JobGateway, _Api()), NAMESPACE, FailoverSettings()
    )
    m.RESIDENT_CHANNELS.bind(channels.counts)
    obs = JobObservation(
        task_id="resident-1",
        attempt=1,
        region=REGION,
        job_name="meridian-resident-1-1",
        phase=JobPhase.RUNNING,
        source="watch",
        status_port=pod_port,
    )
    try:
        channels.observe(obs)
        assert channel_states() == {(REGION, "connecting"): 1}
        for _ in range(200):
            if channel_states() == {(REGION, "degraded"): 1}:
                break
            await asyncio.sleep(0.02)
        assert channel_states() == {(REGION, "degraded"): 1}
        channels.observe(obs.model_copy(update={"phase": JobPhase.SUCCEEDED}))
        assert channel_states() == {}
    finally:
        await channels.close()
        m.RESIDENT_CHANNELS.bind(None)
