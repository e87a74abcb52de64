"""A burst plan: how one attempt's Job runs on a region's serverless capacity.

Whoever decides to burst (the region control loop, placement) makes the plan with
`plan_burst`; the Job builder applies it (`meridian.kube.jobs.build_job(burst=...)`). A
plan is a pydantic model so that it travels in activity inputs like the rest.
"""

from __future__ import annotations

from pydantic import BaseModel

from meridian.serverless.cost import cost_per_hour
from meridian.serverless.kinds import ServerlessKind
from meridian.serverless.models import ServerlessConfig
from meridian.serverless.sizing import BilledSize, requests_for, round_up
from meridian.serverless.steering import Steering, steer


class BurstPlan(BaseModel):
    kind: ServerlessKind
    steering: Steering
    # What the cloud bills, and the requests that make it bill exactly that.
    billed: BilledSize
    cpu_request: str
    memory_request: str
    cost_per_hour: float
    currency: str


def plan_burst(config: ServerlessConfig, cpu_millis: int, memory_bytes: int) -> BurstPlan:
    """The plan for a pod requesting this much (raises sizing.SizeError if too large)."""
    billed = round_up(config, cpu_millis, memory_bytes)
    cpu, memory = requests_for(config, billed)
    return BurstPlan(
        kind=config.kind,
        steering=steer(config),
        billed=billed,
        cpu_request=cpu,
        memory_request=memory,
        cost_per_hour=cost_per_hour(config, billed),
        currency=config.currency,
    )
