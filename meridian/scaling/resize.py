"""Pool size rules: grow for demand or sustained high water, shrink after a sustained low
water level, with cooldowns and hysteresis.

Hysteresis: growth on water needs the level above the high mark on two consecutive
observations at least one tick apart; shrinking needs it below the low mark for the
whole scale-down window, and any reading at or above the low mark restarts that window.
Both aim at a target between the marks, so a step never lands beyond the opposite mark.
Cooldown: an action of kind K waits K's cooldown after the last scale action of *either*
kind, so alternating load cannot alternate growth and shrinkage faster than that.
"""

from __future__ import annotations

from meridian.regions.load import water_level
from meridian.scaling import burst
from meridian.scaling.models import (
    Cause,
    CordonReason,
    CordonRecord,
    DecisionKind,
    NodeObservation,
    PendingDemand,
    PoolObservation,
)
from meridian.scaling.tick import Tick
from meridian.scaling.water import Capacity, nodes_for_target, pack, schedulable

SCALE_DOWN_REASON = "scale-down"


def apply(tick: Tick, given_up: set[str]) -> None:
    _track_streaks(tick)
    wants_up = _scale_up(tick)
    removing = _pending_removals(tick, cancel=wants_up)
    if not wants_up and not removing:
        _scale_down(tick, given_up)


def _track_streaks(tick: Tick) -> None:
    state, settings, water = tick.state, tick.inp.settings, tick.water
    if water > settings.high_water:
        if state.above_high_since is None:
            state.above_high_since = tick.at
    else:
        state.above_high_since = None
    if water < settings.low_water:
        if state.below_low_since is None:
            state.below_low_since = tick.at
    else:
        state.below_low_since = None


def _last_action(tick: Tick) -> float | None:
    times = [
        t for t in (tick.state.last_scale_up_at, tick.state.last_scale_down_at) if t is not None
    ]
    return max(times) if times else None


def _cooldown_left(tick: Tick, cooldown: float) -> float:
    last = _last_action(tick)
    return 0.0 if last is None else max(0.0, cooldown - (tick.at - last))


def _growable(tick: Tick) -> list[tuple[PoolObservation, Capacity]]:
    pools = []
    for pool in sorted(tick.inp.observation.pools, key=lambda p: p.name):
        size = tick.node_size(pool)
        if pool.autoscaler_enabled or size is None or pool.desired >= pool.max:
            continue
        pools.append((pool, size))
    return pools


def _upcoming_bins(tick: Tick) -> list[Capacity]:
    bins: list[Capacity] = []
    for pool in sorted(tick.inp.observation.pools, key=lambda p: p.name):
        size = tick.node_size(pool)
        if size is not None:
            bins.extend([size] * tick.upcoming(pool))
    return bins


def _existing_free(tick: Tick) -> list[Capacity]:
    return [
        Capacity(
            max(0, n.cpu_allocatable - n.cpu_requested), max(0, n.mem_allocatable - n.mem_requested)
        )
        for n in sorted(tick.inp.observation.nodes, key=lambda n: n.name)
        if schedulable(n)
    ]


def _scale_up(tick: Tick) -> bool:
    """Returns whether the region needs more capacity (acted on or held back)."""
    settings, demand = tick.inp.settings, tick.inp.demand
    has_demand = bool(demand.pending_pods or demand.waiting_tasks)
    sustained_high = (
        tick.state.above_high_since is not None
        and tick.at - tick.state.above_high_since >= settings.tick_seconds
    )
    if not has_demand:
        burst.lapse_when_room(tick)
        if not sustained_high:
            return False
    weighed: burst.Weighed | None = None
    if has_demand and tick.inp.burst is not None:
        weighed = _weigh_burst(tick, demand)
        if weighed is not None and weighed.burst:
            # The burstable tasks go to the serverless pods; the rest still needs nodes.
            burstable, demand = burst.split(tick.inp.burst, demand)
            burst.advise(tick, weighed, burstable)
            has_demand = bool(demand.pending_pods or demand.waiting_tasks)
            if not has_demand and not sustained_high:
                return True
            weighed = None
        elif weighed is not None:
            burst.lapse(tick, "growing wins: " + weighed.why.removeprefix("not bursting: "))
        else:
            burst.lapse_when_room(tick)
    elif has_demand:
        burst.lapse_when_room(tick)
    return _grow(tick, demand, has_demand, weighed)


def _weigh_burst(tick: Tick, demand: PendingDemand) -> burst.Weighed | None:
    """Grow or burst for the waiting `auto` tasks; None when there is nothing to weigh
    (none may burst, or capacity already on its way or free takes the demand)."""
    assert tick.inp.burst is not None
    burstable, _ = burst.split(tick.inp.burst, demand)
    if not burstable:
        return None
    best = _best_pool(tick, demand, has_demand=True)
    if best is None:
        grow = burst.grow_option(None, 0)
    else:
        _, covered, needed, pool = best
        if covered:
            return None
        grow = burst.grow_option(pool, needed)
    return burst.weigh(tick, grow, burstable, demand)


