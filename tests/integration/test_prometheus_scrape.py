"""Debian's Prometheus server scrapes a real `meridian up` with the alert rules loaded:
a task runs, its region goes dark and the task moves, and the series the dashboard and
the alerts read exist in Prometheus and move with it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubesim.control import KubesimControl
from tests.integration.harness import task_body
from tests.integration.test_up import Up, wait_status
from tests.observability.test_dashboard import (
    dashboard_queries,
    family_of,
    known_families,
)
from tests.observability.test_rules import EXPECTED, RULES, alert_rules

pytestmark = pytest.mark.integration

DARK = "aws-us-east-1"
# Families with no series until their event happens, which this test does not cause:
# a scaling action, drift for the sweeps, a resident task's channel.
EVENT_ONLY = {
    "meridian_scaling_decisions_total",
    "meridian_scaling_failures_total",
    "meridian_sweep_drift_found_total",
    "meridian_sweep_drift_fixed_total",
    "meridian_resident_channels",
}
METRICS_LINE = re.compile(r"(http://\S+)/metrics \((api|central-worker|unit-workers)\)")


class Prometheus:
    """The Prometheus server on loopback, scraping every second, evaluating the rules."""

    def __init__(self, work: Path, port: int, targets: dict[str, str]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus is missing: Debian's prometheus package has it (.ci/run)")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": f"meridian-{role}", "static_configs": [{"targets": [target]}]}
                for role, target in targets.items()
            ],
        }
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{port}"
        self.log = (work / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def value(self, expr: str) -> float:
        """The single value `expr` gives now; 0 when it gives nothing."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else 0.0

    def at_least(self, expr: str, least: float) -> Callable[[], bool]:
        return lambda: self.value(expr) >= least

    def wait(self, what: str, ready: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"Prometheus: {what} within {timeout:.0f}s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Up]:
    instance = Up(tmp_path / "state")
    # Metrics ports from the test's own block of 24 (the first ones are taken by it).
    monkeypatch.setenv("MERIDIAN_METRICS__BASE_PORT", str(instance.ports["api"] + 12))
    yield instance
    if instance.proc is not None and instance.proc.poll() is None:
        instance.stop()


@pytest.fixture
def prometheus_dir(tmp_path: Path) -> Path:
    path = tmp_path / "prometheus"
    path.mkdir()
    return path


def scrape_targets(output: list[str]) -> dict[str, str]:
    found = {}
    for line in output:
        match = METRICS_LINE.search(line)
        if match:
            found[match.group(2)] = match.group(1).removeprefix("http://")
    return found


def used_families() -> set[str]:
    families = known_families()
    names = set()
    for expr in dashboard_queries() + [rule["expr"] for rule in alert_rules()]:
        for name in re.findall(r"\b((?:meridian|temporal)_[a-z_]+)\b", expr):
            family = family_of(name, families)
            assert family is not None, name
            names.add(family)
    return names


def test_prometheus_sees_the_series_the_dashboard_and_alerts_use_move(
    up: Up, prometheus_dir: Path
) -> None:
    up.start()
    targets = scrape_targets(up.output)
    assert set(targets) == {"api", "central-worker", "unit-workers"}, up.output
    prom = Prometheus(prometheus_dir, up.ports["api"] + 20, targets)
    try:
        _run(up, prom, targets)
    finally:
        prom.stop()


def _run(up: Up, prom: Prometheus, targets: dict[str, str]) -> None:
    prom.wait(
        "every target up",
        lambda: len(prom.query("up == 1")) == 3,
    )
    up_before = f'meridian_region_health{{region="{DARK}", state="up"}}'
    prom.wait(f"{DARK} up", lambda: prom.value(up_before) == 1)
    started_before = prom.value('sum(meridian_task_transitions_total{status="RUNNING"})')

    # A long task in the region about to go dark.
    body = task_body(
        id=f"scrape-{time.monotonic_ns()}", job={"annotations": {"kubesim.io/duration": "300s"}}
    )
    response = httpx.post(f"{up.api}/v1/tasks", json=body, headers=up.headers, timeout=30)
    assert response.status_code == 201, response.text
    assert wait_status(up, body["id"], "RUNNING")["region"] == DARK

    control_url = json.loads((up.state_dir / "kubesim.json").read_text())["control_url"]
    with KubesimControl(control_url) as control:
        control.outage(DARK)
    moved = wait_status(up, body["id"], "RUNNING", timeout=90)
    deadline = time.monotonic() + 60
    while moved["region"] == DARK:
        assert time.monotonic() < deadline, f"{body['id']} did not move: {moved}"
        time.sleep(0.5)
        moved = wait_status(up, body["id"], "RUNNING")
    assert moved["attempt"] == 2, moved

    # The health gauge changed: up before the outage, down now.
    prom.wait(
        f"{DARK} down",
        lambda: prom.value(f'meridian_region_health{{region="{DARK}", state="down"}}') == 1,
    )
    assert prom.value(f"max_over_time({up_before}[10m])") == 1
    assert prom.value(up_before) == 0
    # Counters increased: the move, its duration, the submit, the starts, placements and
    # the unit worker's requests to Kubernetes.
    moving = {
        'sum(meridian_failovers_total{reason="region_down"})': 1,
        'sum(meridian_failover_duration_seconds_count{reason="region_down"})': 1,
        'sum(meridian_api_requests_total{route="/v1/tasks", method="POST", status="201"})': 1,
        'sum(meridian_task_transitions_total{status="RUNNING"})': started_before + 2,
        "sum(meridian_placement_decisions_total)": 2,
        "sum(meridian_task_submit_duration_seconds_count)": 1,
        'sum(meridian_kube_requests_total{verb="create"})': 2,
        "sum(meridian_kube_request_duration_seconds_count)": 1,
        "sum(meridian_placement_duration_seconds_count)": 2,
        # The sweeps' first runs (every 15 and 20 s).
        "sum(meridian_sweep_runs_total)": 1,
        "count(meridian_sweep_last_run_drift)": 1,
    }
    for expr, least in moving.items():
        prom.wait(f"{expr} >= {least}", prom.at_least(expr, least))
    prom.wait(
        "the running task counted",
        lambda: prom.value('sum(meridian_active_tasks{status="RUNNING"})') >= 1,
    )
    # The SDK families the dashboard and the not-polling alert read, from the unit worker.
    assert prom.value(f'max(temporal_num_pollers{{task_queue="region.{DARK}"}})') >= 1
    assert prom.query("temporal_activity_schedule_to_start_latency_seconds_bucket")

    # Every family the dashboard and the alerts use has series in Prometheus, but for
    # those that get one only when their event happens: their process declares them.
    missing = {
        family for family in used_families() if not prom.query(f'{{__name__=~"{family}(_count)?"}}')
    }
    assert missing <= EVENT_ONLY, f"no series: {sorted(missing - EVENT_ONLY)}"
    exposed = "".join(httpx.get(f"http://{t}/metrics", timeout=10).text for t in targets.values())
    for family in missing:
        assert f"# TYPE {family} " in exposed, family

    # The rules load and evaluate against the real series; the dark region's alert is on
    # its way (pending for its minute, or firing).
    groups = prom.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == EXPECTED
    prom.wait(
        "every rule evaluated without error",
        lambda: all(
            rule["health"] == "ok"
            for group in prom.api("rules")["groups"]
            for rule in group["rules"]
        ),
    )
    alerts = prom.api("alerts")["alerts"]
    assert any(
        a["labels"]["alertname"] == "MeridianRegionDown" and a["labels"]["region"] == DARK
        for a in alerts
    ), alerts
