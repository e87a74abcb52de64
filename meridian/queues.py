"""Task-queue names: the one contract every role shares with Temporal."""

from __future__ import annotations


def region_task_queue(region: str) -> str:
    return f"region.{region}"


def region_health_queue(region: str) -> str:
    """The region's probe queue, apart from its Job work: a backlog of creates and sweeps
    must not make a busy but healthy region look dead (and have its tasks moved)."""
    return f"region.{region}.health"