def _best_pool(
    tick: Tick, demand: PendingDemand, has_demand: bool
) -> tuple[int, bool, int, PoolObservation] | None:
    """(requests no node can take, covered without new nodes, nodes needed, pool) for the
    pool that serves `demand` best; None when no pool can grow."""
    pools = _growable(tick)
    if not pools:
        return None
    upcoming = _upcoming_bins(tick)
    options: list[tuple[int, bool, int, str, PoolObservation]] = []
    for pool, size in pools:
        if has_demand:
            # Unschedulable pods already failed on the existing nodes: only capacity on
            # its way or new nodes can take them. Waiting tasks may use free space too.
            first = pack(demand.pending_pods, upcoming, size)
            second = pack(demand.waiting_tasks, _existing_free(tick) + first.bins, size)
            needed = first.new_nodes + second.new_nodes
            stuck = len(first.unplaceable) + len(second.unplaceable)
        else:
            extra = Capacity(sum(b.cpu for b in upcoming), sum(b.mem for b in upcoming))
            needed, stuck = nodes_for_target(tick.load, tick.target, extra, size), 0
        # Best: the pool that can place the most requests, then one that needs nodes at
        # all, then the fewest nodes, then by name (determinism).
        options.append((stuck, needed == 0, needed, pool.name, pool))
    stuck, covered, needed, _, pool = min(options, key=lambda o: o[:4])
    return stuck, covered, needed, pool


def _grow(
    tick: Tick, demand: PendingDemand, has_demand: bool, weighed: burst.Weighed | None
) -> bool:
    settings = tick.inp.settings
    best = _best_pool(tick, demand, has_demand)
    if best is None:
        tick.add(
            DecisionKind.NONE,
            tick.inp.observation.region,
            Cause.HOLD,
            "more capacity is needed but every pool is at max, owned by its own "
            "autoscaler or of unknown node size",
        )
        return True
    stuck, covered, needed, pool = best
    upcoming = _upcoming_bins(tick)
    cause = Cause.PENDING_DEMAND if has_demand else Cause.HIGH_WATER
    if covered:
        if stuck:
            tick.add(
                DecisionKind.NONE,
                tick.inp.observation.region,
                Cause.HOLD,
                f"{stuck} pending request(s) are larger than a node of any pool that "
                "can grow; no scale-up helps them",
            )
            return True
        if not upcoming:
            return True  # waiting tasks fit the free space of Ready nodes
        what = "pending demand fits" if has_demand else "the water level is covered by"
        tick.add(
            DecisionKind.NONE,
            pool.name,
            cause,
            f"{what} capacity already on its way; waiting for it",
            pool=pool.name,
            desired_before=pool.desired,
            desired_after=pool.desired,
        )
        return True
    wait = _cooldown_left(tick, settings.scale_up_cooldown_seconds)
    after = min(pool.max, pool.desired + needed)
    comparison = weighed.comparison if weighed is not None else None
    if wait > 0:
        tick.add(
            DecisionKind.NONE,
            pool.name,
            Cause.HOLD,
            f"{pool.name} needs {needed} more node(s) ({cause.value}); cooldown {wait:.0f}s left",
            pool=pool.name,
            desired_before=pool.desired,
            desired_after=pool.desired,
            comparison=comparison,
        )
        return True
    detail = (
        f"{len(demand.pending_pods)} pending pod(s) and {len(demand.waiting_tasks)} waiting "
        f"task(s) need {needed} node(s)"
        if has_demand
        else f"water {tick.water:.2f} above {settings.high_water:.2f} for "
        f"{tick.at - (tick.state.above_high_since or tick.at):.0f}s; "
        f"{needed} node(s) bring it to {tick.target:.2f}"
    )
    if after - pool.desired < needed:
        detail += f"; capped at max {pool.max}"
    if stuck:
        detail += f"; {stuck} request(s) larger than a {pool.name} node cannot be helped"
    if weighed is not None:
        detail += f"; {weighed.why} ({burst.numbers_text(weighed.comparison)})"
    tick.add(
        DecisionKind.SCALE_UP,
        pool.name,
        cause,
        f"grow {pool.name}: {detail}",
        pool=pool.name,
        desired_before=pool.desired,
        desired_after=after,
        comparison=comparison,
    )
    tick.state.last_scale_up_at = tick.at
    return True


