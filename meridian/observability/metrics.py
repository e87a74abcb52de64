"""Every Prometheus metric Meridian exports, defined once: name, type, labels and help.

The README's metrics table lists the same families; `tests/observability` checks that the
two agree. Conventions: the `meridian_` prefix, counters end in `_total`, durations are
`_seconds`, ratios are 0..1. Labels are bounded: a region (from the regions file), a
business unit, a status or reason from a fixed set; never a task id, a Job name or an
error message.

Each process role has its own registry (`REGISTRIES`), served on that process's
`/metrics` (meridian/observability/server.py) with the Python process and GC metrics and
the Temporal SDK's: an API scrape shows the API's families, not empty ones of the
workers'. A family whose samples come from
elsewhere (the database, the unit worker's open channels) is a collector here, bound to
its source by the process that has one; unbound, it exposes its HELP and TYPE only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# `_created` series double every counter's and histogram's series for a start time
# that `process_start_time_seconds` already gives.
disable_created_metrics()  # type: ignore[no-untyped-call]

# What a label reads when the value is not known (a task not placed yet has no region).
NONE = "none"

API = CollectorRegistry()
CENTRAL = CollectorRegistry()
UNIT = CollectorRegistry()
REGISTRIES: dict[str, CollectorRegistry] = {"api": API, "central": CENTRAL, "unit": UNIT}
for _registry in REGISTRIES.values():
    for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        _registry.register(_collector)

# -- API ----------------------------------------------------------------------------------

API_REQUESTS = Counter(
    "meridian_api_requests",
    "HTTP requests the API answered, by route template (never the raw path), method and "
    "status code.",
    ["route", "method", "status"],
    registry=API,
)
API_REQUEST_DURATION = Histogram(
    "meridian_api_request_duration_seconds",
    "Time the API took to answer a request, by route template and method.",
    ["route", "method"],
    registry=API,
)
TASK_SUBMIT_DURATION = Histogram(
    "meridian_task_submit_duration_seconds",
    "Time a task submit (POST /v1/tasks) spent recording the task and starting its "
    "workflow, refusals included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=API,
)

# -- Central worker: tasks ------------------------------------------------------------------

TASK_TRANSITIONS = Counter(
    "meridian_task_transitions",
    "Status events recorded for tasks, by the status they set, the task's region at the "
    "time ('none' before placement) and its business unit.",
    ["status", "region", "business_unit"],
    registry=CENTRAL,
)
ACTIVE_TASKS_NAME = "meridian_active_tasks"
ACTIVE_TASKS_HELP = (
    "Tasks in SCHEDULING or RUNNING, by status and business unit, as the database holds "
    "them (read at most every few seconds, on scrape)."
)
PLACEMENT_DECISIONS = Counter(
    "meridian_placement_decisions",
    "Placement decisions, by the region chosen ('none': no region could take the task).",
    ["region"],
    registry=CENTRAL,
)
PLACEMENT_FILTERED = Counter(
    "meridian_placement_filtered",
    "Regions a placement decision filtered out, by region and filter reason (excluded, "
    "constraint, down, not_polling, draining, saturated, no_nodes, capacity).",
    ["region", "reason"],
    registry=CENTRAL,
)
PLACEMENT_DURATION = Histogram(
    "meridian_placement_duration_seconds",
    "Time one placement decision took (snapshots, filters, scores, and its record).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=CENTRAL,
)
FAILOVERS = Counter(
    "meridian_failovers",
    "Tasks moved away from a region that failed them, by reason (region_down, "
    "unschedulable, job_lost, resident_failing, create_failed, infrastructure).",
    ["reason"],
    registry=CENTRAL,
)
FAILOVER_DURATION = Histogram(
    "meridian_failover_duration_seconds",
    "From the failure being detected (the task recorded as moving) to the task running "
    "in another region, by the reason it moved.",
    ["reason"],
    buckets=(1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0, 1800.0),
    registry=CENTRAL,
)

# -- Central worker: regions and resource scheduling ---------------------------------------

REGION_HEALTH = Gauge(
    "meridian_region_health",
    "The region's health as the region monitor last assessed it: 1 for its current state "
    "(up, degraded, down), 0 for the others.",
    ["region", "state"],
    registry=CENTRAL,
)
REGION_WATER_LEVEL = Gauge(
    "meridian_region_water_level",
    "The region's water level (0..1): the larger of requested/allocatable CPU and memory "
    "on its schedulable nodes, from its last health probe that reached the API.",
    ["region"],
    registry=CENTRAL,
)
SCALING_DECISIONS = Counter(
    "meridian_scaling_decisions",
    "Resource-scheduling decisions, by region, action (cordon, drain, uncordon, scale_up, "
    "scale_down, move_tasks, burst, none) and cause; burst: waiting auto tasks sent to "
    "serverless pods rather than a pool grown for them (cause pending-demand); none with "
    "cause room: the burst advisory lapsed.",
    ["region", "action", "cause"],
    registry=CENTRAL,
)
SCALING_FAILURES = Counter(
    "meridian_scaling_failures",
    "Resource-scheduling actions that failed when carried out, by region and action.",
    ["region", "action"],
    registry=CENTRAL,
)

# -- Central worker: sweeps -----------------------------------------------------------------

SWEEP_RUNS = Counter(
    "meridian_sweep_runs",
    "Sweep runs, by kind (running, jobs) and outcome (ok; error: some region could not be swept).",
    ["kind", "outcome"],
    registry=CENTRAL,
)
SWEEP_DURATION = Histogram(
    "meridian_sweep_duration_seconds",
    "Time one sweep run took across every region, by kind.",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0),
    registry=CENTRAL,
)
SWEEP_DRIFT_FOUND = Counter(
    "meridian_sweep_drift_found",
    "Drift the sweeps found, by sweep kind and drift kind (e.g. missed, stale, unknown, "
    "finished, missing, orphans).",
    ["kind", "drift"],
    registry=CENTRAL,
)
SWEEP_DRIFT_FIXED = Counter(
    "meridian_sweep_drift_fixed",
    "Drift the sweeps repaired, by sweep kind and repair (e.g. signalled, deleted, "
    "workflows_started).",
    ["kind", "fix"],
    registry=CENTRAL,
)
SWEEP_LAST_DRIFT = Gauge(
    "meridian_sweep_last_run_drift",
    "Drift found by the last sweep run of this kind, all drift kinds together.",
    ["kind"],
    registry=CENTRAL,
)
RESUME_FAILURES = Counter(
    "meridian_sweep_resume_failures",
    "Tasks left SCHEDULING without a workflow whose workflow the running-task sweep "
    "could not start (Temporal refused or was unreachable).",
    registry=CENTRAL,
)

# -- Unit worker ----------------------------------------------------------------------------

KUBE_REQUESTS = Counter(
    "meridian_kube_requests",
    "Kubernetes API requests, by region, verb (get, list, watch, create, update, patch, "
    "delete, deletecollection) and HTTP status code ('error': no answer).",
    ["region", "verb", "code"],
    registry=UNIT,
)
KUBE_REQUEST_DURATION = Histogram(
    "meridian_kube_request_duration_seconds",
    "Time to the Kubernetes API's answer (its headers, for a watch), by region and verb.",
    ["region", "verb"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=UNIT,
)
WATCH_RESTARTS = Counter(
    "meridian_job_watch_restarts",
    "Job watch reconnects, by region and reason: closed (the server ended it, as it does "
    "every minute), gone (410: the resourceVersion expired, so the watch re-lists), "
    "error (refused, reset or an API error).",
    ["region", "reason"],
    registry=UNIT,
)
RESIDENT_CHANNELS_NAME = "meridian_resident_channels"
RESIDENT_CHANNELS_HELP = (
    "Open status channels to resident tasks' pods, by region and last state (connecting, "
    "healthy, degraded, failing, suspect)."
)


def label(value: str | None) -> str:
    """A label value for something that may be unknown."""
    return value or NONE


# -- collectors with an outside source -----------------------------------------------------


class SourcedGauge(Collector):
    """A gauge family read from `source` on scrape: {label values: value}.

    `min_interval` bounds the source's cost whatever the scrape rate: within it the last
    reading is served again. A failing source is logged and served as no samples.
    """

    def __init__(
        self, name: str, documentation: str, labels: list[str], *, min_interval: float = 0.0
    ) -> None:
        self.name = name
        self.documentation = documentation
        self._labelnames = tuple(labels)
        self.min_interval = min_interval
        self._source: Callable[[], Mapping[tuple[str, ...], float]] | None = None
        self._cached: Mapping[tuple[str, ...], float] = {}
        self._read_at = -float("inf")
        self._lock = threading.Lock()

    def bind(self, source: Callable[[], Mapping[tuple[str, ...], float]] | None) -> None:
        with self._lock:
            self._source = source
            self._cached = {}
            self._read_at = -float("inf")

    def _values(self) -> Mapping[tuple[str, ...], float]:
        with self._lock:
            if self._source is None:
                return {}
            now = time.monotonic()
            if now - self._read_at >= self.min_interval:
                try:
                    self._cached = dict(self._source())
                except Exception:  # noqa: BLE001 - a scrape must not fail for one family
                    log.exception("reading %s failed", self.name)
                    self._cached = {}
                self._read_at = now
            return self._cached

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=list(self._labelnames))
        for values, value in sorted(self._values().items()):
            family.add_metric(list(values), value)
        yield family

    def describe(self) -> Iterable[Metric]:
        # Lets the registry check names at registration without reading the source.
        yield GaugeMetricFamily(self.name, self.documentation, labels=list(self._labelnames))


ACTIVE_TASKS = SourcedGauge(
    ACTIVE_TASKS_NAME, ACTIVE_TASKS_HELP, ["status", "business_unit"], min_interval=10.0
)
RESIDENT_CHANNELS = SourcedGauge(
    RESIDENT_CHANNELS_NAME, RESIDENT_CHANNELS_HELP, ["region", "state"]
)
CENTRAL.register(ACTIVE_TASKS)
UNIT.register(RESIDENT_CHANNELS)

# The families each process serves, as `/metrics` names them (counters with `_total`).
API_FAMILIES = (
    "meridian_api_requests_total",
    "meridian_api_request_duration_seconds",
    "meridian_task_submit_duration_seconds",
)
CENTRAL_FAMILIES = (
    "meridian_task_transitions_total",
    ACTIVE_TASKS_NAME,
    "meridian_placement_decisions_total",
    "meridian_placement_filtered_total",
    "meridian_placement_duration_seconds",
    "meridian_failovers_total",
    "meridian_failover_duration_seconds",
    "meridian_region_health",
    "meridian_region_water_level",
    "meridian_scaling_decisions_total",
    "meridian_scaling_failures_total",
    "meridian_sweep_runs_total",
    "meridian_sweep_duration_seconds",
    "meridian_sweep_drift_found_total",
    "meridian_sweep_drift_fixed_total",
    "meridian_sweep_last_run_drift",
    "meridian_sweep_resume_failures_total",
)
UNIT_FAMILIES = (
    "meridian_kube_requests_total",
    "meridian_kube_request_duration_seconds",
    "meridian_job_watch_restarts_total",
    RESIDENT_CHANNELS_NAME,
)
