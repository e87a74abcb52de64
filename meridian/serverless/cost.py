"""What a billed size costs: the clouds bill serverless pods per vCPU and per GiB of the
size they run, for the time they run (per second)."""

from __future__ import annotations

from meridian.serverless.models import GIB, ServerlessConfig
from meridian.serverless.sizing import BilledSize


def cost_per_hour(config: ServerlessConfig, size: BilledSize) -> float:
    """One pod of `size` for an hour, in `config.currency`."""
    return (
        size.cpu_millis / 1000 * config.price_per_vcpu_hour
        + size.memory_bytes / GIB * config.price_per_gib_hour
    )


def cost_for(config: ServerlessConfig, size: BilledSize, seconds: float) -> float:
    """One pod of `size` for `seconds` (per-second billing, as every kind here bills)."""
    return cost_per_hour(config, size) * max(0.0, seconds) / 3600.0
