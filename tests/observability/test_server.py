"""`/metrics` over HTTP: the role's families, the Temporal SDK's merged in, nothing when
the port is 0."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from meridian.observability import metrics as m
from meridian.observability.server import (
    TemporalSdkCollector,
    free_loopback_port,
    serve,
    serve_metrics,
)
from meridian.settings import Settings

SDK_TEXT = (
    "# HELP temporal_request_total Client RPCs\n"
    "# TYPE temporal_request_total counter\n"
    'temporal_request_total{operation="StartWorkflowExecution"} 3\n'
)


@pytest.fixture
def sdk_exporter() -> Iterator[str]:
    """A stand-in for the SDK's exporter: serves a fixed exposition."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = SDK_TEXT.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()


def test_a_role_serves_its_families_and_the_sdks(sdk_exporter: str) -> None:
    registry = CollectorRegistry()
    Counter("meridian_demo", "demo", registry=registry).inc(2)
    registry.register(TemporalSdkCollector(sdk_exporter))
    endpoint = serve("central", "127.0.0.1", free_loopback_port(), registry)
    try:
        text = httpx.get(endpoint.url, timeout=5).text
    finally:
        endpoint.close()
    assert "meridian_demo_total 2.0" in text
    assert 'temporal_request_total{operation="StartWorkflowExecution"} 3.0' in text


def test_an_sdk_exporter_that_does_not_answer_leaves_the_rest() -> None:
    registry = CollectorRegistry()
    Counter("meridian_demo", "demo", registry=registry).inc()
    registry.register(TemporalSdkCollector(f"http://127.0.0.1:{free_loopback_port()}/metrics"))
    endpoint = serve("unit", "127.0.0.1", free_loopback_port(), registry)
    try:
        text = httpx.get(endpoint.url, timeout=5).text
    finally:
        endpoint.close()
    assert "meridian_demo_total 1.0" in text


def test_the_unit_registry_is_served_with_process_metrics() -> None:
    endpoint = serve("unit", "127.0.0.1", free_loopback_port(), m.UNIT)
    try:
        text = httpx.get(endpoint.url, timeout=5).text
    finally:
        endpoint.close()
    for family in m.UNIT_FAMILIES:
        assert f"# TYPE {family} " in text
    assert "meridian_task_transitions_total" not in text  # the central worker's
    assert "process_cpu_seconds_total" in text or "python_gc_objects_collected_total" in text


def test_port_zero_serves_nothing() -> None:
    assert serve_metrics("api", Settings()) is None
