"""Durable state: ``--state-file`` saves every region on stop (and periodically) and a
restarted kubesim resumes from it: same uids and resourceVersions, running pods finish on
their original schedule, resident status endpoints come back on the same address."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from websockets.asyncio.client import connect

from kubesim.control import KubesimControl
from kubesim.process import KubesimProcess, start_kubesim
from kubesim.state import CRASH_RV_GAP

from .conftest import condition, job_body, job_finished, wait_for

REGION = "aws-eu-west-1"
OTHER = "gcp-europe-west4"
REGIONS: dict[str, Any] = {
    "defaults": {"job_duration": "300ms", "eviction_delay": "1s", "provisioning_delay": "200ms"},
    "regions": [
        {
            "name": REGION,
            "provider": "aws",
            "location": "eu-west-1",
            "node_pools": [
                {"name": "general", "count": 2, "cpu": "8", "memory": "32Gi", "min": 1, "max": 6}
            ],
        },
        {
            "name": OTHER,
            "provider": "gcp",
            "location": "europe-west4",
            "node_pools": [{"name": "general", "count": 1, "cpu": "4", "memory": "16Gi"}],
        },
    ],
    "network": [{"from": REGION, "to": "gcp:europe-west4", "rtt_ms": 12.0, "loss": 0.0}],
}
LONG_SECONDS = 6.0


@pytest.fixture
def regions_path(tmp_path: Path) -> Path:
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(REGIONS))
    return path


@pytest.fixture
def processes() -> Iterator[list[KubesimProcess]]:
    """Every kubesim a test starts; whatever is still running at the end is stopped."""
    started: list[KubesimProcess] = []
    yield started
    for process in started:
        process.stop()


def _apis(
    process: KubesimProcess, region: str = REGION
) -> tuple[client.CoreV1Api, client.BatchV1Api]:
    api = config.new_client_from_config(config_file=process.kubeconfig, context=region)
    return client.CoreV1Api(api), client.BatchV1Api(api)


def _resident_job(name: str, port: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {"kubesim.io/resident": "true"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "svc",
                            "image": "meridian/worker:1",
                            "ports": [{"name": "status", "containerPort": port}],
                        }
                    ],
                },
            },
        },
    }


def _running_pod(core: client.CoreV1Api, job: str) -> Any:
    def check() -> Any:
        pods = core.list_namespaced_pod("default", label_selector=f"job-name={job}").items
        return next((p for p in pods if p.status.phase == "Running"), None)

    return wait_for(check, what=f"a running pod of {job}")


async def _heartbeat(url: str) -> dict[str, Any]:
    async with connect(url, open_timeout=3) as ws:
        return dict(json.loads(await asyncio.wait_for(ws.recv(), 3)))


def _base_port(process: KubesimProcess) -> int:
    return int(process.control_url.rsplit(":", 1)[1])


async def test_restart_resumes_jobs_pods_and_resident_endpoints(
    regions_path: Path, tmp_path: Path, processes: list[KubesimProcess]
) -> None:
    state_file = tmp_path / "kubesim-state.json"
    first = start_kubesim(regions_path, tmp_path / "run", state_file=state_file)
    processes.append(first)
    core, batch = _apis(first)
    control = KubesimControl(first.control_url)
    # A port of its own: pod IPs are only unique within one kubesim process.
    port = random.randint(20000, 40000)

    batch.create_namespaced_job("default", job_body("long", duration=f"{LONG_SECONDS}s"))
    batch.create_namespaced_job("default", _resident_job("resident", port))
    old_rv = batch.list_namespaced_job("default").metadata.resource_version
    batch.create_namespaced_job("default", job_body("short", duration="1s"))
    long_pod = _running_pod(core, "long")
    long_started = long_pod.status.start_time.timestamp()
    resident_pod = _running_pod(core, "resident")
    short_pod = _running_pod(core, "short")
    url = f"ws://{resident_pod.status.pod_ip}:{port}/status"
    assert (await _heartbeat(url))["state"] == "healthy"
    control.set_pod_status(REGION, "default", resident_pod.metadata.name, "degraded")
    control.scale_pool(REGION, "general", 3, provisioning_delay_seconds=0)
    control.set_network_path(REGION, "azure:westeurope", rtt_ms=20.0, loss=0.01)
    control.latency(REGION, 5)  # a transient fault: not saved
    long_job = batch.read_namespaced_job("long", "default")
    nodes_before = sorted(n.metadata.name for n in core.list_node().items)

    assert first.stop() == 0
    stopped_at = time.time()
    control.close()

    saved = json.loads(state_file.read_text())
    assert saved["kind"] == "KubesimState" and saved["version"] == 1 and saved["clean"]
    assert sorted(saved["regions"]) == sorted([REGION, OTHER])
    region = saved["regions"][REGION]
    jobs = {j["metadata"]["name"]: j for j in region["objects"]["jobs"]}
    assert jobs["long"]["metadata"]["uid"] == long_job.metadata.uid
    assert jobs["long"]["metadata"]["resourceVersion"] == long_job.metadata.resource_version
    saved_rv = int(region["resource_version"])
    assert saved_rv >= max(
        int(o["metadata"]["resourceVersion"]) for objs in region["objects"].values() for o in objs
    )
    assert "events" not in region["objects"]
    assert [p["desired"] for p in region["pools"]] == [3]
    assert not list(tmp_path.glob(".kubesim-state.json.*"))  # no temporary file left behind

    # The short Job's pod finishes while kubesim is down.
    time.sleep(max(0.0, short_pod.status.start_time.timestamp() + 2.2 - time.time()))
    second = start_kubesim(
        regions_path, tmp_path / "run", base_port=_base_port(first), state_file=state_file
    )
    processes.append(second)
    assert "restored" in second.log_path.read_text()
    core, batch = _apis(second)
    control = KubesimControl(second.control_url)

    # Same objects, same identities; the long Job is still running.
    long_job = batch.read_namespaced_job("long", "default")
    assert long_job.metadata.uid == jobs["long"]["metadata"]["uid"]
    assert long_job.status.active == 1 and not long_job.status.succeeded
    pod = core.read_namespaced_pod(long_pod.metadata.name, "default")
    assert pod.metadata.uid == long_pod.metadata.uid and pod.status.phase == "Running"
    assert sorted(n.metadata.name for n in core.list_node().items) == nodes_before
    pools = control.pools(REGION)
    assert pools[0]["desired"] == 3 and pools[0]["ready"] == 3
    paths = {p["target"]: p for p in control.network(REGION)["paths"]}
    assert paths["azure:westeurope"]["rtt_ms"] == 20.0 and "gcp:europe-west4" in paths
    assert control.region(REGION)["latency_ms"] == 0

    # The short Job completed at once: its pod's time ran out while kubesim was down.
    short = wait_for(job_finished(batch, "default", "short"), timeout=3)
    assert condition(short, "Complete").status == "True" and short.status.succeeded == 1

    # The resident pod serves its status channel again, same address, same state.
    pod = core.read_namespaced_pod(resident_pod.metadata.name, "default")
    assert pod.status.phase == "Running" and pod.status.pod_ip == resident_pod.status.pod_ip
    assert (await _heartbeat(url))["state"] == "degraded"

    # A watch from before the restart gets 410 Gone (relist); one from the resourceVersion
    # the clean stop saved continues and sees the long Job complete.
    with pytest.raises(ApiException) as err:
        list(
            watch.Watch().stream(
                batch.list_namespaced_job, "default", resource_version=old_rv, timeout_seconds=2
            )
        )
    assert err.value.status == 410
    events = []
    for event in watch.Watch().stream(
        batch.list_namespaced_job,
        "default",
        resource_version=str(saved_rv),
        field_selector="metadata.name=long",
        timeout_seconds=int(LONG_SECONDS) + 5,
    ):
        events.append(event)
        if condition(event["object"], "Complete") is not None:
            break
    done_at = time.time()
    assert events and all(e["type"] == "MODIFIED" for e in events)
    assert int(events[0]["object"].metadata.resource_version) > saved_rv
    # It completes on its original schedule, not LONG_SECONDS after the restart.
    assert long_started + LONG_SECONDS - 1.0 <= done_at <= long_started + LONG_SECONDS + 2.5
    assert done_at > stopped_at

    # New pods get addresses no restored pod holds.
    batch.create_namespaced_job("default", job_body("after", duration="5s"))
    after = _running_pod(core, "after")
    restored_ips = {long_pod.status.pod_ip, resident_pod.status.pod_ip, short_pod.status.pod_ip}
    assert after.status.pod_ip not in restored_ips
    control.close()
    assert second.stop() == 0


def test_periodic_snapshot_survives_sigkill(
    regions_path: Path, tmp_path: Path, processes: list[KubesimProcess]
) -> None:
    state_file = tmp_path / "state.json"
    first = start_kubesim(
        regions_path,
        tmp_path / "run",
        state_file=state_file,
        extra_args=["--state-interval", "0.3"],
    )
    processes.append(first)
    core, batch = _apis(first)
    name = f"kept-{uuid.uuid4().hex[:6]}"
    batch.create_namespaced_job("default", job_body(name, duration="30s"))
    pod = _running_pod(core, name)

    def saved() -> Any:
        if not state_file.exists():
            return None
        data = json.loads(state_file.read_text())
        pods = data["regions"][REGION]["objects"]["pods"]
        return data if any(p["status"].get("phase") == "Running" for p in pods) else None

    data = wait_for(saved, timeout=5, what="a periodic snapshot with the running pod")
    assert data["clean"] is False
    saved_rv = int(data["regions"][REGION]["resource_version"])
    os.kill(first.pid, signal.SIGKILL)
    first.process.wait(5)

    second = start_kubesim(
        regions_path, tmp_path / "run", base_port=_base_port(first), state_file=state_file
    )
    processes.append(second)
    core, batch = _apis(second)
    assert batch.read_namespaced_job(name, "default").status.active == 1
    assert core.read_namespaced_pod(pod.metadata.name, "default").metadata.uid == pod.metadata.uid
    # After a crash the counter jumps past anything the lost process may have handed out,
    # so every resourceVersion a client holds is older than the window: 410, relist.
    listed = batch.list_namespaced_job("default")
    assert int(listed.metadata.resource_version) >= saved_rv + CRASH_RV_GAP
    with pytest.raises(ApiException) as err:
        list(
            watch.Watch().stream(
                batch.list_namespaced_job,
                "default",
                resource_version=str(saved_rv),
                timeout_seconds=1,
            )
        )
    assert err.value.status == 410
    assert second.stop() == 0


def test_state_of_other_regions_is_ignored_with_a_warning(
    regions_path: Path, tmp_path: Path, processes: list[KubesimProcess]
) -> None:
    state_file = tmp_path / "state.json"
    state_file.write_text(
        json.dumps(
            {
                "kind": "KubesimState",
                "version": 1,
                "saved_at": time.time(),
                "clean": True,
                "regions": {"elsewhere-1": {"resource_version": 7, "objects": {}}},
            }
        )
    )
    process = start_kubesim(regions_path, tmp_path / "run", state_file=state_file)
    processes.append(process)
    log = process.log_path.read_text()
    assert "kubesim: warning: state file" in log and "elsewhere-1" in log
    _, batch = _apis(process)
    assert batch.list_namespaced_job("default").items == []
    assert process.stop() == 0
    # The next save is for the regions this kubesim runs.
    assert sorted(json.loads(state_file.read_text())["regions"]) == sorted([REGION, OTHER])


def test_unreadable_state_file_starts_empty(
    regions_path: Path, tmp_path: Path, processes: list[KubesimProcess]
) -> None:
    state_file = tmp_path / "state.json"
    state_file.write_text("{not json")
    process = start_kubesim(regions_path, tmp_path / "run", state_file=state_file)
    processes.append(process)
    assert "is not valid JSON" in process.log_path.read_text()
    assert process.stop() == 0
