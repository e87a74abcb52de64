"""Grow a pool or burst: the control loop's choice for demand waiting in a region that
declares serverless capacity. Pure, like the rest of the policy.

It is placement's per-task rule (meridian/placement/burst.py) applied to the region's
waiting demand with the facts only the loop has: the pool that would really grow (its
boot time and price, not the fastest pool's), the pools' bounds as their provider
reports them, and the serverless headroom of this tick's observation.

- Only Meridian tasks waiting under `placement.capacity: auto` can burst
  (`Request.burstable`, and a pod size of the cloud must hold them); pending pods and
  `nodes` tasks need nodes whatever is decided here, and are grown for as before.
- Burst when the serverless pods can take every burstable task (virtual node seen and
  Ready, no burst pod waiting for quota, headroom for their billed sizes) and either no
  pool can grow (ceiling reached) or the pool that would grow boots slower than
  `burst.max_wait_for_nodes_seconds`. Otherwise grow (or, at the ceiling, wait).
- Bursting means publishing the region's burst advisory (`ScalingState.burst_since`;
  the central activity writes it to the region's details in `auto` mode only), which
  placement reads: while it stands, an `auto` task the nodes turn away for room runs on
  the serverless pods. Nothing running is moved.
- The advisory stands until the pools have room again: a later comparison picks growing,
  or no demand is left and the water level is below the high mark. Tasks already on
  serverless pods stay there; only new placements go back to nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

from meridian.placement.burst import money
from meridian.placement.format import cpu_text, memory_text
from meridian.scaling.models import (
    BurstComparison,
    BurstInput,
    BurstOption,
    Cause,
    DecisionKind,
    GrowOption,
    PendingDemand,
    PoolObservation,
    Request,
)
from meridian.scaling.tick import Tick
from meridian.scaling.water import schedulable
from meridian.serverless.cost import cost_per_hour
from meridian.serverless.sizing import BilledSize, SizeError, round_up


@dataclass(frozen=True)
class Weighed:
    comparison: BurstComparison
    burst: bool
    # Why this choice, in words (the decision's reason starts with it).
    why: str


def split(burst: BurstInput, demand: PendingDemand) -> tuple[list[Request], PendingDemand]:
    """The waiting tasks that may burst, and the demand that needs nodes regardless."""
    burstable: list[Request] = []
    rest: list[Request] = []
    for request in demand.waiting_tasks:
        if request.burstable and _billed(burst, request) is not None:
            burstable.append(request)
        else:
            rest.append(request)
    return burstable, PendingDemand(pending_pods=demand.pending_pods, waiting_tasks=rest)


def _billed(burst: BurstInput, request: Request) -> BilledSize | None:
    try:
        return round_up(burst.config, request.cpu, request.mem)
    except SizeError:
        return None


def grow_option(pool: PoolObservation | None, needed: int) -> GrowOption:
    if pool is None:
        return GrowOption(ceiling_reached=True)
    price = pool.price_per_hour
    return GrowOption(
        pool=pool.name,
        nodes_needed=needed,
        boot_seconds=pool.boot_seconds,
        price_per_hour=price,
        cost_per_hour=None if price is None else round(price * needed, 6),
    )


def burst_option(burst: BurstInput, requests: list[Request]) -> BurstOption:
    config, usage = burst.config, burst.usage
    kind = config.kind.value
    sizes = [s for s in (_billed(burst, r) for r in requests) if s is not None]
    option = BurstOption(
        kind=kind,
        tasks=len(sizes),
        cold_start_seconds=config.cold_start_seconds,
        billed_cpu_millis=sum(s.cpu_millis for s in sizes),
        billed_memory_bytes=sum(s.memory_bytes for s in sizes),
        cost_per_hour=round(sum(cost_per_hour(config, s) for s in sizes), 6),
        currency=config.currency,
    )
    pods = usage.pods if usage else 0
    cpu = usage.cpu_millis if usage else 0
    mem = usage.memory_bytes if usage else 0
    option.headroom_pods = max(0, config.max_pods - pods)
    option.headroom_cpu_millis = max(0, config.max_cpu_millis - cpu)
    option.headroom_memory_bytes = max(0, config.max_memory_bytes - mem)
    if usage is None or usage.nodes == 0:
        option.unavailable = f"serverless ({kind}) not seen on the region's nodes"
    elif not usage.ready:
        option.unavailable = f"serverless ({kind}) virtual node NotReady"
    elif usage.waiting_pods:
        option.unavailable = (
            f"serverless ({kind}) quota exhausted: {usage.waiting_pods} burst pod(s) waiting"
        )
    elif (
        option.tasks > option.headroom_pods
        or option.billed_cpu_millis > option.headroom_cpu_millis
        or option.billed_memory_bytes > option.headroom_memory_bytes
    ):
        option.unavailable = (
            f"serverless ({kind}) quota short: {option.tasks} pod(s), "
            f"{cpu_text(option.billed_cpu_millis)} CPU, "
            f"{memory_text(option.billed_memory_bytes)} needed"
        )
    return option


def weigh(tick: Tick, grow: GrowOption, burstable: list[Request], demand: PendingDemand) -> Weighed:
    """Grow or burst for `burstable` (part of `demand`), with the numbers and why."""
    assert tick.inp.burst is not None
    settings = tick.inp.burst
    wait = settings.max_wait_for_nodes_seconds
    option = burst_option(settings, burstable)
    if option.unavailable:
        choice, why = "grow", f"not bursting: {option.unavailable}"
    elif grow.ceiling_reached:
        choice, why = "burst", "every pool is at its ceiling"
    elif grow.boot_seconds is not None and grow.boot_seconds > wait:
        choice, why = (
            "burst",
            (
                f"a new {grow.pool} node takes {grow.boot_seconds:.0f}s to boot, longer than the "
                f"{wait:.0f}s a task waits for nodes"
            ),
        )
    elif grow.boot_seconds is None:
        choice, why = "grow", f"not bursting: {grow.pool}'s boot time is not stated"
    else:
        choice, why = (
            "grow",
            (
                f"not bursting: a new {grow.pool} node boots in {grow.boot_seconds:.0f}s, "
                f"within the {wait:.0f}s a task waits for nodes"
            ),
        )
    comparison = BurstComparison(
        choice=choice,
        waiting_tasks=len(demand.waiting_tasks),
        burstable_tasks=len(burstable),
        pending_pods=len(demand.pending_pods),
        max_wait_for_nodes_seconds=wait,
        grow=grow,
        burst=option,
    )
    return Weighed(comparison=comparison, burst=choice == "burst", why=why)


def numbers_text(comparison: BurstComparison) -> str:
    """The comparison's numbers in words, for the decision's reason."""
    grow, option = comparison.grow, comparison.burst
    currency = option.currency if option else ""
    if grow.ceiling_reached:
        grow_text = "grow: no pool can grow"
    else:
        boot = "unknown" if grow.boot_seconds is None else f"{grow.boot_seconds:.0f}s"
        cost = (
            "price unknown"
            if grow.cost_per_hour is None
            else (f"{money(grow.cost_per_hour, currency)}/h")
        )
        grow_text = f"grow {grow.pool}: {grow.nodes_needed} node(s), boot {boot}, {cost}"
    text = (
        f"waiting demand {comparison.waiting_tasks} task(s) ({comparison.burstable_tasks} "
        f"may burst), {comparison.pending_pods} pending pod(s); {grow_text}"
    )
    if option is not None:
        text += (
            f"; burst {option.kind}: headroom {option.headroom_pods} pods, "
            f"{cpu_text(option.headroom_cpu_millis)} CPU, "
            f"{memory_text(option.headroom_memory_bytes)}, cold start "
            f"{option.cold_start_seconds:.0f}s, billed {cpu_text(option.billed_cpu_millis)} "
            f"CPU {memory_text(option.billed_memory_bytes)} at "
            f"{money(option.cost_per_hour, option.currency)}/h"
        )
    return text


def advise(tick: Tick, weighed: Weighed, burstable: list[Request]) -> None:
    """Record the burst of `burstable` and let the advisory stand (or keep standing)."""
    region = tick.inp.observation.region
    reason = f"burst {weighed.comparison.burstable_tasks} waiting task(s): {weighed.why}"
    tick.add(
        DecisionKind.BURST,
        region,
        Cause.PENDING_DEMAND,
        f"{reason}; {numbers_text(weighed.comparison)}",
        comparison=weighed.comparison,
    )
    state = tick.state
    if state.burst_since is None:
        state.burst_since = tick.at
    state.burst_reason = weighed.why
    smallest = min(burstable, key=lambda r: (r.cpu, r.mem))
    state.burst_task_cpu, state.burst_task_mem = smallest.cpu, smallest.mem


def lapse(tick: Tick, why: str) -> None:
    """End a standing advisory, once, with a decision that says why."""
    state = tick.state
    if state.burst_since is None:
        return
    tick.add(
        DecisionKind.NONE,
        tick.inp.observation.region,
        Cause.ROOM,
        f"burst advisory lapses ({why}): new tasks go to nodes; tasks running on "
        "serverless pods stay there",
    )
    state.burst_since = None
    state.burst_reason = None
    state.burst_task_cpu = state.burst_task_mem = 0


def lapse_when_room(tick: Tick) -> None:
    """With no burstable demand left, the advisory stands while the nodes stay full:
    until a schedulable node has room for the smallest task that burst (or, for a state
    that does not know its size, until the water level is below the high mark)."""
    state = tick.state
    if state.burst_since is None:
        return
    if tick.inp.burst is None:
        lapse(tick, "the region declares no serverless capacity")
        return
    cpu, mem = state.burst_task_cpu, state.burst_task_mem
    if cpu or mem:
        for node in tick.inp.observation.nodes:
            free_cpu = node.cpu_allocatable - node.cpu_requested
            free_mem = node.mem_allocatable - node.mem_requested
            if schedulable(node) and free_cpu >= cpu and free_mem >= mem:
                lapse(
                    tick,
                    f"the pools have room again: {node.name} has {cpu_text(free_cpu)} CPU "
                    f"and {memory_text(free_mem)} free, enough for a task that burst",
                )
                return
        return
    high = tick.inp.settings.high_water
    if tick.water < high:
        lapse(tick, f"the pools have room again: water {tick.water:.2f} below {high:.2f}")
