"""A region's health states and what its probe reports.

Free of `meridian.settings` (which imports the region contracts) and of the scaling
package, so the contracts, the store and the API can all import it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from meridian.regions.load import RegionLoad


class RegionHealth(StrEnum):
    """A region's health as the region monitor assesses it.

    `up`: healthy. `degraded`: answering, but with API errors, slowly, or failing for
    less than the grace period (tasks stay; placement scores it lower). `down`: failing
    past the grace period (tasks move away; placement skips it). `unknown`: no health
    report yet; never recorded, only shown.
    """

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"

    @property
    def usable(self) -> bool:
        """Placement may use the region (a degraded one scores lower)."""
        return self in (RegionHealth.UP, RegionHealth.DEGRADED)


# The states an assessment records; `unknown` is only the absence of one.
RECORDED_HEALTH: frozenset[RegionHealth] = frozenset(
    {RegionHealth.UP, RegionHealth.DEGRADED, RegionHealth.DOWN}
)


_HEALTH_VALUES = frozenset(h.value for h in RegionHealth)


def _known_or_unknown(value: Any) -> Any:
    if isinstance(value, str) and value not in _HEALTH_VALUES:
        return RegionHealth.UNKNOWN
    return value


# A health state inside a Temporal contract. A state this engine does not know (written
# by another version, or by a test fake in a recorded history) decodes as `unknown`:
# failing to decode would fail the workflow task on every retry.
ReportedHealth = Annotated[RegionHealth, BeforeValidator(_known_or_unknown)]


class NetworkSample(BaseModel):
    """One measurement of the path from a region to a data-source key."""

    target: str
    rtt_ms: float = 0.0
    loss: float = 0.0


class ProbeSnapshot(RegionLoad):
    """What one health probe saw: the region's load and, when a round was due, network
    samples. The same flat JSON object the probe has always returned (histories hold it)."""

    network_samples: list[NetworkSample] = Field(default_factory=list)

    @property
    def load(self) -> RegionLoad:
        return RegionLoad.model_validate(self.model_dump(exclude={"network_samples"}))
