"""What the central service keeps of a region beside its health state: the `details`
of its region state row, typed. The region monitor writes its part every probe; the
control loop writes its own (`ControlDetails`), which the monitor carries over."""

from __future__ import annotations

from datetime import datetime

from meridian.regions.load import RegionLoad
from meridian.scaling.contracts import ControlDetails


class RegionDetails(ControlDetails):
    # Smoothed (EWMA) share of the API's answers that were 429/5xx; a probe the unit
    # worker took up and the API did not answer counts as all errors, a probe no worker
    # took up as nothing (it says nothing about the API).
    api_error_rate: float = 0.0
    # Smoothed time the API took to answer a probe; None until one answered.
    api_latency_ms: float | None = None
    # Whether the unit worker answered the last probe (and, when Temporal said, polls
    # its Job queue); None before the first probe.
    worker_polling: bool | None = None
    # Workers polling the region's Job queue, per Temporal; None when it did not say.
    pollers: int | None = None
    last_probe_at: datetime | None = None
    # When the probe that measured `load` started: `last_probe_at` of the last probe
    # that answered. Placement keeps counting its own decisions until a probe this
    # recent can have seen their pods (meridian/placement/reservations.py).
    load_probed_at: datetime | None = None
    # Start of the current bad spell (unreachable or failing); None while healthy.
    bad_since: datetime | None = None
    # The region's load as of the last answered probe; None before one answered.
    load: RegionLoad | None = None
