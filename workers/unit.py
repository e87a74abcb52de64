"""The unit role: one region's Job activities, its Job watch and its resident channels.

In production each region runs its own unit service (`meridian worker --role unit
--region NAME`); locally one process may host several regions, one Worker each.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.jobs import JobActivities
from activities.scaling import ScalingUnitActivities
from meridian.channels.resident import ResidentChannels
from meridian.channels.signals import signal_task
from meridian.channels.watch import JobWatcher
from meridian.kube.clients import ClusterClients
from meridian.kube.contracts import JobObservation
from meridian.kube.errors import KubeError
from meridian.kube.gateway import JobGateway
from meridian.observability import metrics
from meridian.observability.server import serve_metrics
from meridian.queues import region_health_queue, region_task_queue
from meridian.regions.config import load_regions
from meridian.regions.contracts import REGION_MONITOR_ID, SIGNAL_REGION_SUSPECT, RegionSuspect
from meridian.regions.listing import RegionListings
from meridian.regions.pod_cache import PodCache
from meridian.settings import Settings
from meridian.tasks.contracts import SIGNAL_JOB_STATUS
from meridian.temporal import connect

log = logging.getLogger(__name__)


class Signaller:
    """Turns observations into workflow signals; a finished workflow is not an error."""

    def __init__(self, client: Client, *, concurrency: int = 32):
        self.client = client
        self._semaphore = asyncio.Semaphore(concurrency)
        self.sent = 0

    async def job_status(self, obs: JobObservation) -> None:
        async with self._semaphore:
            if await signal_task(self.client, obs.task_id, SIGNAL_JOB_STATUS, obs):
                self.sent += 1


class SuspectReporter:
    """Asks the region monitor to probe a region now when its watch fails.

    A refused or reset watch is usually the first sign of an outage: reporting it starts
    the region's grace period at once instead of up to a health interval later. At most
    one report per region every `min_gap_seconds`; the monitor's own probes decide.
    """

    def __init__(self, client: Client, *, min_gap_seconds: float = 2.0):
        self.client = client
        self.min_gap_seconds = min_gap_seconds
        self._last: dict[str, float] = {}
        self.sent = 0

    async def report(self, region: str, error: KubeError) -> None:
        now = time.monotonic()
        if now - self._last.get(region, -math.inf) < self.min_gap_seconds:
            return
        self._last[region] = now
        suspect = RegionSuspect(region=region, reason=str(error)[:200])
        if await signal_task(self.client, REGION_MONITOR_ID, SIGNAL_REGION_SUSPECT, suspect):
            self.sent += 1


async def run_units(settings: Settings, regions: list[str], stop: asyncio.Event) -> None:
    # Before connecting: the Temporal client takes the runtime that exports its metrics.
    endpoint = serve_metrics("unit", settings)
    client = await connect(settings)
    clients = ClusterClients(settings.resolved_kubeconfig)
    gateway = JobGateway(clients, policy=settings.policy)
    signaller = Signaller(client)
    namespace = settings.kubernetes_namespace
    sizes = settings.workers
    with ThreadPoolExecutor(
        max_workers=sizes.unit_threads_per_region * max(1, len(regions)),
        thread_name_prefix="unit-act",
    ) as executor:
        # Each region's live pods, kept by a watch: a probe then lists only the nodes.
        pod_cache = None
        if settings.channels.pod_cache:
            pod_cache = PodCache(gateway, stale_seconds=settings.channels.pod_cache_stale_seconds)
            pod_cache.start(regions)
        # One listing of each region's nodes and pods serves its health probe and its
        # scaling observation.
        listings = RegionListings(gateway, pod_cache=pod_cache)
        activities = JobActivities.from_settings(
            gateway, settings, client=client, listings=listings
        )
        # Resource scheduling: nodes and pools of the region, for RegionControlWorkflow.
        scaling = ScalingUnitActivities(
            gateway,
            load_regions(settings.regions_file),
            control_url=settings.resolved_kubesim_control_url,
            listings=listings,
        )
        workers = [
            Worker(
                client,
                task_queue=region_task_queue(region),
                activities=[
                    activities.ensure_namespace,
                    activities.create_job,
                    activities.read_job,
                    activities.delete_job,
                    activities.probe_region,
                    activities.sweep_running,
                    activities.list_job_keys,
                    activities.delete_jobs,
                    scaling.observe_region_nodes,
                    scaling.cordon_node,
                    scaling.uncordon_node,
                    scaling.drain_node,
                    scaling.scale_pool,
                    scaling.remove_nodes,
                ],
                activity_executor=executor,
                max_concurrent_activities=sizes.unit_activities_per_region,
            )
            for region in regions
        ]
        # Probes get their own queue and threads, so that a backlog of Job work cannot
        # starve them: the region monitor must tell "busy" from "dead".
        probe_executor = ThreadPoolExecutor(
            max_workers=2 * max(1, len(regions)), thread_name_prefix="unit-probe"
        )
        workers += [
            Worker(
                client,
                task_queue=region_health_queue(region),
                activities=[activities.probe_region],
                activity_executor=probe_executor,
                max_concurrent_activities=2,
            )
            for region in regions
        ]
        residents = ResidentChannels(client, gateway, namespace, settings.failover)
        metrics.RESIDENT_CHANNELS.bind(residents.counts)
        suspects = SuspectReporter(client)
        watch_tasks: list[asyncio.Task[None]] = []
        for region in regions:

            async def report(obs: JobObservation) -> None:
                residents.observe(obs)
                await signaller.job_status(obs)

            watcher = JobWatcher(
                region=region,
                gateway=gateway,
                namespace=None,  # every unit's namespace (and Jobs from before them)
                report=report,
                on_error=suspects.report,
                limits=settings.channels,
            )
            watch_tasks.append(asyncio.create_task(watcher.run(stop), name=f"watch-{region}"))
        try:
            await asyncio.gather(*(w.__aenter__() for w in workers))
            log.info("unit workers polling %s", ", ".join(region_task_queue(r) for r in regions))
            await stop.wait()
        finally:
            for task in watch_tasks:
                task.cancel()
            if pod_cache is not None:
                await asyncio.to_thread(pod_cache.stop)
            await residents.close()
            await asyncio.gather(
                *(w.__aexit__(None, None, None) for w in workers), return_exceptions=True
            )
            probe_executor.shutdown(wait=False, cancel_futures=True)
            clients.close()
            metrics.RESIDENT_CHANNELS.bind(None)
            if endpoint is not None:
                endpoint.close()
