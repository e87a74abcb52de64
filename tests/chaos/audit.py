"""The end-of-scenario audit every chaos test runs, and the small readers it is built on.

The audit is the contract of the failover issue, checked from the outside:

* every task reached the terminal state the scenario expects, or is RUNNING in a region
  that is up, with its current attempt's Job live there;
* no task has two live Jobs (not finished, not being deleted) across all regions, and a
  finished task has none — read with the official kubernetes client, by label;
* the database (GET /v1/tasks), the API (GET /v1/tasks/{id}) and Temporal (workflow
  describe: execution status and the MeridianStatus / MeridianRegion search attributes)
  agree.

Every check polls to a deadline: the three views converge asynchronously (the search
attributes are upserted after the database write, a stale Job waits for the job sweep),
so an audit that read once would be flaky, and one that slept would hide bugs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError

from meridian.tasks.keys import task_key

# Where the chaos tasks run: their business unit's namespace (the harness's unit "ads").
# The audit itself looks in every namespace, so a Job that landed anywhere else is seen.
NAMESPACE = "meridian-ads"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
STATUS_KEY = SearchAttributeKey.for_keyword("MeridianStatus")
REGION_KEY = SearchAttributeKey.for_keyword("MeridianRegion")
# What a closed workflow's execution status must be for each terminal task status.
CLOSED_AS = {
    "SUCCEEDED": {WorkflowExecutionStatus.COMPLETED},
    "FAILED": {WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.FAILED},
    "STOPPED": {WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CANCELED},
}


@dataclass(frozen=True)
class LiveJob:
    region: str
    name: str
    attempt: int


class Clusters:
    """One ApiClient per region from the kubeconfig, as the engine itself connects."""

    def __init__(self, kubeconfig: str | Path, regions: Iterable[str]):
        self.kubeconfig = str(kubeconfig)
        self.regions = list(regions)
        self._apis: dict[str, k8s.ApiClient] = {}

    def _api(self, region: str) -> k8s.ApiClient:
        if region not in self._apis:
            self._apis[region] = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=self.kubeconfig, context=region
            )
        return self._apis[region]

    def batch(self, region: str) -> k8s.BatchV1Api:
        return k8s.BatchV1Api(self._api(region))

    def core(self, region: str) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self._api(region))

    def close(self) -> None:
        for api in self._apis.values():
            api.close()  # type: ignore[no-untyped-call]
        self._apis.clear()

    def jobs(self, region: str, selector: str = "meridian.io/managed=true") -> list[Any]:
        # Short timeouts: a region in an outage must not stall the audit for a minute.
        result = self.batch(region).list_job_for_all_namespaces(
            label_selector=selector, _request_timeout=(2.0, 10.0)
        )
        return list(result.items)

    def live_jobs(
        self, regions: Iterable[str] | None = None, *, skip_unreachable: bool = False
    ) -> dict[str, list[LiveJob]]:
        """task id → its live Jobs in every (reachable) region."""
        found: dict[str, list[LiveJob]] = {}
        for region in regions if regions is not None else self.regions:
            try:
                jobs = self.jobs(region)
            except Exception:
                if skip_unreachable:
                    continue
                raise
            for job in jobs:
                if not is_live(job):
                    continue
                labels = job.metadata.labels or {}
                found.setdefault(labels["meridian.io/task-id"], []).append(
                    LiveJob(region, job.metadata.name, int(labels["meridian.io/attempt"]))
                )
        return found

    def pods_of(self, region: str, job_name: str) -> list[Any]:
        return list(
            self.core(region)
            .list_pod_for_all_namespaces(
                label_selector=f"job-name={job_name}", _request_timeout=(2.0, 10.0)
            )
            .items
        )


# Every chaos task is task_body's business unit's (tests/integration/harness.py).
CHAOS_UNIT = "ads"


def key_of(task_id: str) -> str:
    """The workflow id of a chaos task: what Temporal and its Jobs' task-id label know it
    by (the tests name tasks by their id, as the API does)."""
    return task_key(CHAOS_UNIT, task_id)


def is_live(job: Any) -> bool:
    if job.metadata.deletion_timestamp is not None:
        return False
    for cond in (job.status.conditions or []) if job.status else []:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return False
    return True


def duplicates(live: dict[str, list[LiveJob]]) -> dict[str, list[LiveJob]]:
    return {task_id: jobs for task_id, jobs in live.items() if len(jobs) > 1}


class DuplicateWatch:
    """Samples every region's Jobs in the background while a scenario runs.

    The final audit sees the end state only; two live copies that overlapped for a few
    seconds during a move would be gone by then. Unreachable regions are skipped.

    A Job left in a region that was cut off cannot be deleted until the region returns:
    its cluster keeps running it (no control plane can stop that), so for the moment
    between the region's return and the job sweep there are two live Jobs. That is the
    design's fencing, not a duplicate, when the older Job is a recorded orphan of a
    stale attempt: such pairs go to `fenced` (with how long they lasted), everything
    else to `seen`, which must stay empty.
    """

    def __init__(
        self,
        clusters: Clusters,
        task_ids: Iterable[str],
        *,
        orphans: Callable[[], set[tuple[str, str]]] | None = None,
        interval: float = 0.5,
    ):
        self.clusters = clusters
        self.task_ids = {key_of(t) for t in task_ids}  # as the Jobs' labels name them
        self.orphans = orphans or (lambda: set())
        self.interval = interval
        self.samples = 0
        self.seen: dict[str, list[LiveJob]] = {}
        self.fenced: dict[str, list[float]] = {}  # task id -> [first seen, last seen]
        self._task: asyncio.Task[None] | None = None

    def _sample(self) -> None:
        live = self.clusters.live_jobs(skip_unreachable=True)
        self.samples += 1
        dupes = {t: jobs for t, jobs in duplicates(live).items() if t in self.task_ids}
        if not dupes:
            return
        orphans = self.orphans()
        now = time.monotonic()
        for task_id, jobs in dupes.items():
            newest = max(j.attempt for j in jobs)
            older = [j for j in jobs if j.attempt != newest]
            if len(older) == len(jobs) - 1 and all((j.region, j.name) in orphans for j in older):
                self.fenced.setdefault(task_id, [now, now])[1] = now
            else:
                self.seen.setdefault(task_id, jobs)

    def longest_fenced(self) -> float:
        return max((last - first for first, last in self.fenced.values()), default=0.0)

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self._sample)
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> DuplicateWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


def orphans_of(store: Any) -> Callable[[], set[tuple[str, str]]]:
    """Every Job the engine recorded as orphaned (deleted or not), from the database."""

    def read() -> set[tuple[str, str]]:
        return {(o.region, o.job_name) for o in store.list_orphans(include_deleted=True)}

    return read


@dataclass
class AuditReport:
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.tasks.values():
            counts[task["status"]] = counts.get(task["status"], 0) + 1
        return counts


class Auditor:
    def __init__(
        self,
        api_url: str,
        temporal: Client,
        clusters: Clusters,
        *,
        headers: dict[str, str],
        db_reader: Any | None = None,
    ):
        self.api_url = api_url.rstrip("/")
        self.headers = headers
        self.temporal = temporal
        self.clusters = clusters
        # A Store, when the test has the database at hand: the third view besides the
        # API's single-task and list reads.
        self.db_reader = db_reader

    async def _tasks_from_list(self, http: httpx.AsyncClient, ids: set[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/v1/tasks", params=params)).json()
            for item in page["items"]:
                if item["id"] in ids:
                    found[item["id"]] = item
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    async def _workflow_view(self, task_id: str) -> tuple[WorkflowExecutionStatus | None, str, str]:
        desc = await self.temporal.get_workflow_handle(task_id).describe()
        attrs = desc.typed_search_attributes
        return desc.status, attrs.get(STATUS_KEY) or "", attrs.get(REGION_KEY) or ""

    async def _check_once(
        self,
        expected: dict[str, set[str]],
        http: httpx.AsyncClient,
        bad_regions: set[str],
    ) -> AuditReport:
        report = AuditReport()
        ids = set(expected)
        listed = await self._tasks_from_list(http, ids)
        regions = {r["name"]: r for r in (await http.get("/v1/regions")).json()["items"]}
        live = await asyncio.to_thread(self.clusters.live_jobs, skip_unreachable=True)
        for task_id, allowed in sorted(expected.items()):
            api_task = (await http.get(f"/v1/tasks/{task_id}")).json()
            report.tasks[task_id] = api_task
            status = api_task["status"]
            where = f"{task_id} ({status}, attempt {api_task['attempt']}, {api_task['region']})"
            if status not in allowed:
                report.problems.append(f"{where}: expected one of {sorted(allowed)}")
            row = listed.get(task_id)
            if row is None:
                report.problems.append(f"{where}: missing from GET /v1/tasks")
            elif (row["status"], row["attempt"], row["region"]) != (
                status,
                api_task["attempt"],
                api_task["region"],
            ):
                report.problems.append(f"{where}: GET /v1/tasks says {row['status']}")
            if self.db_reader is not None:
                record = await asyncio.to_thread(self.db_reader.get_task, api_task["workflow_id"])
                if record is None:
                    report.problems.append(f"{where}: not in the database")
                elif record.status.value != status or record.attempt != api_task["attempt"]:
                    report.problems.append(f"{where}: database says {record.status.value}")
            try:
                wf_status, sa_status, sa_region = await self._workflow_view(api_task["workflow_id"])
            except RPCError as exc:
                report.problems.append(f"{where}: Temporal describe failed: {exc}")
                continue
            if sa_status != status:
                report.problems.append(f"{where}: MeridianStatus is {sa_status!r}")
            if api_task["region"] and sa_region != api_task["region"]:
                report.problems.append(f"{where}: MeridianRegion is {sa_region!r}")
            jobs = live.get(api_task["workflow_id"], [])
            if status in TERMINAL:
                if wf_status not in CLOSED_AS[status]:
                    report.problems.append(f"{where}: workflow is {wf_status}")
                if jobs:
                    report.problems.append(f"{where}: finished but has live Jobs {jobs}")
                continue
            if wf_status is not WorkflowExecutionStatus.RUNNING:
                report.problems.append(f"{where}: active task but workflow is {wf_status}")
            if len(jobs) > 1:
                report.problems.append(f"{where}: two live Jobs {jobs}")
            if status == "RUNNING":
                region = api_task["region"]
                state = (regions.get(region) or {}).get("state")
                if state != "up" or region in bad_regions:
                    report.problems.append(f"{where}: running in a region that is {state}")
                current = [j for j in jobs if j.attempt == api_task["attempt"]]
                if not current or current[0].region != region:
                    report.problems.append(f"{where}: no live Job of its attempt in {region}")
        return report

    async def audit(
        self,
        expected: dict[str, set[str]],
        *,
        timeout: float = 60.0,
        bad_regions: Iterable[str] = (),
    ) -> AuditReport:
        """Poll until every check passes; fail with every problem of the last round."""
        deadline = time.monotonic() + timeout
        bad = set(bad_regions)
        async with httpx.AsyncClient(
            base_url=self.api_url, timeout=30.0, headers=self.headers
        ) as http:
            while True:
                report = await self._check_once(expected, http, bad)
                if not report.problems:
                    return report
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"audit failed after {timeout:.0f}s ({report.by_status()}):\n  "
                        + "\n  ".join(report.problems[:40])
                    )
                await asyncio.sleep(1.0)


def expect(task_ids: Iterable[str], *statuses: str) -> dict[str, set[str]]:
    return {task_id: set(statuses) for task_id in task_ids}
