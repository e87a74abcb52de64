"""Load run: N short Jobs across every region with the official client.

``python -m kubesim.loadtest --regions infra/regions/fleet-15.yaml --jobs 10000``
starts kubesim, grows each region's first pool to ``--nodes-per-region`` nodes, creates
the Jobs with bounded concurrency (threads, one ApiClient per region), waits until all
have completed and prints the figures, including kubesim's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client, config

from kubesim.control import KubesimControl
from kubesim.process import KubesimProcess, start_kubesim


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            self.stopped.wait(self.interval)


def job_manifest(name: str, duration: str, cpu: str | None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "task",
        "image": "meridian/task:1",
        "env": [{"name": "MERIDIAN_ATTEMPT", "value": "1"}],
    }
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu, "memory": "64Mi"}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"meridian.io/load": "1"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "labels": {"meridian.io/load": "1"},
                    "annotations": {"kubesim.io/duration": duration},
                },
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
        },
    }


def count_finished(api: client.BatchV1Api) -> int:
    """Completed Jobs, read with raw JSON pages (cheap on the client side)."""
    done = 0
    token = None
    while True:
        response = api.list_namespaced_job(
            "default",
            label_selector="meridian.io/load=1",
            limit=2000,
            _continue=token,
            _preload_content=False,
        )
        page = json.loads(response.data)  # type: ignore[attr-defined]
        for job in page["items"]:
            for cond in job.get("status", {}).get("conditions") or []:
                if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
                    done += 1
                    break
        token = page["metadata"].get("continue")
        if not token:
            return done


def run(args: argparse.Namespace) -> dict[str, Any]:
    state_dir = Path(args.state_dir or tempfile.mkdtemp(prefix="kubesim-load-"))
    started = time.monotonic()
    sim: KubesimProcess = start_kubesim(
        args.regions, state_dir, extra_args=["--watch-window", "1000"]
    )
    startup = time.monotonic() - started
    sampler = RssSampler(sim.pid)
    sampler.start()
    proc = psutil.Process(sim.pid)
    try:
        control = KubesimControl(sim.control_url)
        if args.nodes_per_region:
            for region in sim.regions:
                pool = control.pools(region)[0]
                control.scale_pool(
                    region, pool["name"], args.nodes_per_region, provisioning_delay_seconds=0
                )
        nodes = sum(control.region(r)["nodes"] for r in sim.regions)
        apis: dict[str, client.BatchV1Api] = {}
        for region in sim.regions:
            cfg = client.Configuration()
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=sim.kubeconfig, context=region, client_configuration=cfg
            )
            cfg.connection_pool_maxsize = args.concurrency
            apis[region] = client.BatchV1Api(client.ApiClient(cfg))
        regions = sim.regions
        cpu_before = proc.cpu_times()
        t0 = time.monotonic()
        errors: list[str] = []

        def create(i: int) -> None:
            region = regions[i % len(regions)]
            body = job_manifest(f"load-{i:06d}", args.duration, args.cpu)
            try:
                apis[region].create_namespaced_job("default", body, _preload_content=False)  # type: ignore[arg-type]
            except Exception as exc:  # counted and reported, the run goes on
                errors.append(f"{region}: {exc}")

        with ThreadPoolExecutor(args.concurrency) as executor:
            list(executor.map(create, range(args.jobs)))
        created_s = time.monotonic() - t0
        finished = 0
        while time.monotonic() - t0 < args.timeout:
            finished = sum(count_finished(api) for api in apis.values())
            if finished >= args.jobs - len(errors):
                break
            time.sleep(args.poll)
        all_done_s = time.monotonic() - t0
        cpu_after = proc.cpu_times()
        requests = sum(control.stats(r)["requests_total"] for r in regions)
        control.close()
        return {
            "regions": len(regions),
            "nodes": nodes,
            "jobs": args.jobs,
            "job_duration": args.duration,
            "concurrency": args.concurrency,
            "startup_s": round(startup, 2),
            "create_s": round(created_s, 1),
            "create_per_s": round(args.jobs / created_s, 1),
            "all_complete_s": round(all_done_s, 1),
            "completed": finished,
            "create_errors": len(errors),
            "kubesim_peak_rss_mib": round(sampler.peak / 2**20, 1),
            "kubesim_cpu_s": round(
                (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system), 1
            ),
            "api_requests": requests,
        }
    finally:
        sampler.stopped.set()
        sim.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubesim.loadtest", description=__doc__)
    parser.add_argument("--regions", required=True)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--duration", default="1s", help="kubesim.io/duration of every Job")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--nodes-per-region",
        type=int,
        default=100,
        help="grow each region's first pool to this many nodes (0: as is)",
    )
    parser.add_argument("--cpu", default="100m", help="CPU request per pod ('' for none)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--state-dir", default=None)
    args = parser.parse_args(argv)
    result = run(args)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key.ljust(width)}  {value}")  # noqa: T201 - a CLI report
    return 0 if result["completed"] >= args.jobs - result["create_errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
