"""Resource scheduling policy: water level, node health and pool size decisions."""

from meridian.scaling.models import (
    Cause,
    Decision,
    DecisionKind,
    NodeObservation,
    PendingDemand,
    PolicyInput,
    PolicyResult,
    PolicyTuning,
    PoolObservation,
    RegionObservation,
    Request,
    ScalingMode,
    ScalingState,
)
from meridian.scaling.policy import decide

__all__ = [
    "Cause",
    "Decision",
    "DecisionKind",
    "NodeObservation",
    "PendingDemand",
    "PolicyInput",
    "PolicyResult",
    "PolicyTuning",
    "PoolObservation",
    "RegionObservation",
    "Request",
    "ScalingMode",
    "ScalingState",
    "decide",
]
