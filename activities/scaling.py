"""Activities of the resource-scheduling loop (RegionControlWorkflow).

Unit side (`ScalingUnitActivities`, on the region's queue `region.<name>`): observe the
region's nodes, pods and pools; cordon, uncordon and drain nodes; resize pools through
`meridian.nodepools`. Sync: the kubernetes client and the cloud SDKs block, so the
worker runs them on its thread pool.

Central side (`ScalingCentralActivities`, local activities of the central worker): decide
with the pure policy (mode from the database, decisions and water level persisted), tell
tasks to move, and record what failed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.failures import kube_failure, pool_failure
from meridian.channels.signals import signal_tasks
from meridian.kube.errors import KubeError, KubeNotFound, KubeUnavailable
from meridian.nodepools import NodePoolError, NodePoolProvider, PoolState
from meridian.observability import record as measure
from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.regions.config import RegionsFile
from meridian.regions.listing import RegionListings
from meridian.regions.load import is_live, serverless_usage
from meridian.scaling import (
    DecisionKind,
    PendingDemand,
    PolicyInput,
    PoolObservation,
    RegionObservation,
    ScalingMode,
    decide,
)
from meridian.scaling.contracts import (
    ControlDetails,
    DecideScalingInput,
    DecideScalingResult,
    DrainNodeInput,
    DrainNodeResult,
    MoveTasksInput,
    MoveTasksResult,
    NodeActionInput,
    NodeActionResult,
    ObserveRegionInput,
    ObserveRegionResult,
    PoolActionResult,
    RecordOutcomeInput,
    RecordOutcomeResult,
    RemoveNodesInput,
    ScalePoolInput,
    ScalingSummary,
)
from meridian.scaling.loop import ScalingConfig, WaitingDemand, near_ceiling
from meridian.scaling.models import BurstInput
from meridian.scaling.observe import meridian_task_id, observe
from meridian.scaling.water import load_of
from meridian.serverless.kinds import is_serverless_node
from meridian.store import Store
from meridian.tasks.contracts import SIGNAL_INFRA_FAILURE, InfraFailure

if TYPE_CHECKING:
    # The central worker imports this module for ScalingCentralActivities and must not
    # import the kubernetes client (meridian/kube/gateway.py does).
    from meridian.kube.gateway import JobGateway

MERGE_PATCH = "application/merge-patch+json"


class ScalingUnitActivities:
    """Everything the control loop does inside one region's cluster and its pools."""

    def __init__(
        self,
        gateway: JobGateway,
        regions: RegionsFile,
        *,
        control_url: str | None,
        provider_clients: dict[str, Any] | None = None,
        listings: RegionListings | None = None,
    ):
        self.gateway = gateway
        self.regions = regions
        # Shared with the health probe of the same worker (one listing per tick).
        self.listings = listings or RegionListings(gateway)
        self.control_url = control_url
        # Injected SDK clients per driver (tests); empty: each adapter builds its own.
        self.provider_clients = provider_clients or {}
        self._providers: dict[tuple[str, str], NodePoolProvider] = {}

    # -- pools ------------------------------------------------------------------------------

    def _provider(self, region: str, pool: str) -> tuple[NodePoolProvider, dict[str, Any]]:
        config = next((p for p in self.regions.get(region).node_pools if p.name == pool), None)
        if config is None:
            raise ApplicationError(
                f"region {region} has no pool {pool} in the regions file",
                type="NodePoolNotFound",
                non_retryable=True,
            )
        pool_config: dict[str, Any] = {"region": region, **config.model_dump()}
        if config.driver == "kubesim" and self.control_url:
            pool_config.setdefault("control_url", self.control_url)
        key = (region, pool)
        if key not in self._providers:
            from meridian.nodepools import provider_for

            clients = self.provider_clients.get(config.driver) or {}
            self._providers[key] = provider_for(config.driver, pool_config, **clients)
        return self._providers[key], pool_config

    def _pools(self, region: str) -> tuple[list[tuple[PoolState, int, int]], dict[str, str]]:
        pools: list[tuple[PoolState, int, int]] = []
        errors: dict[str, str] = {}
        for config in self.regions.get(region).node_pools:
            try:
                provider, pool_config = self._provider(region, config.name)
                state = provider.describe(config.name)
            except (NodePoolError, ValueError) as exc:
                errors[config.name] = f"{type(exc).__name__}: {exc}"[:300]
                continue
            try:
                cpu = parse_cpu_millis(pool_config.get("cpu") or 0)
                mem = parse_memory_bytes(pool_config.get("memory") or 0)
            except ValueError:
                cpu = mem = 0
            pools.append((state, cpu, mem))
        return pools, errors

    @activity.defn(name="observe_region_nodes")
    def observe_region_nodes(self, inp: ObserveRegionInput) -> ObserveRegionResult:
        """Nodes (health, allocatable, what runs there), unschedulable pods and pools.

        From the region's last health-probe listing when it is recent (see
        `RegionListings`): the probe and this observation see the same cluster."""
        try:
            listing = self.listings.recent(inp.region)
        except KubeError as exc:
            raise kube_failure(exc) from exc
        pools, errors = self._pools(inp.region)
        now = time.time()
        observation, pending = observe(inp.region, now, listing.nodes, listing.pods, pools)
        virtual = [n for n in listing.nodes if is_serverless_node(n)]
        return ObserveRegionResult(
            observation=observation,
            pending_pods=pending,
            pool_errors=errors,
            serverless=serverless_usage(virtual, listing.pods, now) if virtual else None,
        )

    @activity.defn(name="scale_pool")
    def scale_pool(self, inp: ScalePoolInput) -> PoolActionResult:
        provider, _ = self._provider(inp.region, inp.pool)
        try:
            before = provider.set_desired(inp.pool, inp.desired)
        except NodePoolError as exc:
            raise pool_failure(exc) from exc
        return PoolActionResult(
            pool=inp.pool, desired_before=before.desired, desired_after=inp.desired
        )

    @activity.defn(name="remove_nodes")
    def remove_nodes(self, inp: RemoveNodesInput) -> PoolActionResult:
        """Remove named nodes; nodes already gone count as removed (a retried call)."""
        provider, _ = self._provider(inp.region, inp.pool)
        try:
            state = provider.describe(inp.pool)
            present = sorted(set(inp.nodes) & set(state.nodes))
            provider.remove_nodes(inp.pool, present)
        except NodePoolError as exc:
            raise pool_failure(exc) from exc
        return PoolActionResult(
            pool=inp.pool,
            desired_before=state.desired,
            desired_after=state.desired - len(present),
            removed=present,
        )

    # -- nodes ------------------------------------------------------------------------------

    def _set_unschedulable(self, region: str, node: str, value: bool) -> bool:
        core = self.gateway.clients.core(region)
        try:
            current = self.gateway.get_json(core.read_node, node)
            if bool((current.get("spec") or {}).get("unschedulable")) == value:
                return False
            # Merge patch of one field: no read-modify-write race with the kubelet's
            # status updates, and `null` removes the field as kubectl uncordon does.
            self.gateway.get_json(
                core.patch_node,
                node,
                {"spec": {"unschedulable": True if value else None}},
                _content_type=MERGE_PATCH,
            )
        except KubeNotFound:
            return False  # the node is gone: nothing left to cordon
        except KubeError as exc:
            raise kube_failure(exc) from exc
        return True

    @activity.defn(name="cordon_node")
    def cordon_node(self, inp: NodeActionInput) -> NodeActionResult:
        return NodeActionResult(
            node=inp.node, changed=self._set_unschedulable(inp.region, inp.node, True)
        )

    @activity.defn(name="uncordon_node")
    def uncordon_node(self, inp: NodeActionInput) -> NodeActionResult:
        return NodeActionResult(
            node=inp.node, changed=self._set_unschedulable(inp.region, inp.node, False)
        )

    @activity.defn(name="drain_node")
    def drain_node(self, inp: DrainNodeInput) -> DrainNodeResult:
        """Evict the node's pods through the Eviction API. A PodDisruptionBudget that
        refuses (429) is not an error: the pod stays and a later tick asks again."""
        from kubernetes import client

        core = self.gateway.clients.core(inp.region)
        result = DrainNodeResult(node=inp.node)
        try:
            pods = self.gateway.get_json(
                core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={inp.node}"
            )
        except KubeError as exc:
            raise kube_failure(exc) from exc
        for pod in pods.get("items") or []:
            meta = pod.get("metadata") or {}
            name, namespace = str(meta.get("name")), str(meta.get("namespace"))
            if not is_live(pod):
                continue
            if any(o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or []):
                continue  # kubectl drain --ignore-daemonsets: they would come right back
            if inp.skip_meridian_tasks and meridian_task_id(pod) is not None:
                result.skipped_tasks.append(f"{namespace}/{name}")
                continue
            options = (
                client.V1DeleteOptions(grace_period_seconds=inp.grace_period_seconds)
                if inp.grace_period_seconds is not None
                else None
            )
            body = client.V1Eviction(
                metadata=client.V1ObjectMeta(name=name, namespace=namespace),
                delete_options=options,
            )
            try:
                self.gateway.get_json(
                    core.create_namespaced_pod_eviction,
                    name,
                    namespace,
                    body,
                    retry_answered=False,  # its 429 is the PodDisruptionBudget speaking
                )
                result.evicted.append(f"{namespace}/{name}")
            except KubeNotFound:
                continue  # gone meanwhile
            except KubeUnavailable as exc:
                if exc.status == 429:
                    result.blocked.append(f"{namespace}/{name}")
                    continue
                raise kube_failure(exc) from exc
            except KubeError as exc:
                raise kube_failure(exc) from exc
        activity.logger.info(
            "drain %s/%s: evicted %d, blocked by PDB %d, tasks left to move %d",
            inp.region,
            inp.node,
            len(result.evicted),
            len(result.blocked),
            len(result.skipped_tasks),
        )
        return result


