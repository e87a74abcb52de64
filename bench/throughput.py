"""End-to-end: tasks with 1-second simulated Jobs submitted over REST until they finish.

Two shapes:
* saturation — N tasks, at most `concurrency` submissions in flight, as fast as the
  system takes them: tasks/s and the latencies under full load;
* fixed offered load — open loop at `rate` tasks/s for `seconds` (each submission at
  its own moment, whether or not earlier ones are done): the latency a user sees at a
  load the system can carry.

Clocks and resolution (all on this machine's wall clock):
* submit latency: the bench's POST round trip (time.perf_counter);
* submit → RUNNING: the task's RUNNING event time (`workflow.now()` of the workflow task
  that recorded it, ms resolution) minus the moment the POST was sent;
* Job completion → SUCCEEDED: the Job's completion as seen by the bench's own watch
  (`bench.jobwatch`, a few ms) to (a) the task's `finished_at` (the workflow-clock time
  of the SUCCEEDED transition, written by the same local activity that makes it
  visible — a lower bound by the few ms of that write) and, at fixed load, (b) the
  first time a poll of `GET /v1/tasks?status=SUCCEEDED` every 100 ms listed the task
  (an upper bound: poll period plus one request).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from bench.jobwatch import JobCompletionWatcher
from bench.stats import summary
from meridian.tasks.keys import task_key

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
# Rotate the data sources so placement spreads the work over the dev regions.
DATA_SOURCES = [
    {"provider": "aws", "region": "us-east-1"},
    {"provider": "azure", "region": "eastus"},
    {"provider": "gcp", "region": "europe-west1"},
    {"provider": "alibaba", "region": "cn-hangzhou"},
]


BUSINESS_UNIT = "bench"


def workflow_id(task_id: str) -> str:
    """What the Jobs' task-id label (read by the Job watcher) names a bench task by."""
    return task_key(BUSINESS_UNIT, task_id)


def task_body(task_id: str, i: int, duration: str = "1s") -> dict[str, Any]:
    return {
        "id": task_id,
        "name": "bench",
        "business_unit": BUSINESS_UNIT,
        "kind": "batch",
        "data_source": DATA_SOURCES[i % len(DATA_SOURCES)],
        "job": {
            "image": "busybox",
            "command": ["true"],
            "resources": {"cpu": "100m", "memory": "64Mi"},
            "annotations": {"kubesim.io/duration": duration},
        },
    }


@dataclass
class Sample:
    task_id: str
    sent: float = 0.0  # wall clock, POST sent
    submit_s: float | None = None  # POST round trip
    error: str | None = None
    status: str | None = None
    attempt: int = 0
    job_name: str | None = None
    running_at: float | None = None
    finished_at: float | None = None
    seen_succeeded: float | None = None  # first listed as SUCCEEDED by the poller


@dataclass
class RunResult:
    samples: list[Sample] = field(default_factory=list)
    first_sent: float = 0.0
    last_finished: float = 0.0

    @property
    def errors(self) -> list[str]:
        return [f"{s.task_id}: {s.error}" for s in self.samples if s.error]

    @property
    def lost(self) -> list[str]:
        return [s.task_id for s in self.samples if s.status != "SUCCEEDED"]


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


async def _submit(http: httpx.AsyncClient, sample: Sample, body: dict[str, Any]) -> None:
    sample.sent = time.time()
    start = time.perf_counter()
    try:
        response = await http.post("/v1/tasks", json=body)
        sample.submit_s = time.perf_counter() - start
        if response.status_code not in (200, 201):
            sample.error = f"submit {response.status_code}: {response.text[:200]}"
    except httpx.HTTPError as exc:
        sample.error = f"submit: {exc!r}"


