"""Node-pool providers: one interface over seven clouds, IDC and kubesim."""

from meridian.nodepools.base import (
    NodePoolError,
    NodePoolInvalidRequest,
    NodePoolNotFound,
    NodePoolOwnedByAutoscaler,
    NodePoolProvider,
    NodePoolThrottled,
    PoolState,
)
from meridian.nodepools.registry import DRIVERS, provider_for

__all__ = [
    "DRIVERS",
    "NodePoolError",
    "NodePoolInvalidRequest",
    "NodePoolNotFound",
    "NodePoolOwnedByAutoscaler",
    "NodePoolProvider",
    "NodePoolThrottled",
    "PoolState",
    "provider_for",
]
