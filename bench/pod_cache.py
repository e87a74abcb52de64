"""The health probe's CPU with and without the pod cache (issue 16).

`python -m bench.pod_cache [--pods 2000] [--probes 50]` starts kubesim with one region,
runs `--pods` long pods there (Jobs of the engine's shape: managed labels, requests),
then times `--probes` probes of that region in this process, each as the unit worker's
does it (`RegionListings.fetch`, then `compute_load`): the full list of nodes and live
pods, then nodes listed and pods read from a synced `PodCache`. CPU is
time.process_time() of this process (the cache's reader thread included; nothing
changes during the run, so it idles, as it does between a region's pod changes), and
kubesim's own CPU beside it. Also the memory the cached pods take, whole and slimmed.
Nothing is asserted: the figures are printed, with the ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import psutil
import yaml
from kubernetes import client

from kubesim.process import start_kubesim
from meridian.kube.clients import ClusterClients
from meridian.kube.gateway import LIVE_PODS_SELECTOR, JobGateway
from meridian.regions.listing import RegionListings
from meridian.regions.load import compute_load
from meridian.regions.pod_cache import PodCache, slim_pod

REGION = "aws-us-east-1"
NAMESPACE = "meridian-bench"
PODS_PER_JOB = 250
# kubesim's nodes take 110 pods each: room for every pod, so that all of them run.
PODS_PER_NODE = 100


def _regions_file(pods: int, directory: Path) -> Path:
    nodes = max(1, -(-pods // PODS_PER_NODE))
    spec = {
        "regions": [
            {
                "name": REGION,
                "provider": "aws",
                "location": "us-east-1",
                "node_pools": [{"name": "general", "count": nodes, "cpu": "64", "memory": "256Gi"}],
            }
        ]
    }
    path = directory / "regions.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _job(index: int, pods: int) -> dict[str, Any]:
    labels = {
        "meridian.io/managed": "true",
        "meridian.io/task-id": f"bench-{index}",
        "meridian.io/attempt": "1",
    }
    container = {
        "name": "main",
        "image": "busybox:1.36",
        "env": [{"name": "MERIDIAN_TASK_ID", "value": f"bench-{index}"}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"bench-{index}", "labels": labels},
        "spec": {
            "parallelism": pods,
            "completions": pods,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels, "annotations": {"kubesim.io/duration": "2h"}},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
        },
    }


def _run_pods(gateway: JobGateway, pods: int, timeout: float = 300.0) -> None:
    core, batch = gateway.clients.core(REGION), gateway.clients.batch(REGION)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    for index, start in enumerate(range(0, pods, PODS_PER_JOB)):
        body: Any = _job(index, min(PODS_PER_JOB, pods - start))
        batch.create_namespaced_job(NAMESPACE, body)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = gateway.get_json(
            core.list_namespaced_pod, NAMESPACE, field_selector="status.phase=Running"
        )
        if len(running["items"]) >= pods:
            return
        time.sleep(1.0)
    raise TimeoutError(f"{pods} pods not running after {timeout:.0f}s")


def _probes(listings: RegionListings, probes: int) -> dict[str, float]:
    for _ in range(3):  # warm: connections, imports
        listings.fetch(REGION, within=10.0)
    cpu, wall = time.process_time(), time.monotonic()
    for _ in range(probes):
        listing = listings.fetch(REGION, within=10.0)
        compute_load(listing.nodes, listing.pods, now=time.time())
    return {
        "cpu_seconds": time.process_time() - cpu,
        "wall_seconds": time.monotonic() - wall,
    }


def _memory(gateway: JobGateway) -> dict[str, float]:
    """Bytes per pod held in Python objects: the pods as listed, and as the cache keeps
    them."""
    data = gateway.get_json(
        gateway.clients.core(REGION).list_pod_for_all_namespaces, field_selector=LIVE_PODS_SELECTOR
    )
    text = json.dumps(data["items"])
    count = len(data["items"])
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    whole = json.loads(text)
    whole_bytes = tracemalloc.get_traced_memory()[0] - before
    slim = [slim_pod(p) for p in whole]
    del whole
    slim_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del slim
    return {
        "pods": count,
        "json_bytes_per_pod": len(text) / count,
        "whole_bytes_per_pod": whole_bytes / count,
        "slim_bytes_per_pod": slim_bytes / count,
    }


def measure(pods: int, probes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-podcache-") as tmp:
        sim = start_kubesim(_regions_file(pods, Path(tmp)), Path(tmp) / "kubesim")
        clients = ClusterClients(sim.kubeconfig)
        cache = PodCache(JobGateway(clients))
        try:
            gateway = JobGateway(clients)
            _run_pods(gateway, pods)
            server = psutil.Process(sim.process.pid)

            def server_cpu() -> float:
                times = server.cpu_times()
                return float(times.user + times.system)

            spent = server_cpu()
            full = _probes(RegionListings(gateway), probes)
            full["kubesim_cpu_seconds"] = server_cpu() - spent
            cache.start([REGION])
            deadline = time.monotonic() + 60
            while not (cache.synced(REGION) and len(cache.pods(REGION)) >= pods):
                if time.monotonic() > deadline:
                    raise TimeoutError("the pod cache did not sync")
                time.sleep(0.2)
            listings = RegionListings(gateway, pod_cache=cache)
            spent = server_cpu()
            cached = _probes(listings, probes)
            cached["kubesim_cpu_seconds"] = server_cpu() - spent
            assert listings.uncached == 0, "a probe fell back to the full list"
            memory = _memory(gateway)
        finally:
            cache.stop()
            clients.close()
            sim.stop()
    return {
        "pods": pods,
        "probes": probes,
        "full_list": full,
        "pod_cache": cached,
        "cpu_ratio": full["cpu_seconds"] / max(cached["cpu_seconds"], 1e-9),
        "memory": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--probes", type=int, default=50)
    args = parser.parse_args()
    figures = measure(args.pods, args.probes)
    print(json.dumps(figures, indent=2))
    print(
        f"{args.probes} probes of a region with {args.pods} live pods: "
        f"{figures['full_list']['cpu_seconds']:.2f} s CPU listing every pod, "
        f"{figures['pod_cache']['cpu_seconds']:.2f} s with the pod cache "
        f"({figures['cpu_ratio']:.0f}x less)"
    )


if __name__ == "__main__":
    main()
