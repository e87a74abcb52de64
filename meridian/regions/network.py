"""Network paths from a compute region to a data-source region: measured or estimated.

Each unit worker probes the data-source regions that matter (RTT and loss) and smooths
the samples with an EWMA so that one slow probe does not swing placement. Where nothing
was measured, placement estimates RTT from great-circle distance and says so.
"""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

# Estimation model (documented because every estimated score rests on it):
#   light in fibre travels ~200 km per ms (refractive index ~1.5), one way;
#   real routes are longer than the great circle, so a routing factor of 1.5 is applied
#   (typical of measured inter-region paths between large clouds);
#   a 1 ms floor covers switching, serialisation and the last mile inside a metro.
FIBRE_KM_PER_MS = 200.0
ROUTING_FACTOR = 1.5
RTT_FLOOR_MS = 1.0

# path_quality: an RTT of RTT_HALF_MS halves the quality, 3x that quarters it (hyperbolic:
# the first tens of ms cost the most; crossing an ocean matters more than the next 100 km)...
RTT_HALF_MS = 50.0
# ...and loss reaches zero quality at LOSS_CEILING. TCP throughput falls with the square
# root of loss (Mathis et al.), so the loss factor does too: 1 % loss costs ~45 %.
LOSS_CEILING = 0.05

DEFAULT_ALPHA = 0.3


class NetworkPath(BaseModel):
    """The smoothed path from one compute region to a data-source region."""

    model_config = ConfigDict(frozen=True)

    target: str = Field(description="data-source key, '<provider>:<region>'")
    rtt_ms: float = Field(ge=0)
    loss: float = Field(0.0, ge=0, le=1)
    measured: bool = True
    samples: int = Field(0, ge=0)
    updated_at: datetime | None = None

    @classmethod
    def estimated(cls, target: str, km: float) -> NetworkPath:
        """A path nobody measured: RTT from distance, no loss assumed."""
        return cls.model_construct(
            target=target,
            rtt_ms=estimate_rtt_ms(km),
            loss=0.0,
            measured=False,
            samples=0,
            updated_at=None,
        )


def estimate_rtt_ms(km: float) -> float:
    """Round-trip time over `km` of great-circle distance, per the model above."""
    return 2.0 * max(0.0, km) / FIBRE_KM_PER_MS * ROUTING_FACTOR + RTT_FLOOR_MS


def smooth(
    previous: NetworkPath | None,
    sample_rtt: float,
    sample_loss: float,
    alpha: float = DEFAULT_ALPHA,
    *,
    target: str | None = None,
    at: datetime | None = None,
) -> NetworkPath:
    """Fold one probe sample into the path with an EWMA of weight `alpha`.

    The first real sample replaces an estimate outright: an estimate is a guess, and
    averaging a guess into measurements would bias them for many samples.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError("alpha must be in (0, 1]")
    if not math.isfinite(sample_rtt) or sample_rtt < 0:
        raise ValueError("sample_rtt must be a finite, non-negative number of ms")
    loss = min(1.0, max(0.0, sample_loss))
    if previous is None:
        if target is None:
            raise ValueError("target is required for the first sample of a path")
        return NetworkPath(
            target=target, rtt_ms=sample_rtt, loss=loss, measured=True, samples=1, updated_at=at
        )
    if not previous.measured or previous.samples == 0:
        rtt, smoothed_loss = sample_rtt, loss
    else:
        rtt, smoothed_loss = smooth_values(previous.rtt_ms, previous.loss, sample_rtt, loss, alpha)
    return NetworkPath(
        target=target or previous.target,
        rtt_ms=rtt,
        loss=smoothed_loss,
        measured=True,
        samples=previous.samples + 1,
        updated_at=at if at is not None else previous.updated_at,
    )


def smooth_values(
    previous_rtt: float,
    previous_loss: float,
    sample_rtt: float,
    sample_loss: float,
    alpha: float = DEFAULT_ALPHA,
) -> tuple[float, float]:
    """The EWMA step on bare numbers, for callers that store paths as rows, not models."""
    return (
        alpha * sample_rtt + (1 - alpha) * previous_rtt,
        alpha * min(1.0, max(0.0, sample_loss)) + (1 - alpha) * previous_loss,
    )


def rtt_loss_quality(rtt_ms: float, loss: float) -> float:
    """Quality in [0, 1] of a path with this RTT and loss (1 = perfect, 0 = useless)."""
    rtt_factor = 1.0 / (1.0 + rtt_ms / RTT_HALF_MS) if rtt_ms > 0.0 else 1.0
    if loss <= 0.0:  # the common case, and every estimate: skip the sqrt
        return rtt_factor
    loss_factor = 1.0 - math.sqrt(loss / LOSS_CEILING)
    return rtt_factor * loss_factor if loss_factor > 0.0 else 0.0


def path_quality(path: NetworkPath) -> float:
    return rtt_loss_quality(path.rtt_ms, path.loss)
