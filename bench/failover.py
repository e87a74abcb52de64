"""Failover timing: how long from a region outage until every task runs elsewhere.

Starts `n_tasks` tasks that prefer one region (a preference, not a pin, so they may
move), waits until all run there, takes the region down through kubesim's control API,
then polls the REST API until every task is RUNNING in another region. Per task, the
time from the outage to RUNNING-elsewhere is reported (median, worst). While it waits it
samples every reachable region's Jobs with the official kubernetes client: a task with
two live Jobs at any sample is a duplicate (must be 0).

    python -m bench.failover --api http://127.0.0.1:8000 --region aws-us-east-1

prints one JSON object (median_seconds, worst_seconds, duplicates, ...). The benchmark
suite imports `measure_failover`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from bench.system import cli_headers
from meridian.tasks.keys import task_key

MANAGED = "meridian.io/managed=true"


@dataclass
class FailoverResult:
    region: str
    n_tasks: int
    started_elsewhere: int
    kind: str
    moved: int
    median_seconds: float | None
    worst_seconds: float | None
    p90_seconds: float | None
    duplicates: int
    duplicate_samples: int
    to_regions: dict[str, int] = field(default_factory=dict)
    not_moved: list[str] = field(default_factory=list)
    setup_seconds: float = 0.0
    per_task_seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("per_task_seconds")
        return data


class JobSampler:
    """Counts tasks with two live Jobs across every reachable region, in a thread.

    Jobs run in their business unit's namespace, so the sample lists managed Jobs in
    every namespace (in the services' namespace alone it saw none and could not fail).
    """

    def __init__(
        self, kubeconfig: str, regions: list[str], task_ids: set[str], interval: float = 0.5
    ):
        self.task_ids = task_ids
        self.interval = interval
        self.apis = {
            r: k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=r
            )
            for r in regions
        }
        self.duplicated: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        # One sample lists the regions one after another (seconds apart under load): a
        # task whose old Job was deleted and new one created in between is seen in both
        # lists without ever having had two. Each live Job is kept with when its region
        # was listed, and `overlapping` counts only copies proven alive at once.
        seen: dict[str, list[tuple[float, float]]] = {}
        for api in self.apis.values():
            listed_at = time.time()
            try:
                jobs = k8s.BatchV1Api(api).list_job_for_all_namespaces(
                    label_selector=MANAGED, _request_timeout=(1.0, 10.0)
                )
            except Exception:  # noqa: BLE001 - the region in the outage cannot be read
                continue
            for job in jobs.items:
                labels = (job.metadata.labels if job.metadata else None) or {}
                task_id = labels.get("meridian.io/task-id")
                if task_id in self.task_ids and _is_live(job):
                    created = job.metadata.creation_timestamp if job.metadata else None
                    born = created.timestamp() if created is not None else 0.0
                    seen.setdefault(task_id, []).append((listed_at, born))
        self.duplicated |= {t for t, copies in seen.items() if overlapping(copies)}
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for api in self.apis.values():
            api.close()


# A creationTimestamp has whole seconds: a Job stamped S was created in [S, S + 1).
STAMP_RESOLUTION_S = 1.0


def overlapping(copies: list[tuple[float, float]]) -> bool:
    """Whether live Jobs of one task, each as (when its region was listed, when it was
    created), were two at one instant: both in one listing, or one Job seen alive at a
    listing while another, seen at a later one, had certainly been created by then. A
    Job created after the earlier listing (or within the second its stamp leaves open)
    may have replaced the one seen there, deleted in between."""
    ordered = sorted(copies)
    return any(
        later_listed == listed_at or later_born + STAMP_RESOLUTION_S <= listed_at
        for i, (listed_at, _) in enumerate(ordered)
        for later_listed, later_born in ordered[i + 1 :]
    )


def _is_live(job: Any) -> bool:
    if job.metadata.deletion_timestamp is not None:
        return False
    for cond in (job.status.conditions or []) if job.status else []:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return False
    return True


def _body(task_id: str, region: str, kind: str, business_unit: str) -> dict[str, Any]:
    provider, _, location = region.partition("-")
    job: dict[str, Any] = {
        "image": "busybox",
        "command": ["sh", "-c", "serve"],
        "resources": {"cpu": "100m", "memory": "64Mi"},
        # A batch task long enough to outlive the measurement.
        "annotations": {} if kind == "resident" else {"kubesim.io/duration": "1h"},
    }
    return {
        "id": task_id,
        "name": "failover-bench",
        "business_unit": business_unit,
        "kind": kind,
        "data_source": {"provider": provider, "region": location},
        "job": job,
        "placement": {"preferences": [[region]]},
    }


def _list(http: httpx.Client, business_unit: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"business_unit": business_unit, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = http.get("/v1/tasks", params=params).json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def measure_failover(
    api_url: str,
    control_url: str,
    region: str,
    n_tasks: int = 100,
    *,
    kubeconfig: str | Path | None = None,
    kind: str = "resident",
    start_timeout: float = 120.0,
    move_timeout: float = 120.0,
    restore: bool = True,
    cleanup: bool = True,
    headers: dict[str, str],
) -> FailoverResult:
    """Run one outage of `region` under `n_tasks` running tasks; see the module doc.

    `kubeconfig` (one context per region) enables the duplicate audit; without it
    `duplicates` is reported as -1. With `restore` the region comes back afterwards,
    with `cleanup` the tasks are stopped.
    """
    run = uuid.uuid4().hex[:6]
    business_unit = f"failover-bench-{run}"
    ids = [f"fo-{run}-{i:04d}" for i in range(n_tasks)]
    sampler: JobSampler | None = None
    with (
        httpx.Client(base_url=api_url, timeout=30.0, headers=headers) as http,
        httpx.Client(base_url=control_url, timeout=10.0) as control,
    ):
        regions = [r["name"] for r in http.get("/v1/regions").json()["items"]]
        if kubeconfig is not None:
            # The Jobs' task-id label is the task's key (its workflow id), not its id.
            keys = {task_key(business_unit, task_id) for task_id in ids}
            sampler = JobSampler(str(kubeconfig), regions, keys)
        started = time.monotonic()
        for task_id in ids:
            response = http.post("/v1/tasks", json=_body(task_id, region, kind, business_unit))
            response.raise_for_status()
        deadline = time.monotonic() + start_timeout
        while True:
            tasks = _list(http, business_unit)
            running = [t for t in tasks if t["status"] == "RUNNING"]
            if len(running) == n_tasks:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {len(running)} of {n_tasks} tasks RUNNING after {start_timeout:.0f}s"
                )
            time.sleep(0.5)
        setup_seconds = time.monotonic() - started
        # Under a burst of submissions a create can time out and the task start elsewhere
        # (correctly); only the tasks that run in the region at the outage are measured.
        measured = {t["id"] for t in running if t["region"] == region}
        if sampler is not None:
            sampler.sample()
            sampler.start()

        control.post(f"/sim/regions/{region}/outage").raise_for_status()
        outage_at = time.monotonic()
        moved: dict[str, float] = {}
        to_regions: dict[str, int] = {}
        try:
            while len(moved) < len(measured) and time.monotonic() - outage_at < move_timeout:
                now = time.monotonic()
                for task in _list(http, business_unit):
                    if (
                        task["id"] in measured
                        and task["id"] not in moved
                        and task["status"] == "RUNNING"
                        and task["region"] not in (None, region)
                    ):
                        moved[task["id"]] = now - outage_at
                        to_regions[task["region"]] = to_regions.get(task["region"], 0) + 1
                time.sleep(0.2)
        finally:
            if sampler is not None:
                sampler.stop()
            if restore:
                control.delete(f"/sim/regions/{region}/outage")
            if cleanup:
                for task_id in ids:
                    http.post(f"/v1/tasks/{task_id}/stop")

    times = sorted(moved.values())
    return FailoverResult(
        region=region,
        n_tasks=n_tasks,
        started_elsewhere=n_tasks - len(measured),
        kind=kind,
        moved=len(moved),
        median_seconds=round(statistics.median(times), 2) if times else None,
        worst_seconds=round(times[-1], 2) if times else None,
        p90_seconds=round(times[int(0.9 * (len(times) - 1))], 2) if times else None,
        duplicates=len(sampler.duplicated) if sampler is not None else -1,
        duplicate_samples=sampler.samples if sampler is not None else 0,
        to_regions=to_regions,
        not_moved=sorted(measured - set(moved)),
        setup_seconds=round(setup_seconds, 1),
        per_task_seconds={k: round(v, 2) for k, v in moved.items()},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.failover",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="Meridian REST API")
    parser.add_argument(
        "--state-dir",
        default=".meridian",
        type=Path,
        help="state dir of `meridian up` (kubeconfig and kubesim.json)",
    )
    parser.add_argument("--control", help="kubesim control URL (default: from kubesim.json)")
    parser.add_argument("--kubeconfig", help="default: <state dir>/kubeconfig")
    parser.add_argument("--region", default="aws-us-east-1")
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--kind", choices=["resident", "batch"], default="resident")
    parser.add_argument("--no-restore", action="store_true", help="leave the region down")
    parser.add_argument("--token", help="bearer token (default: $MERIDIAN_TOKEN or admin.token)")
    args = parser.parse_args(argv)
    control = args.control
    if control is None:
        info = args.state_dir / "kubesim.json"
        control = json.loads(info.read_text())["control_url"]
    kubeconfig = args.kubeconfig or str(args.state_dir / "kubeconfig")
    result = measure_failover(
        args.api,
        control,
        args.region,
        args.tasks,
        kubeconfig=kubeconfig,
        kind=args.kind,
        restore=not args.no_restore,
        headers=cli_headers(args.token, args.state_dir),
    )
    print(json.dumps(result.summary(), indent=2))  # noqa: T201 - the CLI's output
    complete = result.moved == result.n_tasks - result.started_elsewhere
    return 0 if complete and result.duplicates == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
