"""Latency of single 1-second tasks on an otherwise idle system (issue #3's figures).

    .venv/bin/meridian up &      # or any running Meridian
    .venv/bin/python -m bench.single_task --api http://127.0.0.1:8000 --tasks 5

Submits one task at a time and reads back, from the task's own events, the time from
the submit to RUNNING and to SUCCEEDED (both stamped by the engine, not polled).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx

from bench.system import cli_headers


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def one(api: httpx.Client) -> tuple[float, float]:
    task_id = f"lat-{uuid.uuid4().hex[:10]}"
    body = {
        "id": task_id,
        "name": "latency",
        "business_unit": "bench",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox", "annotations": {"kubesim.io/duration": "1s"}},
    }
    api.post("/v1/tasks", json=body).raise_for_status()
    while api.get(f"/v1/tasks/{task_id}").json()["status"] not in ("SUCCEEDED", "FAILED"):
        time.sleep(0.05)
    task = api.get(f"/v1/tasks/{task_id}").json()
    events = api.get(f"/v1/tasks/{task_id}/events").json()["items"]
    created = _at(task["created_at"])
    running = next(_at(e["at"]) for e in events if e["status"] == "RUNNING")
    done = _at(task["finished_at"])
    return (running - created).total_seconds(), (done - created).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--token", help="bearer token (default: $MERIDIAN_TOKEN or admin.token)")
    parser.add_argument("--state-dir", type=Path, default=Path(".meridian"))
    args = parser.parse_args()
    headers = cli_headers(args.token, args.state_dir)
    with httpx.Client(base_url=args.api, timeout=30, headers=headers) as api:
        samples = [one(api) for _ in range(args.tasks)]
    to_running = [s[0] for s in samples]
    to_done = [s[1] for s in samples]
    print(
        f"submit → RUNNING   median {statistics.median(to_running):.2f} s, "
        f"max {max(to_running):.2f} s"
    )
    print(
        f"submit → SUCCEEDED median {statistics.median(to_done):.2f} s, "
        f"max {max(to_done):.2f} s  (the Job itself runs 1 s)"
    )


if __name__ == "__main__":
    main()
