"""Activities of the unit role: Jobs and probes in one region's cluster.

They run on the region's task queue (`region.<name>`), so scheduling an activity there
is how the engine reaches that region. Sync activities: the kubernetes client blocks,
so the worker runs them on a thread pool.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.failures import kube_failure
from meridian.channels.signals import signal_task
from meridian.kube.contracts import (
    NAMESPACE_NOT_READY,
    CreateJobInput,
    CreateJobResult,
    DeleteJobResult,
    DeleteJobsInput,
    DeleteJobsResult,
    EnsureNamespaceInput,
    EnsureNamespaceResult,
    JobKey,
    JobObservation,
    JobPhase,
    JobRef,
    ListJobKeysInput,
    ListJobKeysResult,
)
from meridian.kube.errors import KubeError
from meridian.kube.jobs import observe_job
from meridian.kube.namespaces import UnitNamespaces
from meridian.regions.contracts import (
    PROBE_REPLY_RESERVE_SECONDS,
    RegionProbeInput,
    RegionProbeResult,
    probe_api_budget_seconds,
)
from meridian.regions.listing import RegionListings
from meridian.regions.load import compute_load
from meridian.regions.models import NetworkSample, ProbeSnapshot
from meridian.regions.probing import TcpProber, build_prober
from meridian.sweeps.contracts import SweepRegionResult, SweepRunningInput
from meridian.tasks.contracts import SIGNAL_JOB_STATUS
from meridian.tasks.spec import TaskStatus

if TYPE_CHECKING:
    from temporalio.client import Client

    # Annotations only: the central worker imports this module (its workflows name these
    # activities) and must not import the kubernetes client, as the gateway does.
    from meridian.kube.gateway import JobGateway
    from meridian.settings import Settings


class JobActivities:
    def __init__(
        self,
        gateway: JobGateway,
        *,
        namespace: str,
        control_url: str | None = None,
        client: Client | None = None,
        prober: TcpProber | None = None,
        listings: RegionListings | None = None,
        namespaces: UnitNamespaces | None = None,
    ):
        self.gateway = gateway
        # The services' own: where Jobs created before units had namespaces still are.
        self.namespace = namespace
        # Where tasks run: their business unit's namespace, made before its first Job.
        self.namespaces = namespaces or UnitNamespaces(gateway, services_namespace=namespace)
        # Shared with the scaling observation of the same worker (one listing per tick).
        self.listings = listings or RegionListings(gateway)
        # Network samples: from `prober` (tcp mode) when given, else from kubesim at
        # `control_url` (kubesim mode), else none.
        self.control_url = control_url
        self.client = client
        self.prober = prober
        self._http: httpx.Client | None = None

    @classmethod
    def from_settings(
        cls,
        gateway: JobGateway,
        settings: Settings,
        *,
        client: Client | None = None,
        listings: RegionListings | None = None,
    ) -> JobActivities:
        """As a unit worker builds them: network samples per `settings.network_probe`."""
        mode = settings.resolved_network_probe_mode
        return cls(
            gateway,
            namespace=settings.kubernetes_namespace,
            control_url=settings.resolved_kubesim_control_url if mode == "kubesim" else None,
            client=client,
            prober=build_prober(settings),
            listings=listings,
            namespaces=UnitNamespaces(
                gateway,
                prefix=settings.tasks_namespace_prefix,
                services_namespace=settings.kubernetes_namespace,
                quotas=settings.quotas,
            ),
        )

    @activity.defn(name="ensure_namespace")
    def ensure_namespace(self, inp: EnsureNamespaceInput) -> EnsureNamespaceResult:
        """The unit's namespace in the region, made ready before the task's first create.

        An activity of its own so that the set-up has its own time budget: a create
        only creates, one request, even in a slow region. Once per unit and region in
        this process; later calls answer from the cache without a request."""
        try:
            return EnsureNamespaceResult(
                namespace=self.namespaces.ensure(inp.region, inp.business_unit)
            )
        except KubeError as exc:
            raise kube_failure(exc) from exc

    @activity.defn(name="create_job")
    def create_job(self, inp: CreateJobInput) -> CreateJobResult:
        unit = inp.spec.business_unit
        own = self.namespaces.name_for(unit)
        if inp.only_if_namespace_ready and inp.namespace is None:
            if self.namespaces.ready(inp.region, unit) is None:
                # Nothing was sent: the workflow prepares it in its own step, then
                # creates again (the set-up must not eat this create's budget).
                raise ApplicationError(
                    f"namespace {own} not prepared in {inp.region} by this worker yet",
                    type=NAMESPACE_NOT_READY,
                    non_retryable=True,
                    # Expected once per unit, region and worker process: logged at DEBUG
                    # and kept out of the SDK's failure metrics, not a warning each time.
                    category=ApplicationErrorCategory.BENIGN,
                )
            inp = inp.model_copy(update={"namespace": own})
        # An input recorded before namespaces existed names the services' namespace: a
        # retried create must land where its workflow will look for it.
        namespace = inp.namespace or own
        try:
            ensure = None
            if namespace == own:
                if inp.namespace is None:
                    # From a workflow without the ensure_namespace step: set up here.
                    self.namespaces.ensure(inp.region, unit)
                # Deleted since it was ensured (by whichever worker): made again, whole.
                ensure = partial(self.namespaces.ensure, inp.region, unit, again=True)
            if _caller_gave_up():
                # Queued behind a backlog (a failover's creates) past the workflow's
                # deadline: it has moved on, and a Job made now would run beside the
                # one it makes elsewhere until the job sweep found it.
                raise ApplicationError(
                    f"create_job started after its deadline: Job for attempt "
                    f"{inp.attempt} not sent to {inp.region}",
                    type="DeadlinePassed",
                )
            name, created = self.gateway.create_job(
                inp.region,
                namespace,
                inp.task_id,
                inp.spec,
                inp.attempt,
                burst=inp.burst,
                ensure_namespace=ensure,
            )
        except KubeError as exc:
            raise kube_failure(exc) from exc
        return CreateJobResult(job_name=name, created=created, namespace=namespace)

    @activity.defn(name="read_job")
    def read_job(self, ref: JobRef) -> JobObservation:
        try:
            return self.gateway.observe(
                ref.region,
                ref.namespace or self.namespace,
                ref.job_name,
                task_id=ref.task_id,
                attempt=ref.attempt,
                source="backstop",
            )
        except KubeError as exc:
            raise kube_failure(exc) from exc

    @activity.defn(name="delete_job")
    def delete_job(self, ref: JobRef) -> DeleteJobResult:
        try:
            namespace = ref.namespace or self.gateway.locate_job(
                ref.region, ref.task_id, ref.attempt
            )
            if namespace is None:
                return DeleteJobResult(deleted=False)  # it exists nowhere
            return DeleteJobResult(
                deleted=self.gateway.delete_job(ref.region, namespace, ref.job_name)
            )
        except KubeError as exc:
            raise kube_failure(exc) from exc

    @activity.defn(name="probe_region")
    def probe_region(self, inp: RegionProbeInput) -> RegionProbeResult:
        """Nodes and pods → load; network samples to the data sources, when any are due.

        The probe answers within its own deadline whatever the API does: a slow API is
        reported as slow (its latency), one that does not answer in time as unreachable,
        and neither as a unit worker that did not answer.
        """
        started = time.monotonic()
        # The server always sets start-to-close (from schedule-to-close if need be).
        timeout = activity.info().start_to_close_timeout
        budget = probe_api_budget_seconds(timeout.total_seconds() if timeout else 0.0)
        with self.gateway.counting() as stats:
            try:
                # Always a fresh listing: the probe measures the API. The scaling
                # observation then reads this one.
                listing = self.listings.fetch(inp.region, within=budget)
            except KubeError as exc:
                error = str(exc)
                if time.monotonic() - started >= budget:
                    error = f"API did not answer within {budget:.1f}s ({exc})"
                return RegionProbeResult(region=inp.region, reachable=False, error=error[:300])
        latency_ms = (time.monotonic() - started) * 1000.0
        snapshot = ProbeSnapshot(
            **compute_load(listing.nodes, listing.pods, now=time.time()).model_dump(),
            network_samples=self._network_samples(inp.region),
        )
        return RegionProbeResult(
            region=inp.region,
            reachable=True,
            snapshot=snapshot,
            # The share of this probe's requests answered with 429/5xx (retries included).
            api_error_rate=stats.error_rate,
            api_latency_ms=round(latency_ms, 1),
        )

    def _network_samples(self, region: str) -> list[NetworkSample]:
        if self.prober is not None:
            # The prober measures from this process's host, and one unit process may host
            # several compute regions: one shared round serves each of them (delivered
            # once per region). Between rounds nothing is new, and [] says so.
            return [NetworkSample.model_validate(s) for s in self.prober.measure(region)]
        # kubesim simulates a separate network path per compute region.
        if not self.control_url:
            return []
        if self._http is None:
            # One client for the worker's life: building one per probe re-creates an
            # SSL context each time, which was a third of the unit worker's CPU.
            self._http = httpx.Client(timeout=2.0)
        try:
            # Within the probe's reply reserve; a missed round only means no new samples.
            response = self._http.get(
                f"{self.control_url}/sim/regions/{region}/network",
                timeout=PROBE_REPLY_RESERVE_SECONDS / 2,
            )
            response.raise_for_status()
            paths = response.json().get("paths") or []
            return [NetworkSample.model_validate(p) for p in paths]
        except (httpx.HTTPError, ValueError):  # pydantic's ValidationError is a ValueError
            return []

    # -- sweeps ----------------------------------------------------------------------------

    @activity.defn(name="sweep_running")
    async def sweep_running(self, inp: SweepRunningInput) -> SweepRegionResult:
        """Compare the active tasks' Jobs with what the database says; signal the drift."""
        try:
            observations, requests = await asyncio.to_thread(
                self.gateway.counted,
                self.gateway.list_observations,
                inp.region,
                None,  # every unit's namespace
                page_size=inp.page_size,
                source="running-sweep",
                task_ids={t.task_id for t in inp.tasks},
            )
        except KubeError as exc:
            raise kube_failure(exc) from exc
        by_key = {(o.task_id, o.attempt): o for o in observations}
        found: Counter[str] = Counter()
        drift = []
        for task in inp.tasks:
            obs = by_key.get((task.task_id, task.attempt))
            if obs is None:
                if task.status is TaskStatus.RUNNING and task.job_name:
                    found["missing"] += 1
                    drift.append(task.task_id)
                    # The workflow confirms a missing Job with its own read before acting.
                    await self._signal_missing(
                        task.task_id, task.attempt, task.job_name, inp.region
                    )
                continue
            differs = (
                obs.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED)
                or (obs.phase is JobPhase.RUNNING and task.status is not TaskStatus.RUNNING)
                or obs.unschedulable_since is not None
            )
            if differs:
                found[obs.phase.value] += 1
                drift.append(task.task_id)
                await self._signal(obs)
        return SweepRegionResult(
            region=inp.region,
            jobs_seen=len(observations),
            found=dict(found),
            fixed={"signalled": len(drift)},
            requests=requests,
        )

    async def _signal(self, obs: JobObservation) -> None:
        if self.client is not None:
            await signal_task(self.client, obs.task_id, SIGNAL_JOB_STATUS, obs)

    async def _signal_missing(self, task_id: str, attempt: int, job_name: str, region: str) -> None:
        await self._signal(
            JobObservation(
                task_id=task_id,
                attempt=attempt,
                region=region,
                job_name=job_name,
                phase=JobPhase.MISSING,
                source="running-sweep",
            )
        )

    @activity.defn(name="list_job_keys")
    def list_job_keys(self, inp: ListJobKeysInput) -> ListJobKeysResult:
        try:
            with self.gateway.counting() as counter:
                jobs = self._job_keys(inp)
        except KubeError as exc:
            raise kube_failure(exc) from exc
        return ListJobKeysResult(region=inp.region, jobs=jobs, requests=counter.requests)

    def _job_keys(self, inp: ListJobKeysInput) -> list[JobKey]:
        jobs: list[JobKey] = []
        # Every unit's namespace, and the services' (Jobs from before namespaces).
        for page in self.gateway.list_jobs_raw(inp.region, None, page_size=inp.page_size):
            for raw in page:
                obs = observe_job(raw, inp.region, source="job-sweep")
                if obs is None:
                    continue
                namespace = obs.namespace or self.namespace
                terminal = obs.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED)
                if obs.phase is JobPhase.FAILED:
                    pods = self.gateway.job_pods(inp.region, namespace, obs.job_name)
                    obs = observe_job(raw, inp.region, pods, source="job-sweep") or obs
                jobs.append(
                    JobKey(
                        job_name=obs.job_name,
                        task_id=obs.task_id,
                        attempt=obs.attempt,
                        phase=obs.phase,
                        observation=obs if terminal else None,
                        namespace=namespace,
                    )
                )
        return jobs

    @activity.defn(name="delete_jobs")
    def delete_jobs(self, inp: DeleteJobsInput) -> DeleteJobsResult:
        deleted = []
        try:
            with self.gateway.counting() as counter:
                for name in inp.job_names:
                    namespace = inp.namespaces.get(name, self.namespace)
                    self.gateway.delete_job(inp.region, namespace, name)
                    deleted.append(name)
        except KubeError as exc:
            raise kube_failure(exc) from exc
        return DeleteJobsResult(region=inp.region, deleted=deleted, requests=counter.requests)


def _caller_gave_up(margin_seconds: float = 0.5) -> bool:
    """Whether this activity's deadline (schedule-to-close, or this attempt's
    start-to-close) has passed, or is too near for a request to be worth sending: the
    server has timed it out, or is about to, and its workflow acts on that."""
    if not activity.in_activity():
        return False  # called directly (tests, tools): no caller's deadline
    info = activity.info()
    now = datetime.now(UTC)
    deadlines = []
    if info.schedule_to_close_timeout:
        deadlines.append(info.scheduled_time + info.schedule_to_close_timeout)
    if info.start_to_close_timeout:
        deadlines.append(info.started_time + info.start_to_close_timeout)
    return bool(deadlines) and (min(deadlines) - now).total_seconds() < margin_seconds
