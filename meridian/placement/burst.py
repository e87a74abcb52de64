"""Whether a region takes a task on its serverless pods, and at what cost.

The rule (settings `burst`, README "Serverless burst"):
- `nodes`: never.
- `serverless`: always, where the region declares serverless capacity with room.
- `auto` (a resident task under auto counts as `nodes`): nodes first. A region whose
  nodes cannot take the task now bursts it when its pools are at their ceiling (no node
  is coming), or when a new node would take longer to boot than the task is worth
  waiting for (`burst.max_wait_for_nodes_seconds`), or while the region control loop's
  burst advisory stands (meridian/scaling/burst.py).
Either way the serverless room must hold the billed size: the declared limits minus
what the probe saw running on the virtual node, and no burst pod already waiting for
quota (the cloud refusing pods is how an exhausted quota shows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from meridian.placement.format import cpu_text, memory_text
from meridian.placement.types import FilterCode, RegionSnapshot
from meridian.serverless.models import ServerlessConfig
from meridian.serverless.plan import BurstPlan, plan_burst
from meridian.serverless.sizing import SizeError
from meridian.settings import BurstSettings
from meridian.tasks.spec import Capacity

if TYPE_CHECKING:
    from meridian.placement.memo import PlacementMemo

# What the nodes' rejection may be for an auto task to burst instead: full, at the
# water ceiling, draining (the control loop drains a region at its ceiling with no room
# to grow) or without a Ready node. Health and constraints are never bypassed.
BURSTABLE = frozenset(
    {FilterCode.CAPACITY, FilterCode.SATURATED, FilterCode.DRAINING, FilterCode.NO_NODES}
)

_SYMBOLS = {"USD": "$", "CNY": "¥", "EUR": "€", "JPY": "¥", "GBP": "£"}


def money(amount: float, currency: str) -> str:
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{amount:.4f}" if symbol else f"{amount:.4f} {currency}"


@dataclass(frozen=True, slots=True)
class Burst:
    plan: BurstPlan
    cost_term: float  # in [0, 1]: what the score loses, times the weight
    explanation: str


def plan_or_reason(config: ServerlessConfig, cpu_millis: int, memory_bytes: int) -> BurstPlan | str:
    """The burst plan for the size, or why the config cannot take it (SizeError's text)."""
    try:
        return plan_burst(config, cpu_millis, memory_bytes)
    except SizeError as exc:
        return str(exc)


def config_limits(config: ServerlessConfig) -> tuple[int, int]:
    """The config's (CPU millis, memory bytes) limits: properties that parse quantities."""
    return config.max_cpu_millis, config.max_memory_bytes


def burst_choice(
    snap: RegionSnapshot,
    capacity: Capacity,
    cpu_millis: int,
    memory_bytes: int,
    nodes_rejection: tuple[FilterCode, str] | None,
    settings: BurstSettings,
    memo: PlacementMemo | None = None,
) -> Burst | str:
    """The burst for this region, or why not (a sentence). Only call for `serverless`,
    or for `auto` when the nodes rejected the task for a reason in BURSTABLE.
    `memo` shares plans and the config's parsed limits between decisions."""
    room = snap.serverless
    if room is None:
        return "declares no serverless capacity"
    kind = room.config.kind.value
    usage = room.usage
    if usage is None or usage.nodes == 0:
        return f"serverless ({kind}) not seen by the probe yet"
    if not usage.ready:
        return f"serverless ({kind}) virtual node NotReady"
    if usage.waiting_pods:
        return f"serverless ({kind}) quota exhausted: {usage.waiting_pods} burst pod(s) waiting"
    if memo is not None:
        plan = memo.plan(room.config, cpu_millis, memory_bytes)
        limits = memo.limits(room.config)
    else:
        plan = plan_or_reason(room.config, cpu_millis, memory_bytes)
        limits = config_limits(room.config)
    if isinstance(plan, str):
        return plan
    short = _quota_short(snap, plan, limits)
    if short:
        held = snap.reserved
        if held is not None and held.serverless_tasks:
            short += f" ({held.serverless_text()})"
        return f"serverless ({kind}) quota full: {short}"
    nodes_cost = _node_share_cost(snap, cpu_millis, memory_bytes)
    numbers = _numbers(snap, plan, nodes_cost, limits)
    if capacity is Capacity.AUTO:
        why = _auto_reason(snap, nodes_rejection, settings)
        if why is None:
            return f"would wait for nodes: {_wait_text(snap, settings)} ({numbers})"
    else:
        why = "the task asks for serverless capacity"
    estimate = money(plan.cost_per_hour, plan.currency)
    text = f"would burst to serverless ({kind}), est. {estimate}/h: {why}; {numbers}"
    if nodes_cost is None:
        term = 1.0
    else:
        total = plan.cost_per_hour + nodes_cost
        term = plan.cost_per_hour / total if total > 0 else 0.0
    return Burst(plan=plan, cost_term=term, explanation=text)


def _auto_reason(
    snap: RegionSnapshot,
    nodes_rejection: tuple[FilterCode, str] | None,
    settings: BurstSettings,
) -> str | None:
    full = nodes_rejection[1] if nodes_rejection else "nodes full"
    if snap.burst_advised:
        # First, so that the task's placement names the loop's decision while it stands:
        # the loop weighed the pool that would really grow, with the provider's bounds.
        advice = f": {snap.burst_advice}" if snap.burst_advice else ""
        return f"{full}, and the region control loop advises bursting{advice}"
    if snap.pools.at_ceiling:
        return f"{full}, and the pools are at their ceiling"
    boot = snap.pools.boot_seconds
    if boot is not None and boot > settings.max_wait_for_nodes_seconds:
        return (
            f"{full}, and a new node takes {boot:.0f}s to boot, longer than the "
            f"{settings.max_wait_for_nodes_seconds:.0f}s a task waits for nodes"
        )
    return None


def _wait_text(snap: RegionSnapshot, settings: BurstSettings) -> str:
    boot = snap.pools.boot_seconds
    if boot is None:
        return "the pools' boot time is not stated, so nodes are awaited"
    return (
        f"a new node boots in {boot:.0f}s, within the "
        f"{settings.max_wait_for_nodes_seconds:.0f}s a task waits for nodes"
    )


def _numbers(
    snap: RegionSnapshot, plan: BurstPlan, nodes_cost: float | None, limits: tuple[int, int]
) -> str:
    assert snap.serverless is not None
    config = snap.serverless.config
    usage = snap.serverless.usage
    assert usage is not None
    boot = snap.pools.boot_seconds
    max_cpu, max_memory = limits
    nodes = "unknown" if nodes_cost is None else f"{money(nodes_cost, plan.currency)}/h"
    held = snap.reserved
    since = f" ({held.serverless_text()})" if held and held.serverless_tasks else ""
    return (
        f"waiting demand {snap.pending_pods} pod(s), node boot "
        f"{'unknown' if boot is None else f'{boot:.0f}s'}, serverless headroom "
        f"{config.max_pods - usage.pods} pods, "
        f"{cpu_text(max(0, max_cpu - usage.cpu_millis))} CPU, "
        f"{memory_text(max(0, max_memory - usage.memory_bytes))}{since}; billed "
        f"{plan.billed.cpu} CPU {plan.billed.memory} at "
        f"{money(plan.cost_per_hour, plan.currency)}/h vs nodes {nodes}"
    )


def _quota_short(snap: RegionSnapshot, plan: BurstPlan, limits: tuple[int, int]) -> str | None:
    assert snap.serverless is not None and snap.serverless.usage is not None
    config, usage = snap.serverless.config, snap.serverless.usage
    max_cpu, max_memory = limits
    if usage.pods + 1 > config.max_pods:
        return f"{usage.pods} of {config.max_pods} pods"
    if usage.cpu_millis + plan.billed.cpu_millis > max_cpu:
        return f"{cpu_text(usage.cpu_millis)} of {cpu_text(max_cpu)} CPU used"
    if usage.memory_bytes + plan.billed.memory_bytes > max_memory:
        return f"{memory_text(usage.memory_bytes)} of {memory_text(max_memory)} memory used"
    return None


def _node_share_cost(snap: RegionSnapshot, cpu_millis: int, memory_bytes: int) -> float | None:
    """The task's share of a node's hourly price (the scarcer resource's share)."""
    pools = snap.pools
    if pools.price_per_hour is None or pools.node_cpu_millis <= 0 or pools.node_memory_bytes <= 0:
        return None
    share = max(cpu_millis / pools.node_cpu_millis, memory_bytes / pools.node_memory_bytes)
    return pools.price_per_hour * min(1.0, share)
