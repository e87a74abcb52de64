"""The burst scenario (issue 14): a wave of one-CPU tasks at a region whose nodes are full
and take long to boot, run twice in one system: nodes only, then `placement.capacity:
auto` (which may burst to the region's serverless capacity).

Two regions with the same pools and Fargate capacity, one per mode, so the second run
does not find the nodes the first one grew; the modes run one after the other, so they
do not share the engine's CPU. Each mode's wave: `n` tasks submitted evenly over
`arrival_seconds`, all pinned to the mode's region. Per mode:
- time until all run: from the first submit until the last task's pod is first seen
  Running by an independent pod watch (the cluster's truth, not the engine's report);
- cost: kubesim's ledgers over [first submit, last task SUCCEEDED] — the pools' node
  ledger (every node from launch, boot included, until removed, at `price_per_hour`) and
  the serverless ledger (billed size × run time of each pod on the virtual node);
- how many tasks burst (their last pod ran on the virtual node) and how many went back
  to nodes (a later attempt on nodes after one on the virtual node);
- afterwards: a small follow-up wave under `auto` once the main wave is done, and how
  much of it runs on nodes again (the burst must not stick).
Nothing is timed against a target: the figures are printed, with auto / nodes-only.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client, config, watch

from meridian.kube.labels import LABEL_TASK_ID
from meridian.tasks.keys import task_key

NODES_REGION = "aws-us-east-1"
AUTO_REGION = "aws-us-west-2"
NODE_CPU = 8
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
ATTEMPT = re.compile(r"-a(\d+)$")


@dataclass(frozen=True)
class BurstPlan:
    tasks: int
    arrival_seconds: float
    task_seconds: float
    boot_seconds: float  # kubesim's provisioning delay and the pools' declared boot time
    nodes: int  # per region at the start
    max_wait_for_nodes_seconds: float  # the engine's burst setting for the run
    after_tasks: int  # the follow-up wave under auto
    cold_start_seconds: float  # Fargate's, simulated
    timeout: float


def regions_file(plan: BurstPlan, directory: Path) -> Path:
    """Two identical regions (pools that can grow to hold the whole wave, Fargate)."""
    max_nodes = plan.nodes + -(-plan.tasks // NODE_CPU) + 2

    def region(name: str, location: str) -> dict[str, Any]:
        return {
            "name": name,
            "provider": "aws",
            "location": location,
            "node_pools": [
                {
                    "name": "general",
                    "count": plan.nodes,
                    "cpu": str(NODE_CPU),
                    "memory": "32Gi",
                    "min": 1,
                    "max": max_nodes,
                    "price_per_hour": 0.384,  # m6i.2xlarge on demand, us-east-1
                    "boot_seconds": plan.boot_seconds,
                }
            ],
            "serverless": {
                "kind": "fargate",
                "max_pods": plan.tasks + plan.after_tasks + 50,
                "max_cpu": str(2 * (plan.tasks + plan.after_tasks)),
                "max_memory": f"{8 * (plan.tasks + plan.after_tasks)}Gi",
                "cold_start_seconds": plan.cold_start_seconds,
            },
        }

    data = {
        "defaults": {
            "job_duration": "3s",
            "eviction_delay": "5s",
            "provisioning_delay": f"{plan.boot_seconds:g}s",
        },
        "regions": [region(NODES_REGION, "us-east-1"), region(AUTO_REGION, "us-west-2")],
    }
    path = directory / "burst-regions.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def engine_env(plan: BurstPlan) -> dict[str, str]:
    return {"MERIDIAN_BURST__MAX_WAIT_FOR_NODES_SECONDS": f"{plan.max_wait_for_nodes_seconds:g}"}


# -- the pod watch ----------------------------------------------------------------------


@dataclass
class PodSeen:
    task_id: str
    attempt: int
    node: str | None = None
    running_at: float | None = None


class PodWatcher:
    """Every Meridian pod of the given regions: its node and when it was first Running."""

    def __init__(self, kubeconfig: str, regions: list[str], business_unit: str = "bench"):
        # Task pods run in their unit's namespace, so the watch spans every namespace;
        # their label carries the task's key (`<unit>.<id>`), not the id the bench gave.
        self.kubeconfig = kubeconfig
        self.regions = regions
        self.business_unit = business_unit
        self.pods: dict[tuple[str, str], PodSeen] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _api(self, region: str) -> client.CoreV1Api:
        cfg = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=self.kubeconfig,
            context=region,
            client_configuration=cfg,
            persist_config=False,
        )
        return client.CoreV1Api(client.ApiClient(cfg))

    def _note(self, region: str, pod: dict[str, Any], now: float) -> None:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        task_id = labels.get(LABEL_TASK_ID)
        if not task_id:
            return
        # Job names are `<task>-a<attempt>` (meridian.tasks.spec.job_name_for).
        match = ATTEMPT.search(str(labels.get("job-name") or ""))
        attempt = int(match.group(1)) if match else 0
        with self._lock:
            seen = self.pods.setdefault(
                (region, str(meta.get("name"))), PodSeen(str(task_id), attempt)
            )
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                seen.node = str(node)
            if (pod.get("status") or {}).get("phase") == "Running" and seen.running_at is None:
                seen.running_at = now

    def _run(self, region: str) -> None:
        api = self._api(region)
        resource_version = ""
        while not self._stop.is_set():
            try:
                if not resource_version:
                    listed = api.list_pod_for_all_namespaces(
                        label_selector=LABEL_TASK_ID, _preload_content=False
                    )
                    data = json.loads(listed.data)  # type: ignore[attr-defined]
                    now = time.time()
                    for pod in data.get("items") or []:
                        self._note(region, pod, now)
                    resource_version = data["metadata"]["resourceVersion"]
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    api.list_pod_for_all_namespaces,
                    label_selector=LABEL_TASK_ID,
                    resource_version=resource_version,
                    timeout_seconds=2,
                    allow_watch_bookmarks=True,
                    deserialize=False,
                )
                for event in stream:
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        resource_version = ""
                        break
                    resource_version = (obj.get("metadata") or {}).get(
                        "resourceVersion", resource_version
                    )
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._note(region, obj, time.time())
                    if self._stop.is_set():
                        break
            except Exception:  # noqa: BLE001 - the namespace not there yet, a dropped stream
                resource_version = ""
                self._stop.wait(0.2)

    def start(self) -> PodWatcher:
        for region in self.regions:
            thread = threading.Thread(target=self._run, args=(region,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def of_tasks(self, task_ids: set[str]) -> dict[str, list[PodSeen]]:
        """Each task's pods (by the id the bench gave it), by attempt."""
        by_key = {task_key(self.business_unit, t): t for t in task_ids}
        with self._lock:
            found: dict[str, list[PodSeen]] = {}
            for seen in self.pods.values():
                if seen.task_id in by_key:
                    found.setdefault(by_key[seen.task_id], []).append(seen)
        for pods in found.values():
            pods.sort(key=lambda p: p.attempt)
        return found


