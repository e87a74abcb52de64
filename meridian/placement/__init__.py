"""Placement: which region runs a task, and why. Pure functions over a snapshot."""

from meridian.placement.filters import DEFAULT_WATER_CEILING
from meridian.placement.scoring import place
from meridian.placement.types import (
    CandidateScore,
    FilterCode,
    FilteredRegion,
    PlacementDecision,
    PlacementRequest,
    RegionSnapshot,
)

__all__ = [
    "DEFAULT_WATER_CEILING",
    "CandidateScore",
    "FilterCode",
    "FilteredRegion",
    "PlacementDecision",
    "PlacementRequest",
    "RegionSnapshot",
    "place",
]
