"""Reading the metrics registries in tests: the registries are process-wide, so tests
compare a sample before and after the action that should move it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A sample's value, 0 when the series does not exist (yet)."""
    return registry.get_sample_value(name, labels) or 0.0


def series(registry: CollectorRegistry, name: str) -> list[dict[str, str]]:
    """The label sets of every sample named `name`."""
    return [
        dict(s.labels) for family in registry.collect() for s in family.samples if s.name == name
    ]
