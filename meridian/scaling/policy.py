"""The scaling policy: one pure, deterministic function from a region observation to
decisions. No I/O and no clock; the control workflow gathers the observation, calls
`decide`, persists `result.state` and, in `auto` mode only, carries out the decisions.

Order within a tick: node health first (cordon, drain, uncordon, give up), then pool
size (grow or burst, finish or cancel pending removals, shrink; `burst.py` says when
waiting `auto` tasks burst to serverless pods instead of a pool growing for them). In
`advise` mode the decisions and state are exactly those of `auto` (cooldowns included,
so advice comes at the pace actions would), but nothing is carried out, the burst
advisory included; `off` only keeps the node memory current.
"""

from __future__ import annotations

from meridian.scaling import health, resize
from meridian.scaling.models import PolicyInput, PolicyResult, ScalingMode
from meridian.scaling.tick import Tick


def decide(inp: PolicyInput) -> PolicyResult:
    tick = Tick(inp=inp, state=inp.state.model_copy(deep=True))
    health.track(tick)
    if inp.mode != ScalingMode.OFF:
        given_up = health.apply(tick)
        resize.apply(tick, given_up)
    else:
        # `off` acts on nothing, so no burst advisory may outlive the switch.
        tick.state.burst_since = tick.state.burst_reason = None
    return PolicyResult(
        water_level=round(tick.water, 4), decisions=tick.decisions, state=tick.state
    )