async def _wait_finished(http: httpx.AsyncClient, samples: list[Sample], timeout: float) -> None:
    """Poll each unfinished task (cheap: one GET per task per round) until all are done."""
    deadline = time.monotonic() + timeout
    pending = [s for s in samples if s.error is None]
    sem = asyncio.Semaphore(8)

    async def check(sample: Sample) -> None:
        async with sem:
            response = await http.get(f"/v1/tasks/{sample.task_id}")
        if response.status_code == 200:
            task = response.json()
            sample.status = task["status"]
            sample.attempt = task["attempt"]
            sample.job_name = task["job_name"]
            sample.finished_at = _ts(task["finished_at"])

    while pending and time.monotonic() < deadline:
        # Probe the oldest few; only when they are done is a full round worth its cost.
        await asyncio.gather(*(check(s) for s in pending[:8]))
        if all(s.status in TERMINAL for s in pending[:8]):
            await asyncio.gather(*(check(s) for s in pending))
        pending = [s for s in pending if s.status not in TERMINAL]
        await asyncio.sleep(0.5)


async def _running_times(http: httpx.AsyncClient, samples: list[Sample]) -> None:
    sem = asyncio.Semaphore(8)

    async def one(sample: Sample) -> None:
        async with sem:
            response = await http.get(f"/v1/tasks/{sample.task_id}/events")
        if response.status_code != 200:
            return
        for event in response.json()["items"]:
            if event["status"] == "RUNNING" and sample.running_at is None:
                sample.running_at = _ts(event["at"])

    await asyncio.gather(*(one(s) for s in samples if s.error is None))


