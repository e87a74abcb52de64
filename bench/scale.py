"""Live scale (issue 16): N real tasks running over the 15-region fleet, then a region fails.

`python -m bench --scale [--scale-tasks N] [--database mariadb]` (or `--only scale`):

1. `meridian up` on infra/regions/fleet-15.yaml (bench.system); every region's pool grown
   so that its share of the tasks (and of a failed region's) has nodes (kubesim caps a
   node at 110 pods), scale-down held off (the phase measures the live set, not the
   autoscaler shrinking pools under tiny pods), sweep schedules quiet while timed.
2. N tasks submitted through the API (business unit `scale`, bounded concurrency), each
   a `TaskWorkflow` with a Job of a 24 h simulated duration; data sources spread so that
   placement (locality) puts `heavy_share` of them in one region and the rest evenly.
   The phase waits until the API lists them RUNNING before it measures anything.
3. With them running: RSS of every process (peak over the phase, steady = median over
   the trickle window), a trickle of 1 s tasks at 2/s (Job done → SUCCEEDED, as
   bench.throughput measures it), one sweep of each kind over the live set (bench.sweeps),
   the region monitor's tick (from its workflow history).
4. The region that holds the most tasks goes down (kubesim outage); per task, the
   timeline of its move (bench.scale_timeline), duplicates sampled across every
   reachable region (bench.failover.JobSampler), then the region comes back.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from temporalio.client import Client

from bench import report, throughput
from bench.failover import JobSampler
from bench.jobwatch import JobCompletionWatcher
from bench.memory import MIB, ROLES, cpu_delta, cpu_seconds
from bench.scale_timeline import TaskTimeline, move_summary, phase_summary, plot_timeline
from bench.stats import summary
from bench.sweeps import PODS_PER_NODE, measure_sweeps
from bench.system import REGIONS_DIR, System, wait_regions_up
from kubesim.control import KubesimControl
from meridian.kube.namespaces import unit_namespace
from meridian.settings import Settings
from meridian.tasks.contracts import SIGNAL_INFRA_FAILURE
from meridian.tasks.keys import task_key
from meridian.temporal import connect

UNIT = "scale"
FLEET = REGIONS_DIR / "fleet-15.yaml"
HEAVY_REGION = "azure-eastus"
ACTIVE = {"PENDING", "SCHEDULING", "RUNNING"}
SCALE_ENV = {
    # Sweeps are timed one of each over the live set; their schedules must not overlap.
    "MERIDIAN_SWEEPS__RUNNING_TASK_INTERVAL_SECONDS": "3600",
    "MERIDIAN_SWEEPS__JOB_INTERVAL_SECONDS": "3600",
    # 10 m-CPU pods leave the pools' water level low; the autoscaler would drain nodes
    # (and move tasks) under the measurement.
    "MERIDIAN_SCALING__SCALE_DOWN_WINDOW_SECONDS": "86400",
}


@dataclass(frozen=True)
class ScalePlan:
    tasks: int = 10_000
    heavy_region: str = HEAVY_REGION
    heavy_share: float = 0.1
    submit_concurrency: int = 16
    trickle_rate: float = 2.0
    trickle_seconds: float = 60.0
    running_timeout: float = 3_600.0
    move_timeout: float = 600.0
    duplicate_sample_seconds: float = 3.0
    # With the set live and nothing else offered: what keeping it costs each process
    # (backstop reads, health probes, the watch) in CPU.
    idle_seconds: float = 60.0


def fleet_regions(path: Path = FLEET) -> list[tuple[str, str, str]]:
    """(name, provider, location) of every region that runs tasks."""
    data = yaml.safe_load(path.read_text())
    return [
        (r["name"], r["provider"], r["location"]) for r in data["regions"] if r.get("node_pools")
    ]


def target_region(i: int, names: list[str], heavy: str, share: float) -> str:
    """Task i's intended region: every (1/share)-th task the heavy one, else round robin."""
    every = max(1, round(1 / share))
    if i % every == 0:
        return heavy
    others = [n for n in names if n != heavy]
    return others[(i - 1 - (i - 1) // every) % len(others)] if others else heavy


def expected_per_region(n: int, names: list[str], heavy: str, share: float) -> dict[str, int]:
    counts = dict.fromkeys(names, 0)
    for i in range(n):
        counts[target_region(i, names, heavy, share)] += 1
    return counts


def task_body(task_id: str, region: tuple[str, str, str]) -> dict[str, Any]:
    """A task whose data is in `region`, which it prefers (a first tier of one region).

    Locality alone does not make the spread: placement also weighs measured network and
    load, and at 2,000 tasks one region took a third of them. With the preference each
    region gets its share exactly, and a task whose region fails falls back to the rest
    of the fleet, as a user's "this region first" task does.
    """
    name, provider, location = region
    return {
        "id": task_id,
        "name": "scale-bench",
        "business_unit": UNIT,
        "kind": "batch",
        "data_source": {"provider": provider, "region": location},
        "placement": {"preferences": [[name]]},
        "job": {
            "image": "busybox",
            "command": ["true"],
            "resources": {"cpu": "10m", "memory": "16Mi"},
            # Outlives the run: the set stays live until the bench stops it.
            "annotations": {"kubesim.io/duration": "24h"},
        },
    }


def grow_fleet(control: KubesimControl, need: dict[str, int]) -> dict[str, int]:
    """Nodes for twice each region's share plus a failed region's spill; node counts.

    Twice: placement weighs load and network as well as locality, so the shares are not
    exact, and it counts CPU, not kubesim's 110 pods a node; a region full by pod count
    leaves pods Pending until the unschedulable deadline moves them (seen at 2,000 tasks
    on the central region's 3 nodes).
    """
    spill = max(need.values(), default=0) // max(1, len(need) - 1)
    nodes: dict[str, int] = {}
    for region, count in need.items():
        pools = control.pools(region)
        have = sum(int(p["desired"]) for p in pools)
        want = math.ceil((2 * count + spill) / PODS_PER_NODE) + 1
        if want > have:
            desired = int(pools[0]["desired"]) + want - have
            control.scale_pool(region, pools[0]["name"], desired, provisioning_delay_seconds=0)
        nodes[region] = max(want, have)
    return nodes


class RssTrace:
    """Every role's RSS each `interval` s on a thread: the peak and the steady (median)."""

    def __init__(self, processes: dict[str, psutil.Process], interval: float = 1.0):
        self.processes = {k: v for k, v in processes.items() if k in ROLES}
        self.interval = interval
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            now: dict[str, int] = {}
            for role, process in self.processes.items():
                try:
                    now[role] = process.memory_info().rss
                except psutil.Error:
                    continue
            self.samples.append((time.monotonic(), now))

    def start(self) -> RssTrace:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def peak_mib(self) -> dict[str, float]:
        return {
            role: round(max((s.get(role, 0) for _, s in self.samples), default=0) / MIB, 1)
            for role in self.processes
        }

    def steady_mib(self, since: float, until: float) -> dict[str, float]:
        window = [s for at, s in self.samples if since <= at <= until]
        return {
            role: round(statistics.median([s[role] for s in window if role in s] or [0]) / MIB, 1)
            for role in self.processes
        }


@dataclass
class Submitted:
    ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def submit_live(
    api_url: str, headers: dict[str, str], plan: ScalePlan, regions: list[tuple[str, str, str]]
) -> Submitted:
    run = uuid.uuid4().hex[:6]
    by_name = {r[0]: r for r in regions}
    names = list(by_name)
    out = Submitted(ids=[f"sc-{run}-{i:05d}" for i in range(plan.tasks)])
    sem = asyncio.Semaphore(plan.submit_concurrency)
    started = time.monotonic()
    limits = httpx.Limits(max_connections=plan.submit_concurrency + 4)
    async with httpx.AsyncClient(
        base_url=api_url, timeout=60, headers=headers, limits=limits
    ) as http:

        async def one(i: int, task_id: str) -> None:
            region = by_name[target_region(i, names, plan.heavy_region, plan.heavy_share)]
            async with sem:
                for attempt in range(3):
                    try:
                        response = await http.post("/v1/tasks", json=task_body(task_id, region))
                    except httpx.HTTPError as exc:
                        if attempt == 2:
                            out.errors.append(f"{task_id}: {exc!r}")
                        continue
                    if response.status_code in (200, 201):
                        return
                    if attempt == 2 or response.status_code < 500:
                        text = response.text[:120]
                        out.errors.append(f"{task_id}: {response.status_code} {text}")
                        return

        async def progress() -> None:
            while True:
                await asyncio.sleep(30)
                report.say(f"bench: scale: submitting, {time.monotonic() - started:.0f}s")

        ticker = asyncio.create_task(progress())
        await asyncio.gather(*(one(i, t) for i, t in enumerate(out.ids)))
        ticker.cancel()
    out.seconds = round(time.monotonic() - started, 1)
    return out


def list_tasks(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"business_unit": UNIT, "limit": 500, **params}
        if cursor:
            query["cursor"] = cursor
        page = http.get("/v1/tasks", params=query).json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def wait_running(http: httpx.Client, n: int, timeout: float) -> tuple[list[dict[str, Any]], float]:
    """Until n tasks of the unit are RUNNING (or the timeout); those tasks and the wait."""
    started = time.monotonic()
    running: list[dict[str, Any]] = []
    while time.monotonic() - started < timeout:
        running = list_tasks(http, status="RUNNING")
        if len(running) >= n:
            break
        report.say(f"bench: scale: {len(running)} of {n} RUNNING")
        time.sleep(10.0)
    return running, round(time.monotonic() - started, 1)


async def monitor_ticks(settings: Settings) -> dict[str, Any]:
    """The region monitor's rounds in its current run: probes out → assessment recorded.

    A round starts with its probes' ActivityTaskScheduled events (all from one workflow
    task) and ends at the next MarkerRecorded (the assess_regions local activity).
    """
    from temporalio.api.enums.v1 import EventType

    from meridian.regions.contracts import REGION_MONITOR_ID

    client = await connect(settings)
    history = await client.get_workflow_handle(REGION_MONITOR_ID).fetch_history()
    ticks: list[float] = []
    starts: list[float] = []
    open_at: float | None = None
    group = -1
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "probe_region" and (
                attrs.workflow_task_completed_event_id != group
            ):
                group = attrs.workflow_task_completed_event_id
                open_at = at
                starts.append(at)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and open_at is not None:
            ticks.append(at - open_at)
            open_at = None
    periods = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    return {
        "tick_s": summary(ticks[-60:]),
        "period_s": summary(periods[-60:]),
        "rounds_seen": len(ticks),
    }


async def signal_times(settings: Settings, keys: list[str], after: float) -> dict[str, float]:
    """When each task's workflow got its first `infra_failure` signal after `after`.

    A task may have continued as new since (a settled roll-over, or the move's own
    history): the signal is then in an earlier run, so the chain is followed back,
    run by run, to the one that started before `after`."""
    return await first_signals(await connect(settings), keys, SIGNAL_INFRA_FAILURE, after)


async def first_signals(
    client: Client, keys: list[str], signal_name: str, after: float
) -> dict[str, float]:
    """Per workflow id: when it first got `signal_name` at or after `after`, across its
    continue-as-new chain; ids that got none are left out."""
    from temporalio.api.enums.v1 import EventType

    sem = asyncio.Semaphore(16)
    out: dict[str, float] = {}

    async def one(key: str) -> None:
        run_id: str | None = None
        first: float | None = None
        for _ in range(20):  # a run rolls over at most every few minutes here
            async with sem:
                history = await client.get_workflow_handle(key, run_id=run_id).fetch_history()
            previous = ""
            started = 0.0
            for event in history.events:
                at = event.event_time.ToDatetime().timestamp()
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                    started = at
                    attrs = event.workflow_execution_started_event_attributes
                    previous = attrs.continued_execution_run_id
                if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                    continue
                signal = event.workflow_execution_signaled_event_attributes
                if signal.signal_name == signal_name and at >= after:
                    first = at if first is None else min(first, at)
                    break
            if started < after or not previous:
                break  # this run began before the outage: no earlier one has its signal
            run_id = previous
        if first is not None:
            out[key] = first

    await asyncio.gather(*(one(k) for k in keys), return_exceptions=True)
    return out


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


async def task_marks(
    api_url: str, headers: dict[str, str], ids: list[str], region: str, after: float
) -> dict[str, dict[str, Any]]:
    """Per task after the outage: when its new placement was decided (the placement
    history), when it ran elsewhere (its RUNNING event), where, and the new Job's name."""
    sem = asyncio.Semaphore(16)
    out: dict[str, dict[str, Any]] = {}
    params = {"business_unit": UNIT}
    async with httpx.AsyncClient(base_url=api_url, timeout=60, headers=headers) as http:

        async def one(task_id: str) -> None:
            async with sem:
                events = await http.get(f"/v1/tasks/{task_id}/events", params=params)
                placement = await http.get(f"/v1/tasks/{task_id}/placement", params=params)
            marks: dict[str, Any] = {}
            if placement.status_code == 200:
                decided = [
                    at
                    for item in placement.json()["history"]
                    if (at := _ts(item["decided_at"])) is not None and at >= after
                ]
                if decided:
                    marks["placed"] = min(decided)
            if events.status_code == 200:
                for event in events.json()["items"]:
                    at = _ts(event["at"])
                    if at is None or at < after or event["region"] in (None, region):
                        continue
                    if event["status"] == "RUNNING":
                        marks.update(running=at, region=event["region"], job=event["job_name"])
                        break
            out[task_id] = marks

        await asyncio.gather(*(one(t) for t in ids))
    return out


@dataclass
class ScaleRun:
    plan: ScalePlan
    database: str
    figures: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    timelines: list[TaskTimeline] = field(default_factory=list)


def run_scale(plan: ScalePlan, database: str, chart: Path | None = None) -> ScaleRun:
    result = ScaleRun(plan, database)
    system = System(FLEET, database=database, env=dict(SCALE_ENV))
    system.start()
    trace = RssTrace(system.children).start()
    try:
        _live(system, trace, result)
        if chart is not None:
            title = (
                f"{result.figures.get('scale_failover_tasks')} tasks leave "
                f"{result.details.get('failover', {}).get('region')} "
                f"({plan.tasks} live, {database})"
            )
            result.details["failover_chart"] = str(plot_timeline(result.timelines, chart, title))
    finally:
        trace.stop()
        result.figures.update({f"scale_rss_peak_mib_{k}": v for k, v in trace.peak_mib().items()})
        system.stop()
        system.cleanup()
    return result


def _live(system: System, trace: RssTrace, result: ScaleRun) -> None:
    plan, figures, details = result.plan, result.figures, result.details
    regions = fleet_regions(system.regions_file)
    names = wait_regions_up(system.api_url, system.api_headers)
    need = expected_per_region(
        plan.tasks, [r[0] for r in regions], plan.heavy_region, plan.heavy_share
    )
    with KubesimControl(system.control_url) as control:
        details["nodes"] = grow_fleet(control, need)
    settings = Settings(
        temporal_address=system.temporal_address,
        database_url=system.database_url,
        state_dir=system.state_dir,
        regions_file=system.regions_file,
    )
    submitted = asyncio.run(submit_live(system.api_url, system.api_headers, plan, regions))
    details["submit"] = {
        "tasks": plan.tasks,
        "seconds": submitted.seconds,
        "per_s": round(plan.tasks / max(submitted.seconds, 1e-9), 2),
        "errors": submitted.errors[:10],
    }
    figures["scale_submit_per_s"] = details["submit"]["per_s"]
    if submitted.errors:
        result.errors.append(
            f"scale: {len(submitted.errors)} submit errors: {submitted.errors[:3]}"
        )
    report.say(f"bench: scale: submitted {details['submit']}")
    with httpx.Client(base_url=system.api_url, timeout=120, headers=system.api_headers) as http:
        expected = plan.tasks - len(submitted.errors)
        running, waited = wait_running(http, expected, plan.running_timeout)
    per_region: dict[str, int] = {}
    for task in running:
        per_region[task["region"]] = per_region.get(task["region"], 0) + 1
    figures["scale_live_tasks_running"] = len(running)
    details["running"] = {"waited_s": waited, "per_region": per_region}
    report.say(f"bench: scale: {len(running)} RUNNING after {waited}s: {per_region}")
    if len(running) < plan.tasks:
        result.errors.append(f"scale: only {len(running)} of {plan.tasks} RUNNING after {waited}s")

    # -- with the set live and nothing offered: the upkeep's CPU --------------------------
    before = cpu_seconds(trace.processes)
    time.sleep(plan.idle_seconds)
    idle = cpu_delta(before, cpu_seconds(trace.processes))
    details["idle_cpu_percent"] = {
        role: round(100 * used / plan.idle_seconds, 1) for role, used in idle.items()
    }
    figures["scale_idle_cpu_percent_total"] = round(100 * sum(idle.values()) / plan.idle_seconds, 1)
    report.say(f"bench: scale: idle CPU % of a core: {details['idle_cpu_percent']}")

    # -- with the set live: trickle, RSS, monitor tick, sweeps ----------------------------
    trickle_ns = unit_namespace(throughput.BUSINESS_UNIT)
    watcher = JobCompletionWatcher(str(system.kubeconfig), names, namespace=trickle_ns).start()
    steady_from = time.monotonic()
    try:
        trickle = asyncio.run(
            throughput.offered_load(
                system.api_url,
                plan.trickle_rate,
                plan.trickle_seconds,
                300.0,
                watcher,
                prefix="st",
                headers=system.api_headers,
            )
        )
        steady_until = time.monotonic()
        figs = throughput.figures(trickle, watcher)
    finally:
        watcher.stop()
    details["trickle"] = {"offered_per_s": plan.trickle_rate, **figs}
    for key in ("completion_to_succeeded_ms", "completion_to_succeeded_polled_ms"):
        figures[f"scale_trickle_{key}_p50"] = figs[key]["p50"]
        figures[f"scale_trickle_{key}_p99"] = figs[key]["p99"]
    if figs["lost"] or figs["errors"]:
        result.errors.append(f"scale trickle: {figs['lost']} lost, {figs['errors']} errors")
    steady = trace.steady_mib(steady_from, steady_until)
    details["rss_steady_mib"] = steady
    figures.update({f"scale_rss_steady_mib_{k}": v for k, v in steady.items()})
    ticks = asyncio.run(monitor_ticks(settings))
    details["monitor"] = ticks
    figures["scale_monitor_tick_s_p50"] = ticks["tick_s"]["p50"]
    figures["scale_monitor_tick_s_max"] = ticks["tick_s"]["max"]
    sweeps = asyncio.run(measure_sweeps(system, names, page_size=500))
    details["sweeps"] = sweeps
    for kind, prefix in (("running_task_sweep", "running"), ("job_sweep", "job")):
        one = sweeps[kind]
        figures[f"scale_{prefix}_sweep_s"] = one["seconds"]
        figures[f"scale_{prefix}_sweep_k8s_requests"] = one["k8s_job_requests"]
        figures[f"scale_{prefix}_sweep_db_queries"] = one.get("db_queries")
        if one["errors"]:
            result.errors.append(f"scale {kind}: {one['errors'][:3]}")
    # Every task's Job runs for a day, so a Job of an attempt older than its task's is a
    # second live copy left from the submit (a create that landed after its workflow had
    # moved on): the job sweep deletes it, and the run counts it as a duplicate.
    stale = sweeps["job_sweep"].get("found", {}).get("stale", 0)
    figures["scale_live_duplicates_found_by_sweep"] = stale
    if stale:
        result.errors.append(f"scale: the job sweep found {stale} stale attempts' Jobs live")

    # -- the biggest region fails -------------------------------------------------------
    region = max(per_region, key=lambda r: per_region[r])
    measured = sorted(t["id"] for t in running if t["region"] == region)
    _failover(system, settings, region, measured, names, result)


def _failover(
    system: System,
    settings: Settings,
    region: str,
    measured: list[str],
    names: list[str],
    result: ScaleRun,
) -> None:
    plan, figures, details = result.plan, result.figures, result.details
    keys = {task_key(UNIT, t) for t in measured}
    others = [n for n in names if n != region]
    watcher = JobCompletionWatcher(
        str(system.kubeconfig), others, namespace=unit_namespace(UNIT)
    ).start()
    sampler = JobSampler(str(system.kubeconfig), names, keys, plan.duplicate_sample_seconds)
    report.say(f"bench: scale: failing {region} with {len(measured)} tasks")
    time.sleep(5.0)  # the watch's initial list of every region's Jobs
    sampler.sample()
    sampler.start()
    detected: float | None = None
    control = KubesimControl(system.control_url)
    http = httpx.Client(base_url=system.api_url, timeout=120, headers=system.api_headers)
    outage = time.time()
    control.outage(region)
    try:
        pending = set(measured)
        while pending and time.time() - outage < plan.move_timeout:
            if detected is None:
                for item in http.get("/v1/regions").json()["items"]:
                    if item["name"] == region and item["state"] == "down":
                        detected = _ts(item["since"]) or time.time()
            still = {t["id"] for t in list_tasks(http, region=region) if t["status"] in ACTIVE}
            still |= {t["id"] for t in list_tasks(http, status="SCHEDULING")}
            still |= {t["id"] for t in list_tasks(http, status="PENDING")}
            pending &= still
            time.sleep(1.0)
        elapsed = time.time() - outage
    finally:
        sampler.stop()
        control.restore(region)
        control.close()
        http.close()
        watcher.stop()
    report.say(f"bench: scale: move ended after {elapsed:.1f}s, {len(pending)} pending")
    marks = asyncio.run(task_marks(system.api_url, system.api_headers, measured, region, outage))
    signals = asyncio.run(signal_times(settings, sorted(keys), outage))
    for task_id in measured:
        mark = marks.get(task_id, {})
        job = mark.get("job")
        result.timelines.append(
            TaskTimeline(
                task_id=task_id,
                outage=outage,
                detected=detected,
                signalled=signals.get(task_key(UNIT, task_id)),
                placed=mark.get("placed"),
                job_created=watcher.first_seen.get(job) if job else None,
                running=mark.get("running"),
                to_region=mark.get("region"),
            )
        )
    moves = move_summary(result.timelines)
    phases = phase_summary(result.timelines)
    to_regions: dict[str, int] = {}
    for tl in result.timelines:
        if tl.to_region:
            to_regions[tl.to_region] = to_regions.get(tl.to_region, 0) + 1
    details["failover"] = {
        "region": region,
        "tasks": len(measured),
        "detection_s": None if detected is None else round(detected - outage, 2),
        "signalled": len(signals),
        **moves,
        "phases_s": phases,
        "to_regions": to_regions,
        "duplicates": len(sampler.duplicated),
        "duplicate_samples": sampler.samples,
        "poll_ended_s": round(elapsed, 1),
        "timelines": [asdict(t) for t in result.timelines],
    }
    figures["scale_failover_tasks"] = len(measured)
    figures["scale_failover_median_s"] = moves["median_s"]
    figures["scale_failover_p99_s"] = moves["p99_s"]
    figures["scale_failover_worst_s"] = moves["worst_s"]
    figures["scale_failover_duplicates"] = len(sampler.duplicated)
    figures["scale_failover_detection_s"] = details["failover"]["detection_s"]
    for name, spread in phases.items():
        key = name.lower().replace(" ", "_").replace("-", "_")
        figures[f"scale_phase_{key}_p50_s"] = spread["p50"]
        figures[f"scale_phase_{key}_p99_s"] = spread["p99"]
    if moves["not_moved"]:
        result.errors.append(f"scale failover: {moves['not_moved']} tasks did not move")
    if sampler.duplicated:
        result.errors.append(f"scale failover: duplicates {sorted(sampler.duplicated)[:5]}")


# (figure key, label, unit, goal) of the scale table; RSS rows are added per role.
SCALE_ROWS: list[tuple[str, str, str, str]] = [
    ("scale_live_tasks_running", "live tasks RUNNING (fleet-15)", "", ""),
    ("scale_submit_per_s", "  submitted through the API at", "tasks/s", ""),
    ("scale_idle_cpu_percent_total", "  upkeep with nothing offered (all processes)", "% core", ""),
    (
        "scale_trickle_completion_to_succeeded_ms_p50",
        "trickle 2/s: Job done → SUCCEEDED p50",
        "ms",
        "",
    ),
    ("scale_trickle_completion_to_succeeded_ms_p99", "  p99", "ms", "< 1,000"),
    ("scale_trickle_completion_to_succeeded_polled_ms_p99", "  p99 seen by API poll", "ms", ""),
    ("scale_running_sweep_s", "running-task sweep over the live set", "s", "< 5"),
    ("scale_running_sweep_k8s_requests", "  Kubernetes requests", "", ""),
    ("scale_running_sweep_db_queries", "  database queries", "", ""),
    ("scale_job_sweep_s", "job sweep over the live set", "s", "< 5"),
    ("scale_job_sweep_k8s_requests", "  Kubernetes requests", "", ""),
    ("scale_job_sweep_db_queries", "  database queries", "", ""),
    ("scale_live_duplicates_found_by_sweep", "  older attempts' Jobs live (duplicates)", "", "0"),
    ("scale_monitor_tick_s_p50", "region monitor tick p50", "s", ""),
    ("scale_monitor_tick_s_max", "  max", "s", ""),
    ("scale_failover_tasks", "tasks in the failed region", "", "~1,000"),
    ("scale_failover_median_s", "  outage → running elsewhere: median", "s", ""),
    ("scale_failover_p99_s", "  p99", "s", ""),
    ("scale_failover_worst_s", "  worst", "s", "< 30"),
    ("scale_failover_duplicates", "  duplicates", "", "0"),
    ("scale_phase_detection_p50_s", "  phase: detection p50", "s", ""),
    ("scale_phase_signals_p99_s", "  phase: signals p99", "s", ""),
    ("scale_phase_re_placement_p99_s", "  phase: re-placement p99", "s", ""),
    ("scale_phase_job_creates_p99_s", "  phase: Job creates p99", "s", ""),
    ("scale_phase_job_running_p99_s", "  phase: Job running p99", "s", ""),
]


def scale_table(figures: dict[str, Any]) -> str:
    rows = list(SCALE_ROWS)
    for role in ROLES:
        goal = "< 300" if role == "central_worker" else ""
        rows.append((f"scale_rss_peak_mib_{role}", f"RSS {role}: peak", "MiB", goal))
        rows.append((f"scale_rss_steady_mib_{role}", "  steady (trickle window)", "MiB", ""))
    lines = [f"{'figure':44} {'value':>10} {'unit':8} goal", "-" * 76]
    for key, label, unit, goal in rows:
        value = figures.get(key)
        shown = "—" if value is None else f"{value:,}" if isinstance(value, int) else f"{value}"
        lines.append(f"{label:44} {shown:>10} {unit:8} {goal}")
    return "\n".join(lines)