# -- one mode ---------------------------------------------------------------------------


@dataclass
class ModeResult:
    mode: str
    region: str
    tasks: int
    submitted: int = 0
    all_running_s: float | None = None
    all_succeeded_s: float | None = None
    cost_nodes: float = 0.0
    cost_serverless: float = 0.0
    burst_tasks: int = 0
    back_to_nodes: int = 0
    # Tasks with more than one attempt (moved or retried).
    moved: int = 0
    not_succeeded: list[str] = field(default_factory=list)
    nodes_at_end: int = 0

    @property
    def cost_total(self) -> float:
        return self.cost_nodes + self.cost_serverless


def task_body(task_id: str, region: str, capacity: str, seconds: float) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": "burst",
        "business_unit": "bench",
        "kind": "batch",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "placement": {"region": region, "capacity": capacity},
        "job": {
            "image": "busybox",
            "command": ["true"],
            "resources": {"cpu": "1", "memory": "512Mi"},
            "annotations": {"kubesim.io/duration": f"{seconds:g}s"},
        },
    }


class Ledgers:
    """kubesim's node and serverless ledgers of one region, through its control API."""

    def __init__(self, control_url: str, region: str):
        self.base = f"{control_url}/sim/regions/{region}"

    async def read(self, http: httpx.AsyncClient) -> tuple[float, float, int]:
        pools = (await http.get(f"{self.base}/pools")).json()
        serverless = (await http.get(f"{self.base}/serverless")).json()
        nodes = sum(float(p.get("cost") or 0.0) for p in pools)
        current = sum(int(p.get("current") or 0) for p in pools)
        return nodes, float(serverless.get("cost") or 0.0), current


async def _statuses(api: httpx.AsyncClient, task_ids: list[str]) -> dict[str, str]:
    gate = asyncio.Semaphore(16)

    async def one(task_id: str) -> tuple[str, str]:
        async with gate:
            response = await api.get(f"/v1/tasks/{task_id}")
        return task_id, str(response.json().get("status")) if response.status_code == 200 else ""

    return dict(await asyncio.gather(*(one(t) for t in task_ids)))


