"""Node health rules: cordon and drain sick nodes, uncordon recovered ones, give up on
nodes that never became Ready (the Cluster Autoscaler's max-node-provision-time)."""

from __future__ import annotations

from meridian.scaling.models import (
    Cause,
    CordonReason,
    CordonRecord,
    DecisionKind,
    NodeObservation,
    ScalingMode,
)
from meridian.scaling.tick import Tick

NODE_UNHEALTHY = "node-unhealthy"


def track(tick: Tick) -> None:
    """Update per-node memory (first sight, readiness streaks) and forget gone nodes."""
    state = tick.state
    seen = {n.name for n in tick.inp.observation.nodes}
    ever_ready = set(state.ever_ready)
    for node in tick.inp.observation.nodes:
        state.first_seen.setdefault(node.name, tick.at)
        if node.ready:
            ever_ready.add(node.name)
            state.not_ready_since.pop(node.name, None)
        else:
            state.not_ready_since.setdefault(node.name, tick.at)
        if node.healthy:
            state.healthy_since.setdefault(node.name, tick.at)
        else:
            state.healthy_since.pop(node.name, None)
    state.ever_ready = sorted(ever_ready & seen)
    for table in (state.first_seen, state.not_ready_since, state.healthy_since, state.cordoned):
        for name in [name for name in table if name not in seen]:
            del table[name]


def apply(tick: Tick) -> set[str]:
    """Health decisions for every node. Returns nodes handed to removal (given up)."""
    given_up = _give_up(tick)
    for node in tick.inp.observation.nodes:
        if node.name in given_up:
            continue
        if node.healthy:
            _recover(tick, node)
        elif node.ready or node.name in tick.state.ever_ready:
            _quarantine(tick, node)
        # A node that was never Ready is still booting: nothing to cordon yet.
    return given_up


def _symptoms(node: NodeObservation) -> str:
    parts = [] if node.ready else ["NotReady"]
    return ", ".join(parts + node.under_pressure)


def _quarantine(tick: Tick, node: NodeObservation) -> None:
    record = tick.state.cordoned.get(node.name)
    if record is not None and record.reason == CordonReason.SCALE_DOWN:
        return  # already on its way out
    has_pods = bool(node.task_ids) or node.other_pods > 0
    if record is None and not node.unschedulable:
        tick.add(
            DecisionKind.CORDON,
            node.name,
            Cause.UNHEALTHY,
            f"{node.name} is {_symptoms(node)}: stop new pods landing there",
            pool=node.pool,
        )
        tick.add(
            DecisionKind.DRAIN,
            node.name,
            Cause.UNHEALTHY,
            f"{node.name} is {_symptoms(node)}: evict its pods and move "
            f"{len(node.task_ids)} Meridian task(s)",
            pool=node.pool,
            task_ids=sorted(node.task_ids),
            move_reason=NODE_UNHEALTHY,
        )
        tick.state.cordoned[node.name] = CordonRecord(
            reason=CordonReason.UNHEALTHY, at=tick.at, drained_at=tick.at
        )
        return
    if record is None:
        return  # cordoned by someone else: theirs to manage
    due = (
        record.drained_at is None
        or tick.at - record.drained_at >= tick.inp.tuning.drain_retry_seconds
    )
    if has_pods and due:
        tick.add(
            DecisionKind.DRAIN,
            node.name,
            Cause.UNHEALTHY,
            f"{node.name} is still {_symptoms(node)} with pods left: drain again",
            pool=node.pool,
            task_ids=sorted(node.task_ids),
            move_reason=NODE_UNHEALTHY,
        )
        record.drained_at = tick.at


def _recover(tick: Tick, node: NodeObservation) -> None:
    record = tick.state.cordoned.get(node.name)
    if record is None or record.reason != CordonReason.UNHEALTHY:
        return
    if not node.unschedulable and tick.inp.mode == ScalingMode.AUTO:
        # Someone uncordoned it already; stop tracking our cordon.
        del tick.state.cordoned[node.name]
        return
    since = tick.state.healthy_since.get(node.name, tick.at)
    needed = tick.inp.tuning.uncordon_after_ticks * tick.inp.settings.tick_seconds
    if tick.at - since < needed:
        return
    tick.add(
        DecisionKind.UNCORDON,
        node.name,
        Cause.HEALTHY,
        f"{node.name} healthy for {tick.at - since:.0f}s: take pods again",
        pool=node.pool,
    )
    del tick.state.cordoned[node.name]


def _give_up(tick: Tick) -> set[str]:
    """Nodes never Ready long after creation are removed, one decision per pool. Not a
    capacity decision, so no cooldown applies and none is started."""
    limit = tick.inp.tuning.give_up_seconds
    ever_ready = set(tick.state.ever_ready)
    stuck: dict[str, list[str]] = {}
    for node in tick.inp.observation.nodes:
        if node.ready or node.name in ever_ready:
            continue
        born = node.created_at if node.created_at is not None else tick.state.first_seen[node.name]
        if tick.at - born >= limit:
            stuck.setdefault(node.pool, []).append(node.name)
    removed: set[str] = set()
    for pool_name, names in sorted(stuck.items()):
        pool = tick.pool(pool_name)
        if pool is None or pool.autoscaler_enabled:
            continue  # its own autoscaler gives up on its own nodes
        room = max(0, pool.desired - pool.min)
        take, keep = sorted(names)[:room], sorted(names)[room:]
        if take:
            tick.add(
                DecisionKind.SCALE_DOWN,
                pool_name,
                Cause.GIVE_UP,
                f"{', '.join(take)} not Ready {limit:.0f}s after creation: give up",
                pool=pool_name,
                nodes=take,
                desired_before=pool.desired,
                desired_after=pool.desired - len(take),
            )
            removed.update(take)
        if keep:
            tick.add(
                DecisionKind.NONE,
                pool_name,
                Cause.GIVE_UP,
                f"{', '.join(keep)} never became Ready but pool {pool_name} is at min "
                f"{pool.min}: left for the provider to repair",
                pool=pool_name,
                nodes=keep,
                desired_before=pool.desired,
                desired_after=pool.desired,
            )
    return removed