def _pending_removals(tick: Tick, cancel: bool) -> bool:
    """Nodes cordoned for scale-down whose tasks are being moved. Returns whether any
    such node is still in progress (new shrinking waits for it)."""
    settings = tick.inp.settings
    in_progress = False
    nodes = {n.name: n for n in tick.inp.observation.nodes}
    for name, record in sorted(tick.state.cordoned.items()):
        if record.reason != CordonReason.SCALE_DOWN:
            continue
        node, pool = nodes.get(name), None
        if node is not None:
            pool = tick.pool(node.pool)
        if node is None or pool is None:
            del tick.state.cordoned[name]
            continue
        if cancel or tick.at - record.at > settings.scale_down_window_seconds:
            why = "load came back" if cancel else "its tasks did not move in time"
            tick.add(
                DecisionKind.UNCORDON,
                name,
                Cause.HOLD,
                f"keep {name}: {why}; scale-down cancelled",
                pool=pool.name,
            )
            del tick.state.cordoned[name]
            continue
        if not node.task_ids:
            wait = _cooldown_left(tick, settings.scale_down_cooldown_seconds)
            if wait == 0 and pool.desired - 1 >= pool.min:
                tick.add(
                    DecisionKind.SCALE_DOWN,
                    pool.name,
                    Cause.LOW_WATER,
                    f"remove {name}: its tasks have moved",
                    pool=pool.name,
                    nodes=[name],
                    desired_before=pool.desired,
                    desired_after=pool.desired - 1,
                )
                tick.state.last_scale_down_at = tick.at
                del tick.state.cordoned[name]
                continue
        elif record.drained_at is None or (
            tick.at - record.drained_at >= tick.inp.tuning.drain_retry_seconds
        ):
            _move(tick, node, again=True)
            record.drained_at = tick.at
        in_progress = True
    return in_progress


def _move(tick: Tick, node: NodeObservation, again: bool = False) -> None:
    tick.add(
        DecisionKind.MOVE_TASKS,
        node.name,
        Cause.LOW_WATER,
        f"{'still ' if again else ''}move {len(node.task_ids)} task(s) off {node.name} "
        "before removing it",
        pool=node.pool,
        task_ids=sorted(node.task_ids),
        move_reason=SCALE_DOWN_REASON,
    )


def _scale_down(tick: Tick, given_up: set[str]) -> None:
    settings, state, demand = tick.inp.settings, tick.state, tick.inp.demand
    if state.below_low_since is None or demand.pending_pods or demand.waiting_tasks:
        return
    if tick.at - state.below_low_since < settings.scale_down_window_seconds:
        return
    if _cooldown_left(tick, settings.scale_down_cooldown_seconds) > 0:
        return
    chosen = _removable(tick, given_up)
    if not chosen:
        return
    pool = tick.pool(chosen[0].pool)
    if pool is None:  # _removable only picks nodes of observed pools
        return
    free = [n for n in chosen if not n.task_ids]
    window = (
        f"water {tick.water:.2f} below {settings.low_water:.2f} for "
        f"{tick.at - state.below_low_since:.0f}s"
    )
    if free:
        names = sorted(n.name for n in free)
        tick.add(
            DecisionKind.SCALE_DOWN,
            pool.name,
            Cause.LOW_WATER,
            f"shrink {pool.name}: {window}; remove the emptiest {len(names)} node(s)",
            pool=pool.name,
            nodes=names,
            desired_before=pool.desired,
            desired_after=pool.desired - len(names),
        )
        state.last_scale_down_at = tick.at
        return
    # Every removable node runs Meridian tasks: move the emptiest node's tasks first and
    # remove it on a later tick, once it is empty.
    node = chosen[0]
    tick.add(
        DecisionKind.CORDON,
        node.name,
        Cause.LOW_WATER,
        f"{window}; {node.name} is the emptiest node: no new pods while its tasks move",
        pool=pool.name,
    )
    _move(tick, node)
    state.cordoned[node.name] = CordonRecord(
        reason=CordonReason.SCALE_DOWN, at=tick.at, drained_at=tick.at
    )


def _removable(tick: Tick, given_up: set[str]) -> list[NodeObservation]:
    """The emptiest nodes of one pool whose removal keeps the water level at or below the
    target and the pool at or above min. Nodes without Meridian tasks come first."""
    load = tick.load
    cpu_alloc, mem_alloc = load.cpu_allocatable, load.mem_allocatable
    removed: list[NodeObservation] = []
    candidates = sorted(
        (n for n in tick.inp.observation.nodes if schedulable(n) and n.name not in given_up),
        key=lambda n: (bool(n.task_ids), n.utilisation, n.name),
    )
    for node in candidates:
        pool = tick.pool(node.pool)
        if pool is None or pool.autoscaler_enabled or tick.upcoming(pool) > 0:
            continue
        if removed and node.pool != removed[0].pool:
            continue
        if pool.desired - len(removed) - 1 < pool.min:
            continue
        after = water_level(
            load.cpu_requested,
            load.mem_requested,
            cpu_alloc - node.cpu_allocatable,
            mem_alloc - node.mem_allocatable,
        )
        if after > tick.target:
            continue
        removed.append(node)
        cpu_alloc -= node.cpu_allocatable
        mem_alloc -= node.mem_allocatable
    return removed