async def run_wave(
    api: httpx.AsyncClient,
    control: httpx.AsyncClient,
    control_url: str,
    watcher: PodWatcher,
    *,
    mode: str,
    region: str,
    capacity: str,
    n: int,
    arrival_seconds: float,
    task_seconds: float,
    timeout: float,
) -> ModeResult:
    result = ModeResult(mode=mode, region=region, tasks=n)
    ledgers = Ledgers(control_url, region)
    run = uuid.uuid4().hex[:6]
    task_ids = [f"burst-{mode}-{run}-{i}" for i in range(n)]
    nodes_before, serverless_before, _ = await ledgers.read(control)
    started = time.time()
    gap = arrival_seconds / max(1, n)

    async def submit(i: int, task_id: str) -> bool:
        await asyncio.sleep(max(0.0, started + i * gap - time.time()))
        response = await api.post(
            "/v1/tasks", json=task_body(task_id, region, capacity, task_seconds)
        )
        return response.status_code == 201

    accepted = await asyncio.gather(*(submit(i, t) for i, t in enumerate(task_ids)))
    result.submitted = sum(accepted)
    wanted = {t for t, ok in zip(task_ids, accepted, strict=True) if ok}
    deadline = started + timeout
    done: set[str] = set()
    statuses: dict[str, str] = {}
    while time.time() < deadline:
        pods = watcher.of_tasks(wanted)
        running = [
            min(p.running_at for p in seen if p.running_at is not None)
            for seen in pods.values()
            if any(p.running_at is not None for p in seen)
        ]
        if result.all_running_s is None and len(running) == len(wanted):
            result.all_running_s = round(max(running) - started, 2)
        if result.all_running_s is not None or time.time() - started > task_seconds:
            # Once the wave can have finished, ask the API (a few times, not 300/s).
            statuses.update(await _statuses(api, sorted(wanted - done)))
            done |= {t for t, s in statuses.items() if s in TERMINAL}
            if done >= wanted:
                result.all_succeeded_s = round(time.time() - started, 2)
                break
        await asyncio.sleep(0.2 if result.all_running_s is None else 1.0)
    nodes_after, serverless_after, result.nodes_at_end = await ledgers.read(control)
    # The pod watch may trail the API by a moment under load: let it catch up before
    # reading when the last task first ran.
    catch_up = time.time() + 10.0
    while result.all_running_s is None and time.time() < catch_up:
        pods = watcher.of_tasks(wanted)
        firsts = [
            min(p.running_at for p in seen if p.running_at is not None)
            for seen in pods.values()
            if any(p.running_at is not None for p in seen)
        ]
        if len(firsts) == len(wanted):
            result.all_running_s = round(max(firsts) - started, 2)
            break
        await asyncio.sleep(0.2)
    result.cost_nodes = round(nodes_after - nodes_before, 4)
    result.cost_serverless = round(serverless_after - serverless_before, 4)
    result.not_succeeded = sorted(t for t in wanted if statuses.get(t) != "SUCCEEDED")
    result.not_succeeded += sorted(set(task_ids) - wanted)
    for seen in watcher.of_tasks(wanted).values():
        virtual = [p.node is not None and p.node.startswith("fargate-") for p in seen]
        if virtual and virtual[-1]:
            result.burst_tasks += 1
        if any(virtual) and not virtual[-1]:
            result.back_to_nodes += 1
        if len({p.attempt for p in seen}) > 1:
            result.moved += 1
    return result


async def after_wave(
    api: httpx.AsyncClient,
    control: httpx.AsyncClient,
    control_url: str,
    watcher: PodWatcher,
    plan: BurstPlan,
) -> dict[str, Any]:
    """A small follow-up wave under auto once the burst is over: where does it run?"""
    wave = await run_wave(
        api,
        control,
        control_url,
        watcher,
        mode="after",
        region=AUTO_REGION,
        capacity="auto",
        n=plan.after_tasks,
        arrival_seconds=1.0,
        task_seconds=2.0,
        timeout=plan.timeout,
    )
    return {
        "tasks": wave.tasks,
        "on_nodes": wave.tasks - wave.burst_tasks - len(wave.not_succeeded),
        "burst": wave.burst_tasks,
        "not_succeeded": wave.not_succeeded,
    }


async def measure_burst(
    api_url: str,
    headers: dict[str, str],
    control_url: str,
    kubeconfig: Path,
    plan: BurstPlan,
) -> dict[str, Any]:
    watcher = PodWatcher(str(kubeconfig), [NODES_REGION, AUTO_REGION]).start()
    limits = httpx.Limits(max_connections=32)
    try:
        async with (
            httpx.AsyncClient(
                base_url=api_url, headers=headers, timeout=30.0, limits=limits
            ) as api,
            httpx.AsyncClient(timeout=10.0) as control,
        ):
            common: dict[str, Any] = {
                "n": plan.tasks,
                "arrival_seconds": plan.arrival_seconds,
                "task_seconds": plan.task_seconds,
                "timeout": plan.timeout,
            }
            nodes = await run_wave(
                api, control, control_url, watcher,
                mode="nodes", region=NODES_REGION, capacity="nodes", **common,
            )  # fmt: skip
            auto = await run_wave(
                api, control, control_url, watcher,
                mode="auto", region=AUTO_REGION, capacity="auto", **common,
            )  # fmt: skip
            after = await after_wave(api, control, control_url, watcher, plan)
    finally:
        watcher.stop()
    return {
        "plan": asdict(plan),
        "nodes_only": {**asdict(nodes), "cost_total": round(nodes.cost_total, 4)},
        "auto": {**asdict(auto), "cost_total": round(auto.cost_total, 4)},
        "after": after,
    }