class SucceededPoller:
    """First time the API shows each task SUCCEEDED, polled every `period` s.

    One list of the newest SUCCEEDED tasks per round covers tasks that finish in
    submission order; a task whose Job the watch saw complete but the list has not
    shown (it finished late, behind newer ones) is then read on its own, at most
    `singles` per round so that the poll itself stays a light load on the API.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        watcher: JobCompletionWatcher,
        samples: list[Sample],
        period: float = 0.1,
        limit: int = 100,
        singles: int = 10,
    ):
        self.http, self.watcher, self.samples = http, watcher, samples
        self.period, self.limit, self.singles = period, limit, singles
        self.seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def _one(self, task_id: str) -> None:
        response = await self.http.get(f"/v1/tasks/{task_id}")
        if response.status_code == 200 and response.json()["status"] == "SUCCEEDED":
            self.seen.setdefault(task_id, time.time())

    def _overdue(self) -> list[str]:
        done = [
            (at, s.task_id)
            for s in self.samples
            if s.task_id not in self.seen
            and (at := self.watcher.completion_of_task(workflow_id(s.task_id))) is not None
        ]
        return [task_id for _, task_id in sorted(done)[: self.singles]]

    async def _loop(self) -> None:
        while True:
            try:
                response = await self.http.get(
                    "/v1/tasks", params={"status": "SUCCEEDED", "limit": self.limit}
                )
                now = time.time()
                for item in response.json()["items"]:
                    self.seen.setdefault(item["id"], now)
                await asyncio.gather(*(self._one(t) for t in self._overdue()))
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            await asyncio.sleep(self.period)

    def all_seen(self) -> bool:
        return all(s.task_id in self.seen for s in self.samples if s.error is None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def _collect(
    http: httpx.AsyncClient,
    result: RunResult,
    timeout: float,
    until_done: Callable[[], None] | None = None,
) -> RunResult:
    await _wait_finished(http, result.samples, timeout)
    if until_done is not None:
        until_done()
    await _running_times(http, result.samples)
    finished = [s.finished_at for s in result.samples if s.finished_at]
    result.first_sent = min(s.sent for s in result.samples)
    result.last_finished = max(finished) if finished else time.time()
    return result


async def saturate(
    api_url: str,
    n: int,
    concurrency: int,
    timeout: float,
    prefix: str = "bt",
    until_done: Callable[[], None] | None = None,
    *,
    headers: dict[str, str],
) -> RunResult:
    """`until_done` is called once every task has finished, before the read-back."""
    run = uuid.uuid4().hex[:6]
    result = RunResult(samples=[Sample(f"{prefix}-{run}-{i}") for i in range(n)])
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency + 16)
    async with httpx.AsyncClient(
        base_url=api_url, timeout=30, limits=limits, headers=headers
    ) as http:

        async def one(i: int, sample: Sample) -> None:
            async with sem:
                await _submit(http, sample, task_body(sample.task_id, i))

        await asyncio.gather(*(one(i, s) for i, s in enumerate(result.samples)))
        return await _collect(http, result, timeout, until_done)


async def offered_load(
    api_url: str,
    rate: float,
    seconds: float,
    timeout: float,
    watcher: JobCompletionWatcher,
    prefix: str = "bl",
    *,
    headers: dict[str, str],
) -> RunResult:
    run = uuid.uuid4().hex[:6]
    n = int(rate * seconds)
    result = RunResult(samples=[Sample(f"{prefix}-{run}-{i}") for i in range(n)])
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=headers) as http:
        poller = SucceededPoller(http, watcher, result.samples)
        poller.start()
        start = time.monotonic()

        async def one(i: int, sample: Sample) -> None:
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            await _submit(http, sample, task_body(sample.task_id, i))

        await asyncio.gather(*(one(i, s) for i, s in enumerate(result.samples)))
        # Let the last tasks finish under the poller's eye before collecting.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not poller.all_seen():
            await asyncio.sleep(0.2)
        await poller.stop()
        for sample in result.samples:
            sample.seen_succeeded = poller.seen.get(sample.task_id)
        return await _collect(http, result, timeout)


def latencies(result: RunResult, watcher: JobCompletionWatcher) -> dict[str, list[float]]:
    """Per-task seconds for each latency figure (lists feed the table and the chart)."""
    out: dict[str, list[float]] = {
        "submit": [],
        "submit_to_running": [],
        "completion_to_succeeded": [],
        "completion_to_succeeded_polled": [],
    }
    for s in result.samples:
        if s.submit_s is not None:
            out["submit"].append(s.submit_s)
        if s.running_at is not None:
            out["submit_to_running"].append(s.running_at - s.sent)
        done = watcher.completion(s.job_name)
        if s.status == "SUCCEEDED" and done is not None:
            if s.finished_at is not None:
                out["completion_to_succeeded"].append(s.finished_at - done)
            if s.seen_succeeded is not None:
                out["completion_to_succeeded_polled"].append(s.seen_succeeded - done)
    return out


def figures(result: RunResult, watcher: JobCompletionWatcher) -> dict[str, Any]:
    lat = latencies(result, watcher)
    n = len(result.samples)
    elapsed = max(1e-9, result.last_finished - result.first_sent)
    jobs = watcher.completed_jobs_per_task()
    ids = {workflow_id(s.task_id) for s in result.samples}
    return {
        "tasks": n,
        "elapsed_s": round(elapsed, 2),
        "tasks_per_s": round(n / elapsed, 2),
        "submit_ms": summary(lat["submit"], 1000),
        "submit_to_running_ms": summary(lat["submit_to_running"], 1000),
        "completion_to_succeeded_ms": summary(lat["completion_to_succeeded"], 1000),
        "completion_to_succeeded_polled_ms": summary(lat["completion_to_succeeded_polled"], 1000),
        "errors": len(result.errors),
        "lost": len(result.lost),
        "retried": sum(1 for s in result.samples if s.attempt > 1),
        # Work done twice (a retry after a Job already finished) is at-least-once, allowed;
        # two Jobs of one task alive at the same time is a duplicate.
        "ran_twice": sum(1 for t, c in jobs.items() if t in ids and c > 1),
        "duplicates": len(watcher.overlapping_tasks() & ids),
        "duplicate_ids": sorted(watcher.overlapping_tasks() & ids)[:10],
    }
