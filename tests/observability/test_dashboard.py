"""The Grafana dashboard under infra/observability/grafana: every query parses as PromQL
(promtool), every metric it and the alert rules name is one Meridian or the Temporal SDK
exports, with labels the metric has, and it covers the fleet, the task funnel and a
per-region drill-down."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase

from meridian.observability import metrics as m
from tests.conftest import REPO
from tests.observability.test_rules import RULES, alert_rules, run_promtool

OBSERVABILITY = REPO / "infra/observability"
DASHBOARD = OBSERVABILITY / "grafana/dashboards/meridian.json"
PROMETHEUS_CONFIG = OBSERVABILITY / "prometheus/prometheus.yml"

# The Temporal SDK families the dashboard and the rules use, with their labels, as the
# SDK's exporter serves them (tests/integration/test_prometheus_scrape.py sees them live).
TEMPORAL_FAMILIES = {
    "temporal_num_pollers": {"namespace", "poller_type", "service_name", "task_queue"},
    "temporal_activity_schedule_to_start_latency_seconds": {
        "activity_type",
        "namespace",
        "service_name",
        "task_queue",
        "workflow_type",
    },
}
# Grafana's variables, as a query would read once Grafana has filled them in.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "30s",
    "$__range": "1h",
    "$region": "aws-us-east-1",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# A metric name followed by its selector, if any: `name{a="b", c=~"d"}`.
SELECTOR = re.compile(r"\b((?:meridian|temporal)_[a-z_]+)\b(\{[^}]*\})?")
LABEL_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> list[str]:
    return [t["expr"] for p in panels(dashboard()) for t in p.get("targets", []) if "expr" in t]


def filled(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def meridian_labels() -> dict[str, set[str]]:
    """Every family metrics.py defines (as served: counters with `_total`), with its labels."""
    names: dict[str, set[str]] = {}
    for value in vars(m).values():
        if isinstance(value, MetricWrapperBase):
            kind = value._type  # noqa: SLF001 - no public accessor
            served = value._name + ("_total" if kind == "counter" else "")  # noqa: SLF001
            names[served] = set(value._labelnames)  # noqa: SLF001
        elif isinstance(value, m.SourcedGauge):
            names[value.name] = set(value._labelnames)  # noqa: SLF001
    return names


def known_families() -> dict[str, set[str]]:
    families = meridian_labels()
    families.update(TEMPORAL_FAMILIES)
    return families


def family_of(name: str, families: dict[str, set[str]]) -> str | None:
    if name in families:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in families:
            return name.removesuffix(suffix)
    return None


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) > 20
    # promtool parses a rule's expression as Prometheus would: one recording rule each.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard_query_{i}", "expr": filled(expr)}
                    for i, expr in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_a_query_that_does_not_parse_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "bad.rules.yml"
    path.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "d", "rules": [{"record": "q", "expr": "sum by (le (x)"}]}]}
        )
    )
    assert run_promtool("check", "rules", str(path)).returncode != 0


def test_every_metric_used_exists_with_the_labels_used() -> None:
    served = (*m.API_FAMILIES, *m.CENTRAL_FAMILIES, *m.UNIT_FAMILIES)
    assert set(meridian_labels()) == set(served)
    families = known_families()
    expressions = dashboard_queries() + [rule["expr"] for rule in alert_rules()]
    used = set()
    for expr in expressions:
        for name, selector in SELECTOR.findall(expr):
            family = family_of(name, families)
            assert family is not None, f"{name} (in {expr!r}) is no family Meridian exports"
            used.add(family)
            labels = set(LABEL_MATCHER.findall(selector)) - {"__name__"}
            allowed = families[family] | ({"le"} if name.endswith("_bucket") else set())
            assert labels <= allowed, f"{name}: no label {labels - allowed} (in {expr!r})"
    # The ones an operator needs most are on the dashboard or behind an alert.
    assert {
        "meridian_region_health",
        "meridian_region_water_level",
        "meridian_active_tasks",
        "meridian_failovers_total",
        "meridian_failover_duration_seconds",
        "meridian_task_transitions_total",
        "meridian_task_submit_duration_seconds",
        "meridian_kube_requests_total",
        "meridian_sweep_last_run_drift",
        "meridian_sweep_resume_failures_total",
        "temporal_num_pollers",
    } <= used


def test_the_dashboard_has_a_fleet_view_a_funnel_and_a_region_drill_down() -> None:
    board = dashboard()
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows[:3] == ["Fleet overview", "Task funnel", "Region: $region"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["region"]["definition"] == "label_values(meridian_region_health, region)"
    # Every panel in the drill-down row follows the variable.
    drill_down = _row_panels(board, "Region: $region")
    assert drill_down and all('region=~"$region"' in q for q in _queries(drill_down))
    funnel = " ".join(_queries(_row_panels(board, "Task funnel")))
    for stage in ('route="/v1/tasks"', "SCHEDULING", "RUNNING", "SUCCEEDED", "histogram_quantile"):
        assert stage in funnel, stage
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def _row_panels(board: dict[str, Any], title: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    inside = False
    for panel in board["panels"]:
        if panel["type"] == "row":
            inside = panel["title"] == title
        elif inside:
            found.append(panel)
    return found


def _queries(selected: list[dict[str, Any]]) -> list[str]:
    return [t["expr"] for p in selected for t in p["targets"]]


def test_provisioning_and_prometheus_config_are_valid() -> None:
    provisioning = OBSERVABILITY / "grafana/provisioning"
    providers = yaml.safe_load((provisioning / "dashboards.yml").read_text())["providers"]
    assert providers[0]["type"] == "file"
    sources = yaml.safe_load((provisioning / "datasources.yml").read_text())["datasources"]
    assert sources[0]["type"] == "prometheus"
    result = run_promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert RULES.name in PROMETHEUS_CONFIG.read_text()
