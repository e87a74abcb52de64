"""Number formatting for placement reasons: short, and the way operators say it."""

from __future__ import annotations

_GI = 1 << 30
_MI = 1 << 20


def cpu_text(millis: int) -> str:
    """64000 -> '64', 500 -> '0.5', 1250 -> '1.25'."""
    return f"{millis / 1000:g}"


def memory_text(num_bytes: int) -> str:
    """Binary units as Kubernetes writes them: '256Gi', '1.5Gi', '512Mi'."""
    if num_bytes >= _GI:
        return f"{num_bytes / _GI:.4g}Gi"
    if num_bytes >= _MI:
        return f"{num_bytes / _MI:.4g}Mi"
    return f"{num_bytes}B"


def percent(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"
