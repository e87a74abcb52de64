"""Job operations against one region's cluster, with errors mapped at the boundary."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from opentelemetry import trace

from meridian.kube.clients import ClusterClients
from meridian.kube.contracts import JobObservation, JobPhase
from meridian.kube.errors import KubeConflict, KubeNotFound, KubeUnavailable, translate
from meridian.kube.jobs import DEFAULT_POLICY, build_job, observe_job
from meridian.kube.labels import LABEL_ATTEMPT, LABEL_TASK_ID, MANAGED_SELECTOR
from meridian.serverless.plan import BurstPlan
from meridian.settings import PolicySettings
from meridian.tasks.spec import TaskSpec, job_name_for

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)
_CREATED = {True: "created", False: "already there"}
# Who owns the fields of what Meridian applies (server-side apply).
FIELD_MANAGER = "meridian"
# Pods still holding (or asking for) resources; `meridian.regions.load.is_live` in the API.
LIVE_PODS_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"


@dataclass
class CallStats:
    """Requests made and how many of them the API answered with an error (429, 5xx)."""

    requests: int = 0
    errors: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class JobGateway:
    """Everything the engine does to Jobs. Sync: it runs in activity threads.

    An API that answers 429 or 5xx is there but failing (overloaded, a flaky apiserver):
    each request is tried up to `answered_attempts` times, after the answer's
    Retry-After (at most `max_retry_wait`, so a probe keeps its deadline), as client-go
    does. A refused connection or a timeout is a dead API: it raises at once, because
    failover detection waits on that answer. Retrying a create is safe (409 is success),
    and so is a delete (404 is gone).
    """

    def __init__(
        self,
        clients: ClusterClients,
        answered_attempts: int = 3,
        max_retry_wait: float = 0.25,
        *,
        policy: PolicySettings = DEFAULT_POLICY,
    ):
        self.clients = clients
        self.policy = policy  # the Jobs' deadlines by kind and their TTL
        self.answered_attempts = answered_attempts
        self.max_retry_wait = max_retry_wait
        self.requests = 0  # Kubernetes requests made by this process, for the benchmarks
        self._counting = threading.local()  # requests of the operation running in a thread
        # Threads for a second request sent alongside the caller's (nodes_and_live_pods);
        # none is started until one is needed.
        self._side = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kube-side")

    @contextmanager
    def counting(self) -> Iterator[CallStats]:
        """Count the requests this thread makes inside the block (a sweep's own cost,
        a probe's error rate)."""
        stats = CallStats()
        self._counting.stats = stats
        try:
            yield stats
        finally:
            self._counting.stats = None

    def counted(self, fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, int]:
        """Run `fn` in this thread; (its result, the Kubernetes requests it made)."""
        with self.counting() as stats:
            result = fn(*args, **kwargs)
        return result, stats.requests

    def _call(
        self,
        fn: Any,
        *args: Any,
        retry_answered: bool = True,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """One request, mapped errors. `retry_answered=False` for a call whose 429 means
        something of its own (an eviction blocked by a PodDisruptionBudget). `deadline`
        (time.monotonic()) bounds the whole call, retries included: a health probe must
        answer in time even from a slow API."""
        stats: CallStats | None = getattr(self._counting, "stats", None)
        attempts = self.answered_attempts if retry_answered else 1
        for attempt in range(1, attempts + 1):
            timeout = self.clients.timeout
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise KubeUnavailable("no answer before the deadline")
                timeout = (min(timeout[0], left), min(timeout[1], left))
            self.requests += 1
            if stats is not None:
                stats.requests += 1
            try:
                return fn(*args, _request_timeout=timeout, **kwargs)
            except Exception as exc:  # noqa: BLE001 - mapped to our own types just below
                error = translate(exc)
                answered = isinstance(error, KubeUnavailable) and bool(error.status)
                if answered and stats is not None:
                    stats.errors += 1
                if not answered or attempt == attempts:
                    raise error from exc
            wait = min(error.retry_after or 0.1, self.max_retry_wait)
            if deadline is not None and time.monotonic() + wait >= deadline:
                raise error
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def get_json(self, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        response = self._call(fn, *args, _preload_content=False, **kwargs)
        try:
            return dict(json.loads(response.data))
        finally:
            response.release_conn()

    def nodes_and_live_pods(
        self, region: str, *, within: float | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The region's nodes and every pod still holding resources (not finished): what
        both the health probe and the scaling loop compute a water level from.

        The two lists go out together, so a slow API costs one round trip, not two.
        `within` (seconds) bounds both, retries included; past it the API counts as not
        answering (KubeUnavailable).
        """
        core = self.clients.core(region)
        deadline = None if within is None else time.monotonic() + within
        pod_stats = CallStats()

        def live_pods() -> dict[str, Any]:
            self._counting.stats = pod_stats  # the pool thread counts for the caller
            try:
                return self.get_json(
                    core.list_pod_for_all_namespaces,
                    field_selector=LIVE_PODS_SELECTOR,
                    deadline=deadline,
                )
            finally:
                self._counting.stats = None

        pending = self._side.submit(live_pods)
        try:
            nodes = self.get_json(core.list_node, deadline=deadline)
            wait = None if deadline is None else max(0.0, deadline - time.monotonic()) + 0.2
            try:
                pods = pending.result(timeout=wait)
            except FutureTimeout:
                raise KubeUnavailable("no answer before the deadline") from None
        finally:
            stats: CallStats | None = getattr(self._counting, "stats", None)
            if stats is not None:
                stats.requests += pod_stats.requests
                stats.errors += pod_stats.errors
        return nodes, pods

    def list_nodes(self, region: str, *, within: float | None = None) -> dict[str, Any]:
        """The region's nodes, `within` seconds (retries included) or KubeUnavailable:
        the probe's fresh call when its pods come from the pod cache."""
        deadline = None if within is None else time.monotonic() + within
        return self.get_json(self.clients.core(region).list_node, deadline=deadline)

    def ensure_namespace(self, region: str, namespace: str) -> None:
        core = self.clients.core(region)
        try:
            self._call(core.read_namespace, namespace)
        except KubeNotFound:
            body = client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
            try:
                self._call(core.create_namespace, body)
            except KubeConflict:
                pass

    # Namespace, NetworkPolicy, ResourceQuota: (API, patch method, namespaced).
    _APPLY = {
        "Namespace": ("core", "patch_namespace", False),
        "NetworkPolicy": ("networking", "patch_namespaced_network_policy", True),
        "ResourceQuota": ("core", "patch_namespaced_resource_quota", True),
    }

    def apply(self, region: str, manifest: dict[str, Any]) -> None:
        """Server-side apply: one request whether the object is absent (it is created),
        stale (a quota changed in the settings, a label an operator removed) or already
        right. Fields other managers own (an operator's own labels) are left alone;
        `force` takes back ours if someone else changed them."""
        api_name, patch, namespaced = self._APPLY[manifest["kind"]]
        api = getattr(self.clients, api_name)(region)
        meta = manifest["metadata"]
        where = (meta["namespace"],) if namespaced else ()
        self._call(
            getattr(api, patch),
            meta["name"],
            *where,
            manifest,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    def apply_together(self, region: str, manifests: list[dict[str, Any]]) -> None:
        """Apply objects that do not depend on each other all at once: one round trip
        however many there are. Each in a thread of its own, not the shared side pool:
        this is a rare set-up, and a slow region's requests must not queue behind them
        another region's probe. The first failure is raised once all have answered."""
        stats: CallStats | None = getattr(self._counting, "stats", None)
        counts = [CallStats() for _ in manifests]

        def one(manifest: dict[str, Any], count: CallStats) -> None:
            self._counting.stats = count  # the pool thread counts for the caller
            try:
                self.apply(region, manifest)
            finally:
                self._counting.stats = None

        try:
            with ThreadPoolExecutor(
                max_workers=max(1, len(manifests)), thread_name_prefix="kube-apply"
            ) as pool:
                futures = [pool.submit(one, m, c) for m, c in zip(manifests, counts, strict=True)]
            for future in futures:
                future.result()
        finally:
            if stats is not None:
                stats.requests += sum(c.requests for c in counts)
                stats.errors += sum(c.errors for c in counts)

    def create_job(
        self,
        region: str,
        namespace: str,
        task_id: str,
        spec: TaskSpec,
        attempt: int,
        *,
        burst: BurstPlan | None = None,
        ensure_namespace: Callable[[], object] | None = None,
    ) -> tuple[str, bool]:
        """Create the attempt's Job; (name, created). An existing Job of that name is success.

        A missing namespace is made by `ensure_namespace` (a unit's, with its policies)
        or else created bare, then the create is sent again.

        A Job refused by an admission policy (Pod Security) raises KubeForbidden: the
        task's own final failure, never retried elsewhere."""
        job = build_job(task_id, spec, attempt, namespace, policy=self.policy, burst=burst)
        name = job_name_for(task_id, attempt)
        # The trace's last link: the activity's span says which activity ran, this one
        # which cluster call it made (a no-op span when tracing is off).
        attributes: dict[str, str | int] = {
            "meridian.region": region,
            "meridian.task_id": task_id,
            "meridian.attempt": attempt,
            "k8s.namespace.name": namespace,
            "k8s.job.name": name,
        }
        with _tracer.start_as_current_span("CreateJob", attributes=attributes) as span:
            name, created = self._create_job(region, namespace, name, job, ensure_namespace)
            span.set_attribute("meridian.job_created", created)
            # One line per attempt: where the task's pod is to be found.
            log.info("Job %s/%s %s in %s", namespace, name, _CREATED[created], region)
            return name, created

    def _create_job(
        self,
        region: str,
        namespace: str,
        name: str,
        job: Any,
        ensure_namespace: Callable[[], object] | None,
    ) -> tuple[str, bool]:
        batch = self.clients.batch(region)
        try:
            self._call(batch.create_namespaced_job, namespace, job)
            return name, True
        except KubeConflict:
            return name, False
        except KubeNotFound:
            # The namespace is missing (a fresh cluster, or deleted since it was made):
            # create it and retry.
            if ensure_namespace is not None:
                ensure_namespace()
            else:
                self.ensure_namespace(region, namespace)
            try:
                self._call(batch.create_namespaced_job, namespace, job)
                return name, True
            except KubeConflict:
                return name, False

    def delete_job(self, region: str, namespace: str, name: str) -> bool:
        """Delete a Job and its pods now; False if it was already gone."""
        batch = self.clients.batch(region)
        body = client.V1DeleteOptions(propagation_policy="Background", grace_period_seconds=0)
        try:
            self._call(batch.delete_namespaced_job, name, namespace, body=body)
            return True
        except KubeNotFound:
            return False

    def job_pods(self, region: str, namespace: str, job_name: str) -> list[dict[str, Any]]:
        core = self.clients.core(region)
        data = self.get_json(
            core.list_namespaced_pod, namespace, label_selector=f"job-name={job_name}"
        )
        return list(data.get("items") or [])

    def observe(
        self,
        region: str,
        namespace: str,
        job_name: str,
        *,
        task_id: str,
        attempt: int,
        source: str,
    ) -> JobObservation:
        """Read one Job and its pods; a missing Job is an observation too."""
        batch = self.clients.batch(region)
        try:
            job = self.get_json(batch.read_namespaced_job, job_name, namespace)
        except KubeNotFound:
            return JobObservation(
                task_id=task_id,
                attempt=attempt,
                region=region,
                job_name=job_name,
                phase=JobPhase.MISSING,
                source=source,
                namespace=namespace,
            )
        pods = self.job_pods(region, namespace, job_name)
        obs = observe_job(job, region, pods, source=source)
        if obs is None:
            return JobObservation(
                task_id=task_id,
                attempt=attempt,
                region=region,
                job_name=job_name,
                phase=JobPhase.MISSING,
                source=source,
                reason="not a Meridian Job",
            )
        return obs

    def locate_job(self, region: str, task_id: str, attempt: int) -> str | None:
        """The namespace of an attempt's Job, wherever it is; None if it exists nowhere
        (a create that never answered may or may not have landed)."""
        selector = f"{LABEL_TASK_ID}={task_id},{LABEL_ATTEMPT}={attempt}"
        for page in self.list_jobs_raw(region, None, label_selector=selector):
            for job in page:
                namespace = (job.get("metadata") or {}).get("namespace")
                if namespace:
                    return str(namespace)
        return None

    def list_jobs_raw(
        self,
        region: str,
        namespace: str | None,
        *,
        page_size: int = 500,
        label_selector: str = "",
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of managed Jobs (raw JSON) by label selector, following `continue`.

        `namespace` None: in every namespace (each unit has its own)."""
        batch = self.clients.batch(region)
        selector = MANAGED_SELECTOR + (f",{label_selector}" if label_selector else "")
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"label_selector": selector, "limit": page_size}
            if token:
                kwargs["_continue"] = token
            if namespace is None:
                data = self.get_json(batch.list_job_for_all_namespaces, **kwargs)
            else:
                data = self.get_json(batch.list_namespaced_job, namespace, **kwargs)
            yield list(data.get("items") or [])
            token = (data.get("metadata") or {}).get("continue")
            if not token:
                return

    def list_observations(
        self,
        region: str,
        namespace: str | None,
        *,
        page_size: int = 500,
        source: str,
        task_ids: set[str] | None = None,
    ) -> list[JobObservation]:
        """Every managed Job in the region (in `namespace`, or in all when None) as
        observations, pods read only for failures."""
        result: list[JobObservation] = []
        for page in self.list_jobs_raw(region, namespace, page_size=page_size):
            for job in page:
                labels = (job.get("metadata") or {}).get("labels") or {}
                if task_ids is not None and labels.get(LABEL_TASK_ID) not in task_ids:
                    continue
                obs = observe_job(job, region, source=source)
                if obs is None:
                    continue
                if obs.phase is JobPhase.FAILED:
                    # Only failures need the pod: was it the task or the node?
                    obs = (
                        observe_job(
                            job,
                            region,
                            self.job_pods(region, obs.namespace or namespace or "", obs.job_name),
                            source=source,
                        )
                        or obs
                    )
                result.append(obs)
        return result
