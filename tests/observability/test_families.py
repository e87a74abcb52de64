"""Every metric follows Prometheus conventions, and the README documents each one with
its type and labels: the list alert rules and dashboards are written from."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from meridian.observability import metrics as m
from tests.conftest import REPO

FORBIDDEN_LABELS = {"task_id", "task", "id", "job", "job_name", "name", "path", "error"}


def families(registry: CollectorRegistry) -> list[Metric]:
    return [f for f in registry.collect() if f.name.startswith("meridian_")]


def exposed(family: Metric) -> str:
    """The family's name as /metrics shows it (prometheus_client strips `_total`)."""
    return family.name + "_total" if family.type == "counter" else family.name


def labels(family: Metric) -> set[str]:
    # A labelled family with no series yet shows no samples: read its declared labels.
    names: set[str] = set()
    for collector, collected in _collectors():
        if family.name in collected:
            names |= set(getattr(collector, "_labelnames", ()))
    return names


def _collectors() -> list[tuple[object, list[str]]]:
    found = []
    for registry in m.REGISTRIES.values():
        for collector, names in registry._collector_to_names.items():
            found.append((collector, list(names)))
    return found


ALL = [(role, f) for role, registry in m.REGISTRIES.items() for f in families(registry)]


@pytest.mark.parametrize(("role", "family"), ALL, ids=[exposed(f) for _, f in ALL])
def test_names_follow_prometheus_conventions(role: str, family: Metric) -> None:
    name = exposed(family)
    assert re.fullmatch(r"meridian_[a-z_]+", name), name
    if family.type == "counter":
        assert name.endswith("_total")
    if family.type == "histogram":
        assert name.endswith("_seconds"), "durations in seconds, the base unit"
    assert not labels(family) & FORBIDDEN_LABELS, "unbounded label"
    assert family.documentation


def test_each_process_serves_its_own_families() -> None:
    served = {role: {exposed(f) for f in families(r)} for role, r in m.REGISTRIES.items()}
    assert served["api"] == set(m.API_FAMILIES)
    assert served["central"] == set(m.CENTRAL_FAMILIES)
    assert served["unit"] == set(m.UNIT_FAMILIES)


def _readme_table() -> dict[str, tuple[str, set[str], str]]:
    rows = {}
    for line in (REPO / "README.md").read_text().splitlines():
        match = re.match(r"\| `(meridian_[a-z_]+)` \| (\w+) \|([^|]*)\| (\w+) \|", line)
        if match:
            name, kind, label_cell, process = match.groups()
            rows[name] = (kind, set(re.findall(r"`(\w+)`", label_cell)), process)
    return rows


def test_the_readme_documents_every_metric_with_its_type_labels_and_process() -> None:
    documented = _readme_table()
    actual = {
        exposed(f): (f.type, labels(f), role)
        for role, registry in m.REGISTRIES.items()
        for f in families(registry)
    }
    assert documented == actual
