"""`meridian up` and metrics: each process gets a port (kept when set, else the first
free one from the base port), says where in the ready output, and a real `meridian up`
serves every family on each process's /metrics."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kubesim.process import find_free_base_port
from meridian.app.supervisor import Supervisor
from meridian.observability import metrics as m
from meridian.settings import MetricsSettings, Settings
from tests.conftest import REPO
from tests.integration.harness import task_body
from tests.integration.test_up import Up, wait_status

DEV = REPO / "infra/regions/dev.yaml"


def supervisor(tmp_path: Path, **metrics: int) -> Supervisor:
    base = find_free_base_port(16)
    settings = Settings(
        state_dir=tmp_path,
        regions_file=DEV,
        kubesim_base_port=base,
        temporal_port=base + 6,
        temporal_ui_port=base + 7,
        api_port=base + 8,
        metrics=MetricsSettings(**{"base_port": base + 9, **metrics}),
    )
    return Supervisor(settings)


def test_free_ports_from_the_base_are_given_to_each_process(tmp_path: Path) -> None:
    sup = supervisor(tmp_path)
    base = sup.settings.metrics.base_port
    held = socket.socket()
    held.bind(("127.0.0.1", base + 1))  # something else listens there
    held.listen()
    try:
        ports = sup.metrics_ports
    finally:
        held.close()
    assert ports == {"api": base, "central": base + 2, "unit": base + 3}
    env = sup._env()
    assert env["MERIDIAN_METRICS__API_PORT"] == str(base)
    assert env["MERIDIAN_METRICS__CENTRAL_PORT"] == str(base + 2)
    assert env["MERIDIAN_METRICS__UNIT_PORT"] == str(base + 3)
    assert sup.metrics_lines() == [
        f"metrics         http://127.0.0.1:{base}/metrics (api)",
        f"                http://127.0.0.1:{base + 2}/metrics (central-worker)",
        f"                http://127.0.0.1:{base + 3}/metrics (unit-workers)",
    ]


def test_children_get_two_malloc_arenas_unless_the_user_chose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert supervisor(tmp_path)._env()["MALLOC_ARENA_MAX"] == "2"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert supervisor(tmp_path)._env()["MALLOC_ARENA_MAX"] == "8"


def test_a_port_set_explicitly_is_kept_and_checked(tmp_path: Path) -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    try:
        sup = supervisor(tmp_path, central_port=port)
        assert sup.metrics_ports["central"] == port
        assert (
            f"127.0.0.1:{port} (central metrics; choose another with "
            "MERIDIAN_METRICS__CENTRAL_PORT)" in sup.ports_in_use()
        )
    finally:
        held.close()


def test_base_port_zero_turns_metrics_off(tmp_path: Path) -> None:
    sup = supervisor(tmp_path, base_port=0)
    assert sup.metrics_ports == {"api": 0, "central": 0, "unit": 0}
    assert sup.metrics_lines() == ["metrics         off (MERIDIAN_METRICS__BASE_PORT=0)"]


# -- a real `meridian up` -------------------------------------------------------------------


@pytest.fixture
def up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Up]:
    instance = Up(tmp_path / "state")
    # Metrics ports from the test's own block of 24 (the first ones are taken by it).
    monkeypatch.setenv("MERIDIAN_METRICS__BASE_PORT", str(instance.ports["api"] + 12))
    yield instance
    if instance.proc is not None and instance.proc.poll() is None:
        instance.stop()


def _endpoints(output: list[str]) -> dict[str, str]:
    found = {}
    for line in output:
        match = re.search(r"(http://\S+/metrics) \((api|central-worker|unit-workers)\)", line)
        if match:
            found[match.group(2)] = match.group(1)
    return found


def _scrape_until(url: str, want: list[str], timeout: float = 60) -> str:
    """The exposition once every series in `want` shows; the last one otherwise.
    (prometheus_client writes labels in name order.)"""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(url, timeout=5).text
        if all(series in text for series in want):
            return text
        time.sleep(0.5)
    return text


def test_up_serves_every_family_on_each_process(up: Up) -> None:
    assert os.environ["MERIDIAN_METRICS__BASE_PORT"]
    up.start()
    endpoints = _endpoints(up.output)
    assert set(endpoints) == {"api", "central-worker", "unit-workers"}, up.output
    body = task_body(id=f"metrics-{time.monotonic_ns()}")
    response = httpx.post(f"{up.api}/v1/tasks", json=body, headers=up.headers, timeout=30)
    assert response.status_code == 201, response.text
    wait_status(up, body["id"], "SUCCEEDED")
    # One task still running, for the active-task gauge.
    long = task_body(
        id=f"metrics-long-{time.monotonic_ns()}",
        job={"annotations": {"kubesim.io/duration": "300s"}},
    )
    response = httpx.post(f"{up.api}/v1/tasks", json=long, headers=up.headers, timeout=30)
    assert response.status_code == 201, response.text
    wait_status(up, long["id"], "RUNNING")
    expected = {
        "api": (
            m.API_FAMILIES,
            [
                'meridian_api_requests_total{method="POST",route="/v1/tasks",status="201"}',
                "meridian_task_submit_duration_seconds_count 2.0",
                # The API's own Temporal client, through the SDK's exporter.
                "temporal_",
            ],
        ),
        "central-worker": (
            m.CENTRAL_FAMILIES,
            [
                'meridian_task_transitions_total{business_unit="ads",region="',
                'status="SUCCEEDED"}',
                'meridian_active_tasks{business_unit="ads",status="RUNNING"} 1.0',
                "meridian_placement_duration_seconds_count",
                'meridian_region_health{region="aws-us-east-1",state="up"} 1.0',
                'meridian_region_water_level{region="aws-us-east-1"}',
                "temporal_workflow_task",
            ],
        ),
        "unit-workers": (
            m.UNIT_FAMILIES,
            [
                'meridian_kube_requests_total{code="201",region=',
                'verb="watch"}',
                "temporal_activity",
            ],
        ),
    }
    for process, (families, moved) in expected.items():
        text = _scrape_until(endpoints[process], moved)
        for family in families:
            assert f"# TYPE {family} " in text, f"{process} lacks {family}"
        for series in moved:
            assert series in text, f"{process}: no {series!r} in\n{text[:3000]}"
        # Never a task id in any label.
        assert body["id"] not in text and long["id"] not in text