class ScalingCentralActivities:
    """Local activities of RegionControlWorkflow: decide, move tasks, record failures."""

    def __init__(
        self,
        store: Store,
        config: ScalingConfig,
        demand: WaitingDemand,
        client: Client | None = None,
    ):
        self.store = store
        self.config = config
        # The central worker's one cache of tasks waiting for room, shared by every
        # region's tick.
        self.demand = demand
        self.client = client

    @activity.defn(name="decide_scaling")
    def decide_scaling(self, inp: DecideScalingInput) -> DecideScalingResult:
        settings = self.config.for_region(inp.region)
        mode = self.store.get_scaling_mode(inp.region)
        observation = self._with_pool_facts(
            inp.observed.observation.model_copy(update={"at": inp.at.timestamp()})
        )
        demand = PendingDemand(
            pending_pods=inp.observed.pending_pods,
            waiting_tasks=self.demand.for_region(inp.region),
        )
        result = decide(
            PolicyInput(
                observation=observation,
                demand=demand,
                mode=mode,
                state=inp.state,
                settings=settings,
                tuning=self.config.tuning,
                burst=self._burst_input(inp),
            )
        )
        load = load_of(observation.nodes)
        self.store.record_water_level(
            region=inp.region,
            at=inp.at,
            level=result.water_level,
            cpu_requested=load.cpu_requested,
            cpu_allocatable=load.cpu_allocatable,
            mem_requested=load.mem_requested,
            mem_allocatable=load.mem_allocatable,
        )
        quiet: list[str] = []
        for decision in result.decisions:
            numbers = decision.model_dump(mode="json", exclude={"kind", "target", "reason", "at"})
            if decision.kind in (DecisionKind.NONE, DecisionKind.BURST):
                key = f"{decision.kind}:{decision.cause}:{decision.target}"
                quiet.append(key)
                if key in inp.quiet:
                    continue  # the same hold, or burst, as last tick: reported once
            measure.scaling_decision(inp.region, decision)
            self.store.record_scaling_decision(
                region=inp.region,
                at=inp.at,
                kind=decision.kind.value,
                target=decision.target,
                reason=decision.reason,
                numbers=numbers,
                applied=decision.applies,
            )
        draining, why = near_ceiling(mode, result.water_level, observation, settings)
        # Like draining, the advisory is published in `auto` only: `advise` records the
        # burst decision and changes nothing, placement included.
        since = result.state.burst_since
        advised = mode == ScalingMode.AUTO and since is not None
        self.store.merge_region_details(
            inp.region,
            ControlDetails(
                draining=draining,
                draining_reason=why,
                burst_advised=advised,
                burst_reason=result.state.burst_reason if advised else None,
                burst_since=datetime.fromtimestamp(since, UTC) if advised and since else None,
                scaling=ScalingSummary(
                    mode=mode,
                    water_level=result.water_level,
                    at=inp.at,
                    pools=observation.pools,
                    pool_errors=inp.observed.pool_errors,
                    pending_pods=len(demand.pending_pods),
                    waiting_tasks=len(demand.waiting_tasks),
                ),
            ),
        )
        return DecideScalingResult(
            mode=mode,
            water_level=result.water_level,
            decisions=result.decisions,
            state=result.state,
            quiet=quiet,
            tick_seconds=settings.tick_seconds,
            draining=draining,
        )

    def _with_pool_facts(self, observation: RegionObservation) -> RegionObservation:
        """The pools' stated node price and boot time, from the regions file."""
        try:
            stated = {p.name: p for p in self.config.regions.get(observation.region).node_pools}
        except KeyError:
            return observation
        pools: list[PoolObservation] = []
        for pool in observation.pools:
            config = stated.get(pool.name)
            if config is not None:
                pool = pool.model_copy(
                    update={
                        "price_per_hour": config.price_per_hour,
                        "boot_seconds": config.boot_seconds,
                    }
                )
            pools.append(pool)
        return observation.model_copy(update={"pools": pools})

    def _burst_input(self, inp: DecideScalingInput) -> BurstInput | None:
        try:
            serverless = self.config.regions.get(inp.region).serverless
        except KeyError:
            return None
        if serverless is None:
            return None
        return BurstInput(
            config=serverless,
            usage=inp.observed.serverless,
            max_wait_for_nodes_seconds=self.config.burst.max_wait_for_nodes_seconds,
        )

    @activity.defn(name="move_tasks")
    async def move_tasks(self, inp: MoveTasksInput) -> MoveTasksResult:
        """Tell each task on the node to move, through the failover machinery (the task
        deletes its Job and starts a new fenced attempt elsewhere)."""
        if self.client is None or not inp.task_ids:
            return MoveTasksResult(signalled=0)
        failure = InfraFailure(region=inp.region, reason=inp.reason, exclude_region=False)
        targets = ((task_id, failure) for task_id in sorted(set(inp.task_ids)))
        signalled = await signal_tasks(self.client, targets, SIGNAL_INFRA_FAILURE)
        return MoveTasksResult(signalled=signalled)

    @activity.defn(name="record_scaling_outcome")
    def record_scaling_outcome(self, inp: RecordOutcomeInput) -> RecordOutcomeResult:
        decision = inp.decision
        recorded = self.store.record_scaling_decision(
            region=inp.region,
            at=inp.at,
            kind=decision.kind.value,
            target=decision.target,
            reason=f"failed: {inp.error}"[:1000],
            numbers=decision.model_dump(mode="json", exclude={"kind", "target", "reason", "at"}),
            applied=False,
            decision_id=f"{inp.region}:{inp.at.isoformat()}:{decision.kind.value}:"
            f"{decision.target}:failed",
        )
        if recorded:
            measure.scaling_failed(inp.region, decision)
        return RecordOutcomeResult(recorded=recorded)
