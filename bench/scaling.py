"""Resource scheduling on kubesim with default settings: burst-to-running time and
scale actions under flapping load.

    .venv/bin/python -m bench.scaling                 # 10-minute flapping run
    .venv/bin/python -m bench.scaling --minutes 3     # shorter

Starts the embedded default (`meridian up`, infra/regions/dev.yaml: 3 nodes of 8 CPU per
region, pools of min 1 / max 8, 5 s node provisioning) with default ScalingSettings
(10 s tick, high 0.80 / low 0.40, 60 s scale-up cooldown, 600 s scale-down window, 300 s
scale-down cooldown), then:

1. Burst: `--burst` tasks of 6 CPU pinned to aws-us-east-1 at once. Three fit; the rest
   need new nodes. Measured: from the first submit to every task RUNNING.
2. Flapping: in azure-eastus, every `--period` seconds the load switches between three
   7-CPU tasks (water ~0.88, above the high mark) and nothing (water 0, below the low
   mark). Counted: applied scale actions (scale_up / scale_down) over `--minutes`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import httpx

from bench.system import REGIONS_DIR, System

BURST_REGION = "aws-us-east-1"
FLAP_REGION = "azure-eastus"


def task(task_id: str, region: str, cpu: str, seconds: float) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": "scaling-bench",
        "business_unit": "bench",
        "kind": "batch",
        "data_source": {"provider": region.split("-", 1)[0], "region": region.split("-", 1)[1]},
        "job": {
            "image": "busybox",
            "command": ["true"],
            "resources": {"cpu": cpu, "memory": "4Gi"},
            "annotations": {"kubesim.io/duration": f"{seconds:g}s"},
        },
        "placement": {"region": region},
    }


def wait_control_loop(api: httpx.Client, region: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = api.get(f"/v1/regions/{region}").json()
        if detail.get("scaling_observed_at"):
            return
        time.sleep(0.5)
    raise TimeoutError(f"no control-loop tick in {region} after {timeout:.0f}s")


def pool(control: httpx.Client, region: str) -> dict[str, Any]:
    return dict(control.get(f"/sim/regions/{region}/pools").json()[0])


def scale_actions(api: httpx.Client, region: str, since: str | None = None) -> list[dict[str, Any]]:
    items = api.get(f"/v1/regions/{region}/scaling", params={"limit": 1000}).json()["items"]
    return sorted(
        (
            d
            for d in items
            if d["kind"] in ("scale_up", "scale_down")
            and d["applied"]
            and (since is None or d["at"] >= since)
        ),
        key=lambda d: d["at"],
    )


def burst(api: httpx.Client, control: httpx.Client, count: int) -> dict[str, Any]:
    before = pool(control, BURST_REGION)
    ids = [f"burst-{i}" for i in range(count)]
    started = time.monotonic()
    for task_id in ids:
        api.post("/v1/tasks", json=task(task_id, BURST_REGION, "6", 900)).raise_for_status()
    running: dict[str, float] = {}
    while len(running) < count and time.monotonic() - started < 600:
        for task_id in ids:
            if task_id not in running and api.get(f"/v1/tasks/{task_id}").json()["status"] in (
                "RUNNING",
                "SUCCEEDED",
            ):
                running[task_id] = time.monotonic() - started
        time.sleep(0.25)
    after = pool(control, BURST_REGION)
    for task_id in ids:
        api.post(f"/v1/tasks/{task_id}/stop")
    return {
        "tasks": count,
        "all_running": len(running) == count,
        "seconds_to_all_running": round(max(running.values()), 1) if running else None,
        "first_three_running_s": sorted(round(v, 1) for v in running.values())[:3],
        "pool_desired_before": before["desired"],
        "pool_desired_after": after["desired"],
        "scale_actions": [
            {"kind": d["kind"], "reason": d["reason"]} for d in scale_actions(api, BURST_REGION)
        ],
    }


def flapping(
    api: httpx.Client, control: httpx.Client, minutes: float, period: float
) -> dict[str, Any]:
    since = api.get(f"/v1/regions/{FLAP_REGION}").json()["scaling_observed_at"]
    started = time.monotonic()
    end = started + minutes * 60
    phases = 0
    while time.monotonic() < end:
        # Load on: three 7-CPU tasks that end on their own after half a period.
        for i in range(3):
            body = task(f"flap-{phases}-{i}", FLAP_REGION, "7", period / 2)
            api.post("/v1/tasks", json=body).raise_for_status()
        phases += 1
        time.sleep(max(0.0, min(period, end - time.monotonic())))
    actions = scale_actions(api, FLAP_REGION, since)
    return {
        "minutes": minutes,
        "period_seconds": period,
        "load_phases": phases,
        "scale_actions": len(actions),
        "actions": [{"at": d["at"], "kind": d["kind"], "reason": d["reason"]} for d in actions],
        "pool_desired_end": pool(control, FLAP_REGION)["desired"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="flapping run length")
    parser.add_argument("--period", type=float, default=60.0, help="seconds per on+off cycle")
    parser.add_argument("--burst", type=int, default=8, help="tasks in the burst (max 8)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    system = System(regions_file=REGIONS_DIR / "dev.yaml")
    system.start()
    try:
        with (
            httpx.Client(base_url=system.api_url, timeout=30.0, headers=system.api_headers) as api,
            httpx.Client(base_url=system.control_url, timeout=10.0) as control,
        ):
            wait_control_loop(api, BURST_REGION)
            wait_control_loop(api, FLAP_REGION)
            results = {
                "burst": burst(api, control, args.burst),
                "flapping": flapping(api, control, args.minutes, args.period),
            }
    finally:
        system.stop()
        system.cleanup()
    b, f = results["burst"], results["flapping"]
    print(f"burst of {b['tasks']} x 6 CPU in {BURST_REGION} (3 fit)")
    print(f"  time to every task RUNNING : {b['seconds_to_all_running']} s")
    print(f"  pool desired               : {b['pool_desired_before']} -> {b['pool_desired_after']}")
    print(f"  scale actions              : {len(b['scale_actions'])}")
    print(f"flapping load in {FLAP_REGION}, {f['minutes']:g} min, period {f['period_seconds']:g} s")
    print(f"  load phases                : {f['load_phases']}")
    print(f"  applied scale actions      : {f['scale_actions']}")
    for action in f["actions"]:
        print(f"    {action['at']} {action['kind']}: {action['reason']}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
